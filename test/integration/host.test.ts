/**
 * `g8s host` on the real binaries of .tools/bin (etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler, kwok): cold start, RBAC, KWOK nodes with the KVM device resources, a QEMU-sized
 * pod scheduled and Ready, idempotent `up`, `status`, `down` leaving no process, warm start.
 * Runs the CLI as a user does, in a temporary host dir; the after-hook always stops everything.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { COMPONENTS, hostLayout, toolchainPaths, type ComponentName } from "../../automation/host/config";
import { HostCluster, missingTools, type HostStatus } from "../../automation/host/hostCluster";
import { KubeApi } from "../../automation/host/https";
import { parsePidRecord, type PidRecord } from "../../automation/host/pidfile";
import { allPids, liveness, processInfo } from "../../automation/os/processes";
import { KVM_DEVICE_RESOURCE, TUN_DEVICE_RESOURCE } from "../../components/kvm/constants";
import { podResources } from "../../components/kvm/workload";

const ROOT = path.resolve(__dirname, "../..");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

function g8s(...args: string[]): Run {
  const started = Date.now();
  const r = spawnSync(process.execPath, [path.join(ROOT, "bin/g8s.js"), ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 300_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}

/** Every process whose command line mentions the host dir (our components name their files under it). */
function processesOf(dir: string): number[] {
  return allPids().filter((pid) => {
    if (pid === process.pid) return false;
    const info = processInfo(pid);
    return info !== undefined && info.state !== "Z" && info.argv.some((a) => a.includes(dir));
  });
}

