/**
 * The QEMU pod image's entrypoint (tools/qemu-node/entrypoint.sh) against a stand-in QEMU, in a
 * network namespace standing in for the pod: it checks its environment, creates the disk from the
 * base disk once, builds the seed from the right user-data key, moves the pod's address to a
 * bridge with a one-lease DHCP server (a real dhclient in a second namespace gets the lease),
 * and on SIGTERM presses the power button and exits with QEMU. Needs root, dnsmasq, dhclient.
 */
import * as assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { PROJECT_ROOT } from "../../automation/engine";

const ENTRYPOINT = path.join(PROJECT_ROOT, "tools", "qemu-node", "entrypoint.sh");
const NS = "g8s-ept-pod";
const CLIENT_NS = "g8s-ept-client";
const POD_IP = "10.77.0.20";

/** QEMU's stand-in: records its arguments, writes its PID file, prints a console line, exits 0 on system_powerdown. */
const FAKE_QEMU = `#!/bin/bash
printf '%s\\n' "$@" >"$FAKE_QEMU_ARGS"
args=("$@")
for ((i = 0; i < \${#args[@]}; i++)); do
  case "\${args[$i]}" in
  -pidfile) echo $$ >"\${args[$((i + 1))]}" ;;
  -chardev) case "\${args[$((i + 1))]}" in pipe,*) mon="\${args[$((i + 1))]#*path=}" ;; esac ;;
  esac
done
echo "console: booting"
while read -r line <"$mon.in"; do [ "$line" = system_powerdown ] && exit 0; done
`;

