/**
 * `g8s host up --real-node` on this machine (root, the node image and the KVM device plugin
 * built): the real node g8s-host-real-0 goes Ready beside the fake ones; a pod of an image
 * already in the node runs on it and answers from the host; the node's allocatable shows both
 * device resources; a pod requesting them finds /dev/kvm and /dev/net/tun and opens them
 * read-write without being privileged, and one that does not request them has neither; the
 * device plugin registers again after the kubelet restarts; `down` stops the node. Prints the
 * time to Ready and the node's memory.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import * as http from "node:http";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { hostLayout } from "../../automation/host/config";
import type { HostStatus } from "../../automation/host/hostCluster";
import { DEVICE_RESOURCES, REAL_NODE_NAME, RealNode } from "../../automation/host/realNode";

const ROOT = path.resolve(__dirname, "../..");
const KUBECTL = path.join(ROOT, ".tools", "bin", "kubectl");
const NSPAWN = path.join(ROOT, "tools", "node-image", "nspawn-node.sh");
const SHARE = path.join(ROOT, ".tools", "share");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
  readonly ms: number;
}

function runOf(cmd: string, args: readonly string[], input?: string): Run {
  const t = Date.now();
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8", timeout: 600_000, input });
  return { code: r.status, out: r.stdout ?? "", err: r.stderr ?? "", ms: Date.now() - t };
}

/** GET http://<ip>:<port><path> from the host (through its route to the node's pods). */
function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve(`${res.statusCode} ${body}`));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}