describe("host cluster on the real binaries (g8s host)", function () {
  this.timeout(600_000);
  let dir: string;
  let hostDir: string;
  let admin: KubeApi;
  let pidsAfterCold: Record<string, number>;
  const timings: string[] = [];

  const pidRecords = (): Partial<Record<ComponentName, PidRecord>> => {
    const layout = hostLayout(hostDir);
    return Object.fromEntries(
      COMPONENTS.filter((c) => existsSync(layout.pidFile(c))).map((c) => [
        c,
        parsePidRecord(readFileSync(layout.pidFile(c), "utf8")),
      ]),
    );
  };
  const clientFor = (certName: string) => {
    const layout = hostLayout(hostDir);
    const port = JSON.parse(readFileSync(layout.stateFile, "utf8")).ports.apiserver as number;
    return new KubeApi(`https://127.0.0.1:${port}`, {
      ca: readFileSync(layout.cert("ca"), "utf8"),
      ...(certName === "anonymous"
        ? {}
        : { cert: readFileSync(layout.cert(certName), "utf8"), key: readFileSync(layout.key(certName), "utf8") }),
    });
  };

  before(async () => {
    const missing = await missingTools(toolchainPaths(ROOT));
    assert.deepEqual(missing, [], "the host cluster's binaries are missing: run 'npm run toolchain'");
    dir = mkdtempSync(path.join(tmpdir(), "g8s-host-it-"));
    hostDir = path.join(dir, "host");
  });

  after(async () => {
    admin?.close();
    if (hostDir && existsSync(hostDir)) {
      // Whatever happened above: stop every process this test started, by its pid files.
      await new HostCluster({ hostDir, env: process.env }).down({ purge: true }).catch(() => undefined);
    }
    if (timings.length > 0) console.log(`      ${timings.join("; ")}`);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("starts cold and prints progress, then the admin kubeconfig's path as the last line", () => {
    const r = g8s("host", "up", "--host-dir", hostDir);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines[lines.length - 1], path.join(hostDir, "kubeconfig"));
    for (const c of COMPONENTS) assert.match(r.stderr, new RegExp(`\\] ${c}: started \\(pid \\d+\\)`));
    assert.match(r.stderr, /\] nodes: 2\/2 Ready/);
    timings.push(`cold up ${(r.ms / 1000).toFixed(1)} s`);
    pidsAfterCold = Object.fromEntries(Object.entries(pidRecords()).map(([c, rec]) => [c, (rec as PidRecord).pid]));
    assert.equal(Object.keys(pidsAfterCold).length, COMPONENTS.length);
    admin = clientFor("admin");
  });

  it("serves a ready API over TLS on 127.0.0.1 only to authenticated, authorized clients (RBAC on)", async () => {
    assert.equal(await admin.ready(), true);
    const anonymous = clientFor("anonymous");
    const kwok = clientFor("kwok");
    try {
      assert.equal((await anonymous.request("GET", "/api/v1/namespaces")).status, 403, "anonymous is refused");
      assert.equal((await kwok.request("GET", "/api/v1/secrets")).status, 403, "KWOK may not read secrets");
      assert.equal((await kwok.request("GET", "/api/v1/nodes")).status, 200, "KWOK may read nodes");
      assert.equal((await admin.request("GET", "/api/v1/secrets")).status, 200, "the admin may");
    } finally {
      anonymous.close();
      kwok.close();
    }
    const state = JSON.parse(readFileSync(hostLayout(hostDir).stateFile, "utf8"));
    for (const port of Object.values(state.ports) as number[]) {
      const listeners = readFileSync("/proc/net/tcp", "utf8")
        .split("\n")
        .slice(1)
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f[3] === "0A" && Number.parseInt(f[1].split(":")[1], 16) === port)
        .map((f) => f[1].split(":")[0]);
      assert.deepEqual([...new Set(listeners)], ["0100007F"], `port ${port} listens on 127.0.0.1 only`);
    }
    const tcp6 = readFileSync("/proc/net/tcp6", "utf8");
    for (const port of Object.values(state.ports) as number[]) {
      const hex = port.toString(16).toUpperCase().padStart(4, "0");
      assert.ok(!new RegExp(`:${hex} [0-9A-F]{32}:0000 0A`).test(tcp6), `port ${port} has no IPv6 listener`);
    }
  });

  it("has two KWOK nodes Ready that offer the kvm and tun devices", async () => {
    const nodes = await admin.get<{
      items: {
        metadata: { name: string };
        status: { allocatable: Record<string, string>; conditions: { type: string; status: string }[] };
      }[];
    }>("/api/v1/nodes");
    assert.deepEqual(
      nodes.items.map((n) => n.metadata.name),
      ["g8s-host-node-0", "g8s-host-node-1"],
    );
    for (const n of nodes.items) {
      assert.equal(n.status.conditions.find((c) => c.type === "Ready")?.status, "True", n.metadata.name);
      assert.equal(n.status.allocatable[KVM_DEVICE_RESOURCE], "110");
      assert.equal(n.status.allocatable[TUN_DEVICE_RESOURCE], "110");
      assert.equal(n.status.allocatable.cpu, "16");
    }
  });

  it("schedules a QEMU-sized pod (kvm: 1, tun: 1) onto a node and KWOK makes it Ready", async () => {
    const resources = podResources(2, 4, "kvm");
    assert.equal(resources[KVM_DEVICE_RESOURCE], "1");
    assert.equal(resources[TUN_DEVICE_RESOURCE], "1");
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "qemu-probe", namespace: "default" },
      spec: {
        automountServiceAccountToken: false,
        containers: [
          { name: "qemu", image: "g8s/qemu-node:1.0.0", resources: { requests: resources, limits: resources } },
        ],
      },
    };
    assert.equal(await admin.create("/api/v1/namespaces/default/pods", pod), "created");
    const deadline = Date.now() + 60_000;
    let last: { spec: { nodeName?: string }; status: { conditions?: { type: string; status: string }[] } } | undefined;
    while (Date.now() < deadline) {
      last = await admin.get("/api/v1/namespaces/default/pods/qemu-probe");
      if (last?.status.conditions?.some((c) => c.type === "Ready" && c.status === "True")) break;
      await sleep(200);
    }
    assert.match(last?.spec.nodeName ?? "", /^g8s-host-node-[01]$/, "scheduled onto a KWOK node");
    assert.ok(
      last?.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      `Ready: ${JSON.stringify(last?.status)}`,
    );
  });

  it("does nothing on a second up: the same processes, the kubeconfig path last", () => {
    const r = g8s("host", "up", "--host-dir", hostDir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trimEnd().split("\n").pop(), path.join(hostDir, "kubeconfig"));
    assert.doesNotMatch(r.stderr, /started \(pid/);
    assert.match(r.stderr, /host cluster already running/);
    const pids = Object.fromEntries(Object.entries(pidRecords()).map(([c, rec]) => [c, (rec as PidRecord).pid]));
    assert.deepEqual(pids, pidsAfterCold);
    timings.push(`idempotent up ${(r.ms / 1000).toFixed(1)} s`);
  });

  it("reports every component running, the API ready and the nodes Ready in status", () => {
    const r = g8s("host", "status", "--host-dir", hostDir, "--json");
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const status = JSON.parse(r.stdout) as HostStatus;
    assert.deepEqual(
      status.components.map((c) => `${c.name} ${c.running} ${c.pid}`),
      COMPONENTS.map((c) => `${c} true ${pidsAfterCold[c]}`),
    );
    assert.equal(status.api.ready, true);
    assert.deepEqual(status.nodes, { total: 2, ready: 2 });
    const rss = status.components.reduce((sum, c) => sum + (c.rssBytes ?? 0), 0);
    timings.push(
      `RSS ${Math.round(rss / 1048576)} MiB (${status.components.map((c) => `${c.name} ${Math.round((c.rssBytes ?? 0) / 1048576)}`).join(", ")})`,
    );
    const text = g8s("host", "status", "--host-dir", hostDir);
    assert.match(text.stdout, /^kube-apiserver +\d+ +running +127\.0\.0\.1:\d+/m);
  });

  it("stops every process on down and leaves none of the host dir behind", async () => {
    const records = pidRecords();
    const r = g8s("host", "down", "--host-dir", hostDir);
    assert.equal(r.code, 0, r.stderr);
    for (const c of COMPONENTS) {
      const rec = records[c] as PidRecord;
      assert.notEqual(liveness(rec.pid, rec.startedAtMs), "alive", `${c} (pid ${rec.pid}) stopped`);
    }
    assert.deepEqual(processesOf(hostDir), []);
    assert.deepEqual(readdirSync(path.join(hostDir, "run")), [], "pid files removed");
    const status = g8s("host", "status", "--host-dir", hostDir);
    assert.equal(status.code, 1, "status exits 1 when the host cluster is down");
  });

  it("starts warm (certificates and etcd data kept) within 10 s, with the pod still there", async () => {
    const r = g8s("host", "up", "--host-dir", hostDir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /certificates: up to date/);
    timings.push(
      `warm up ${(r.ms / 1000).toFixed(1)} s (${r.stderr.match(/\[ *([\d.]+)s\] host cluster ready/)?.[1]} s in g8s)`,
    );
    assert.ok(r.ms <= 10_000, `warm up took ${r.ms} ms`);
    admin.close();
    admin = clientFor("admin");
    const pod = await admin.get<{ spec: { nodeName: string } }>("/api/v1/namespaces/default/pods/qemu-probe");
    assert.match(pod.spec.nodeName, /^g8s-host-node-/);
  });

  it("stops and deletes the host dir on down --purge", () => {
    const r = g8s("host", "down", "--host-dir", hostDir, "--purge");
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(hostDir));
    assert.deepEqual(processesOf(hostDir), []);
  });
});