function sh(cmd: string, ...args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

describe("qemu-node entrypoint (a stand-in QEMU in a stand-in pod)", function () {
  this.timeout(120_000);
  let dir: string;
  let child: ChildProcess | undefined;
  let stderr = "";
  let stdout = "";
  let env: Record<string, string>;

  before(function () {
    dir = mkdtempSync(path.join(tmpdir(), "g8s-ept-"));
    for (const d of ["bin", "image", "disk", "user-data", "share", "run"]) mkdirSync(path.join(dir, d));
    writeFileSync(path.join(dir, "bin", "qemu-system-x86_64"), FAKE_QEMU);
    chmodSync(path.join(dir, "bin", "qemu-system-x86_64"), 0o755);
    sh("qemu-img", "create", "-q", "-f", "qcow2", path.join(dir, "image", "disk.qcow2"), "1G");
    writeFileSync(path.join(dir, "image", "vmlinuz"), "kernel");
    writeFileSync(path.join(dir, "image", "initrd.img"), "initrd");
    writeFileSync(path.join(dir, "user-data", "user-data"), "#cloud-config\n# the pool's\n");
    writeFileSync(path.join(dir, "user-data", "user-data-3"), "#cloud-config\n# slot 3's\n");
    writeFileSync(path.join(dir, "share", "ca.crt"), "a certificate\n");
    // The pod: eth0 with its address, a default route and a host route; its resolver.
    for (const ns of [NS, CLIENT_NS]) spawnSync("ip", ["netns", "delete", ns]);
    sh("ip", "netns", "add", NS);
    sh("ip", "netns", "add", CLIENT_NS);
    sh("ip", "-n", NS, "link", "add", "eth0", "type", "veth", "peer", "name", "outside");
    sh("ip", "-n", NS, "address", "add", `${POD_IP}/24`, "dev", "eth0");
    sh("ip", "-n", NS, "link", "set", "eth0", "up");
    sh("ip", "-n", NS, "route", "add", "default", "via", "10.77.0.1");
    sh("ip", "-n", NS, "route", "add", "172.30.4.5/32", "via", "10.77.0.10");
    mkdirSync(`/etc/netns/${NS}`, { recursive: true });
    writeFileSync(`/etc/netns/${NS}/resolv.conf`, "nameserver 10.77.0.1\nsearch g8s-x.svc svc\n");
    env = {
      PATH: `${path.join(dir, "bin")}:/usr/sbin:/usr/bin:/sbin:/bin`,
      FAKE_QEMU_ARGS: path.join(dir, "qemu-args"),
      G8S_CLUSTER_ID: "x",
      G8S_ROLE: "master",
      G8S_POD_NAME: "master-3",
      G8S_CPUS: "2",
      G8S_MEMORY_MIB: "2048",
      G8S_DISK_DIR: path.join(dir, "disk"),
      G8S_DISK_GIB: "20",
      G8S_ETCD_DIR: path.join(dir, "disk"),
      G8S_ETCD_DISK_GIB: "10",
      G8S_USER_DATA_DIR: path.join(dir, "user-data"),
      G8S_SHARE_DIR: path.join(dir, "share"),
      G8S_SHARE_TAG: "g8s-secrets",
      G8S_NETWORK: "bridge",
      G8S_ACCEL: "tcg",
      G8S_IMAGE_DIR: path.join(dir, "image"),
      G8S_RUN_DIR: path.join(dir, "run"),
      // A QEMU that ignores the power button is killed after this long (the pod's: 110 s).
      G8S_STOP_TIMEOUT: "5",
    };
    child = spawn("ip", ["netns", "exec", NS, "bash", ENTRYPOINT], { env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  });

  after(function () {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    for (const ns of [NS, CLIENT_NS]) spawnSync("ip", ["netns", "delete", ns]);
    rmSync(`/etc/netns/${NS}`, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const started = async () => {
    for (let i = 0; i < 100 && !stderr.includes("qemu: pid"); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(stderr, /qemu: pid \d+ \(tcg, 2 CPUs, 2048 MiB\), master node master-3 of cluster x/, stderr);
  };

  it("refuses a missing or malformed variable, naming it", () => {
    const bad = (change: Record<string, string | undefined>) => {
      const e = Object.fromEntries(Object.entries({ ...env, ...change }).filter(([, v]) => v !== undefined));
      return spawnSync("bash", [ENTRYPOINT], { env: e as NodeJS.ProcessEnv, encoding: "utf8" });
    };
    assert.match(bad({ G8S_ROLE: undefined }).stderr, /G8S_ROLE is not set: the platform's pod spec sets it/);
    assert.match(bad({ G8S_CPUS: "two" }).stderr, /G8S_CPUS='two': an integer from 1 to 64/);
    assert.match(bad({ G8S_ACCEL: "hvf" }).stderr, /G8S_ACCEL='hvf': one of kvm tcg auto/);
    assert.match(bad({ G8S_SHARE_DIR: "/nonexistent" }).stderr, /G8S_SHARE_DIR='\/nonexistent': no such directory/);
  });

  it("creates the disk from the base disk, grown, and the etcd disk of a master", async () => {
    await started();
    const info = JSON.parse(sh("qemu-img", "info", "--output=json", path.join(dir, "disk", "disk.qcow2"))) as {
      "virtual-size": number;
      "backing-filename"?: string;
    };
    assert.equal(info["virtual-size"], 20 * 1024 ** 3);
    assert.equal(info["backing-filename"], undefined, "a copy, not an overlay on the image's file");
    assert.ok(existsSync(path.join(dir, "disk", "etcd.qcow2")));
    const args = readFileSync(path.join(dir, "qemu-args"), "utf8").split("\n");
    assert.ok(args.includes("virtio-blk-pci,drive=etcd,serial=g8s-etcd"), args.join(" "));
    assert.ok(
      args.includes(`local,path=${path.join(dir, "share")},mount_tag=g8s-secrets,security_model=none,readonly=on`),
    );
    assert.equal(args[args.indexOf("-accel") + 1], "tcg,tb-size=256");
  });

  it("seeds cloud-init with the pod's slot's user-data and the pod's name as instance id", async () => {
    await started();
    const iso = path.join(dir, "run", "seed.iso");
    const read = (file: string) => sh("isoinfo", "-R", "-i", iso, "-x", `/${file}`);
    assert.equal(read("user-data"), "#cloud-config\n# slot 3's\n");
    assert.equal(read("meta-data"), "instance-id: master-3\nlocal-hostname: master-3\n");
  });

  it("leases the pod's address, routes, DNS and search domains to the pod's MAC over the bridge", async () => {
    await started();
    const net = Object.fromEntries(
      readFileSync(path.join(dir, "disk", "network.env"), "utf8")
        .trim()
        .split("\n")
        .map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]),
    );
    assert.equal(net.POD_ROUTES, "0.0.0.0/0,10.77.0.1,172.30.4.5/32,10.77.0.10");
    assert.equal(net.POD_SEARCH, "g8s-x.svc,svc");
    assert.equal(
      sh("ip", "-n", NS, "-4", "-o", "address", "show", "dev", "eth0").trim(),
      "",
      "eth0 gave up its address",
    );
    // A DHCP client on the tap's side: the tap has no reader without QEMU, so the client joins the bridge by a veth.
    sh("ip", "-n", CLIENT_NS, "link", "add", "vm0", "address", net.POD_MAC, "type", "veth", "peer", "name", "vmport");
    sh("ip", "-n", CLIENT_NS, "link", "set", "vmport", "netns", NS);
    sh("ip", "-n", NS, "link", "set", "vmport", "master", "g8sbr0", "up");
    sh("ip", "-n", CLIENT_NS, "link", "set", "vm0", "up");
    const lease = path.join(dir, "client.lease");
    const r = spawnSync(
      "ip",
      ["netns", "exec", CLIENT_NS, "timeout", "30", "dhclient", "-1", "-sf", "/bin/true", "-lf", lease, "vm0"],
      { encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    const text = readFileSync(lease, "utf8");
    assert.match(text, new RegExp(`fixed-address ${POD_IP.replace(/\./g, "\\.")};`));
    assert.match(text, /option subnet-mask 255\.255\.255\.0;/);
    assert.match(text, /option domain-name-servers 10\.77\.0\.1;/);
    assert.match(text, /option domain-search "g8s-x\.svc\.", "svc\."/);
    assert.match(text, /option dhcp-lease-time 4294967295;/);
  });

  it("presses the power button on SIGTERM and exits with QEMU's status", async () => {
    await started();
    assert.match(stdout, /console: booting/, "the serial console is the entrypoint's stdout");
    const code = await new Promise<number | null>((resolve) => {
      child?.on("exit", (c) => resolve(c));
      child?.kill("SIGTERM");
    });
    assert.equal(code, 0, stderr);
    assert.match(stderr, /SIGTERM: ACPI power button/);
    assert.match(stderr, /qemu exited with status 0/);
  });
});