describe("host cluster with a real node (g8s host up --real-node)", function () {
  this.timeout(900_000);
  let dir: string;
  let hostDir: string;
  let node: RealNode;
  const figures: string[] = [];
  const g8s = (...args: string[]) => runOf(process.execPath, [path.join(ROOT, "bin/g8s.js"), ...args]);
  const kubectl = (args: readonly string[], input?: string) =>
    runOf(KUBECTL, ["--kubeconfig", path.join(hostDir, "kubeconfig"), ...args], input);
  const status = (): HostStatus => JSON.parse(g8s("host", "status", "--host-dir", hostDir, "--json").out) as HostStatus;

  /** Applies a manifest and waits for pod `name` to be Ready. */
  const podReady = (name: string, manifest: string) => {
    const apply = kubectl(["apply", "-f", "-"], manifest);
    assert.equal(apply.code, 0, apply.err);
    const wait = kubectl(["wait", "--for=condition=Ready", `pod/${name}`, "--timeout=120s"]);
    assert.equal(wait.code, 0, `${wait.err}\n${kubectl(["describe", "pod", name]).out}`);
  };

  before(function () {
    const why =
      process.getuid?.() !== 0
        ? "needs root (a system container, a bridge, a host route)"
        : !existsSync(path.join(SHARE, "node-image", "rootfs"))
          ? "the node image is not built (bash tools/build.sh node-image)"
          : !existsSync(path.join(SHARE, "kvm-device-plugin", "images.json"))
            ? "the device plugin is not built (bash tools/build.sh kvm-device-plugin)"
            : !existsSync("/dev/kvm")
              ? "this machine has no /dev/kvm"
              : undefined;
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    dir = mkdtempSync(path.join(tmpdir(), "g8s-host-node-"));
    hostDir = path.join(dir, "host");
    node = new RealNode(hostLayout(hostDir), NSPAWN, SHARE);
  });

  after(function () {
    if (!hostDir) return;
    g8s("host", "down", "--purge", "--host-dir", hostDir);
    rmSync(dir, { recursive: true, force: true });
    if (figures.length > 0) console.log(`      ${figures.join("\n      ")}`);
  });

  it("boots the real node and it goes Ready beside the fake nodes, with both device resources", () => {
    const up = g8s("host", "up", "--real-node", "--host-dir", hostDir);
    assert.equal(up.code, 0, up.err);
    assert.equal(up.out.trim().split("\n").at(-1), path.join(hostDir, "kubeconfig"));
    const ready = /real node g8s-host-real-0: Ready \(([\d.]+) s\)/.exec(up.err);
    assert.ok(ready, up.err);
    figures.push(`cold up --real-node: ${(up.ms / 1000).toFixed(1)} s, the node Ready ${ready[1]} s after its start`);

    const nodes = JSON.parse(kubectl(["get", "nodes", "-o", "json"]).out) as {
      items: {
        metadata: { name: string };
        status: { allocatable: Record<string, string>; nodeInfo: Record<string, string> };
      }[];
    };
    const real = nodes.items.find((n) => n.metadata.name === REAL_NODE_NAME);
    assert.ok(real, "no node g8s-host-real-0");
    assert.equal(real.status.nodeInfo.kubeletVersion, "v1.34.12");
    assert.match(real.status.nodeInfo.containerRuntimeVersion, /^containerd:\/\//);
    for (const r of DEVICE_RESOURCES) assert.equal(real.status.allocatable[r], "110", r);
    assert.equal(nodes.items.length, 3, "the two fake nodes stay");

    const s = status();
    assert.equal(s.realNode?.ready, true);
    assert.ok((s.realNode?.memoryBytes ?? 0) > 0);
    figures.push(`memory of the node's cgroup after up: ${Math.round((s.realNode?.memoryBytes ?? 0) / 1048576)} MiB`);
    const text = g8s("host", "status", "--host-dir", hostDir);
    assert.equal(text.code, 0, text.out);
    assert.match(text.out, /real node: g8s-host-real-0 10\.126\.\d+\.10 Ready, devices kvm 110, tun 110/);
  });

  it("runs a pod of an image already in the node, which answers from the host", async () => {
    podReady(
      "web",
      JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          {
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: { name: "web", namespace: "default" },
            data: { Corefile: ".:5353 {\n  health :8080\n}\n" },
          },
          {
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "web", namespace: "default" },
            spec: {
              nodeName: REAL_NODE_NAME,
              dnsPolicy: "Default",
              automountServiceAccountToken: false,
              containers: [
                {
                  name: "web",
                  image: "registry.k8s.io/coredns/coredns:v1.12.1",
                  imagePullPolicy: "Never",
                  args: ["-conf", "/etc/web/Corefile"],
                  readinessProbe: { httpGet: { path: "/health", port: 8080 }, periodSeconds: 2 },
                  volumeMounts: [{ name: "conf", mountPath: "/etc/web" }],
                },
              ],
              volumes: [{ name: "conf", configMap: { name: "web" } }],
            },
          },
        ],
      }),
    );
    const ip = kubectl(["get", "pod", "web", "-o", "jsonpath={.status.podIP}"]).out.trim();
    assert.match(ip, /^10\.127\.\d+\.\d+$/);
    assert.equal(await httpGet(`http://${ip}:8080/health`), "200 OK");
    const logs = kubectl(["logs", "web"]);
    assert.equal(logs.code, 0, logs.err);
    assert.match(logs.out, /CoreDNS-1\.12\.1/);
  });

  /**
   * A pod of the flannel image (Debian's libc and libtinfo, but no shell or coreutils) with the
   * node's bash mounted in: it blocks reading its stdin, and `kubectl exec` runs checks in it.
   */
  const shellPod = (name: string, devices: boolean) =>
    JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "default" },
      spec: {
        nodeName: REAL_NODE_NAME,
        dnsPolicy: "Default",
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: "shell",
            image: "g8s.local/flannel:v0.28.10",
            imagePullPolicy: "Never",
            // PID 1 ignores SIGTERM without a handler: the trap lets the pod stop at once.
            command: ["/bin/bash", "-c", "trap 'exit 0' TERM; read -r _"],
            stdin: true,
            securityContext: { privileged: false, allowPrivilegeEscalation: false },
            ...(devices
              ? { resources: { limits: { "devices.kubevirt.io/kvm": "1", "devices.kubevirt.io/tun": "1" } } }
              : {}),
            volumeMounts: [{ name: "bash", mountPath: "/bin/bash", readOnly: true }],
          },
        ],
        volumes: [{ name: "bash", hostPath: { path: "/usr/bin/bash", type: "File" } }],
      },
    });
  const checkDevices =
    'for d in /dev/kvm /dev/net/tun; do if [[ -c $d ]]; then exec 3<>$d && echo "$d: character device, opened rw"; ' +
    'else echo "$d: absent"; fi; done';

  it("gives a pod that requests devices.kubevirt.io/kvm and /tun both devices, read-write, unprivileged", () => {
    podReady("devices", shellPod("devices", true));
    const inside = kubectl(["exec", "devices", "--", "/bin/bash", "-c", checkDevices]);
    assert.equal(inside.code, 0, inside.err);
    assert.equal(inside.out, "/dev/kvm: character device, opened rw\n/dev/net/tun: character device, opened rw\n");
    // The container's /dev as the node sees it: ls -l of the device nodes runc made there.
    const pid = node
      .exec(
        "sh",
        "-c",
        "crictl inspect -o go-template --template '{{.info.pid}}' $(crictl ps -q --name shell --pod $(crictl pods -q --name devices))",
      )
      .stdout.trim();
    assert.match(pid, /^\d+$/);
    assert.ok(Number(pid) > 1, `the container's pid in the node: ${pid}`);
    const ls = node.exec("ls", "-l", `/proc/${pid}/root/dev/kvm`, `/proc/${pid}/root/dev/net/tun`);
    assert.ok(ls.ok, ls.stderr);
    assert.match(ls.stdout, /^crw-.* 10, 232 .*\/dev\/kvm$/m);
    assert.match(ls.stdout, /^crw-.* 10, 200 .*\/dev\/net\/tun$/m);
    figures.push(`ls -l in the pod's root:\n        ${ls.stdout.trim().split("\n").join("\n        ")}`);
    const allocated = JSON.parse(kubectl(["get", "node", REAL_NODE_NAME, "-o", "json"]).out) as {
      status: { allocatable: Record<string, string> };
    };
    assert.equal(allocated.status.allocatable["devices.kubevirt.io/kvm"], "110");

    podReady("plain", shellPod("plain", false));
    const without = kubectl(["exec", "plain", "--", "/bin/bash", "-c", checkDevices]);
    assert.equal(without.code, 0, without.err);
    assert.equal(without.out, "/dev/kvm: absent\n/dev/net/tun: absent\n");
  });

  it("keeps both resources after the kubelet restarts (the plugin registers again)", async () => {
    const since = node.exec("date", "+%s").stdout.trim();
    const restart = node.exec("systemctl", "restart", "kubelet");
    assert.ok(restart.ok, restart.stderr);
    const t = Date.now();
    for (;;) {
      // Only what the restarted kubelet logged.
      const log = node.exec("journalctl", "-u", "kubelet", "--since", `@${since}`, "--no-pager", "-o", "cat").stdout;
      const missing = DEVICE_RESOURCES.filter(
        (r) => !log.split("\n").some((l) => l.includes("Got registration request from device plugin") && l.includes(r)),
      );
      if (missing.length === 0) break;
      assert.ok(Date.now() - t < 60_000, `${missing.join(", ")} not registered again within 60 s`);
      await sleep(1000);
    }
    figures.push(`device plugin registered again ${((Date.now() - t) / 1000).toFixed(1)} s after a kubelet restart`);
    const kubectlDelete = kubectl(["delete", "pod", "devices", "--wait=true"]);
    assert.equal(kubectlDelete.code, 0, kubectlDelete.err);
    podReady("devices", shellPod("devices", true));
    const inside = kubectl(["exec", "devices", "--", "/bin/bash", "-c", checkDevices]);
    assert.equal(inside.out, "/dev/kvm: character device, opened rw\n/dev/net/tun: character device, opened rw\n");
  });

  it("stops the node on down, and leaves no bridge or route", () => {
    const down = g8s("host", "down", "--host-dir", hostDir);
    assert.equal(down.code, 0, down.err);
    assert.match(down.err, /real node g8s-host-real-0: stopped/);
    figures.push(`down with the real node: ${(down.ms / 1000).toFixed(1)} s`);
    assert.equal(node.running(), false);
    assert.equal(runOf("ip", ["link", "show", node.plan.bridge]).code !== 0, true, "bridge left behind");
    assert.doesNotMatch(runOf("ip", ["route"]).out, new RegExp(node.plan.podCidr.replace(/\./g, "\\.")));
    const s = status();
    assert.equal(s.realNode?.running, false);
  });

  it("boots the kept node again on a warm up, Ready only once its restarted kubelet has reported", () => {
    const start = Date.now();
    const up = g8s("host", "up", "--real-node", "--host-dir", hostDir);
    assert.equal(up.code, 0, up.err);
    assert.match(up.err, /real node g8s-host-real-0: started/);
    const ready = /real node g8s-host-real-0: Ready \(([\d.]+) s\)/.exec(up.err);
    assert.ok(ready, up.err);
    figures.push(`warm up --real-node: ${(up.ms / 1000).toFixed(1)} s, the node Ready ${ready[1]} s after its start`);
    // The Node object kept its Ready condition and allocatable through the down: only a heartbeat
    // after the start shows the restarted kubelet.
    const s = status();
    assert.equal(s.realNode?.ready, true);
    assert.ok(
      Date.parse(s.realNode?.heartbeatAt ?? "") >= Math.floor(start / 1000) * 1000,
      s.realNode?.heartbeatAt ?? "none",
    );
    for (const r of DEVICE_RESOURCES) assert.equal(s.realNode?.devices[r], "110", r);
  });
});
