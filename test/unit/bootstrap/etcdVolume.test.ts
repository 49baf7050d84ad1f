/**
 * An AWS master's etcd volume, formatted and mounted by the rendered attach script for real: a
 * real ext4 file system (mkfs.ext4 on a loop device over an image file), a real mount, in a private
 * mount namespace whose /dev, /var/lib and /etc/fstab are the test's own. Only the AWS side is faked
 * (IMDS, `aws`, `ip`). Then the test looks at etcd's data directory as kubeadm's
 * `DirAvailable--<dataDir>` preflight check does on init and on join: absent or empty, or kubeadm
 * refuses to run (cmd/kubeadm/app/preflight/checks.go, DirAvailableCheck, added by InitNodeChecks
 * for a local etcd's DataDir; join --control-plane runs the same checks).
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import {
  ATTACH_SCRIPT_PATH,
  ETCD_DATA_DIR,
  ETCD_DISK_SCRIPT_PATH,
  ETCD_VOLUME_MOUNT_PATH,
  buildCloudConfig,
  kubeadmConfigFor,
} from "../../../components/bootstrap";
import { KVM_ETCD_DISK_GUEST_DEVICE } from "../../../components/kvm";
import { awsConfig, fakeAttachment, kvmConfig } from "./helpers";

interface VolumeRun {
  readonly code: number | null;
  readonly stderr: string;
  /** Lines `key=value` the harness wrote. */
  readonly facts: Record<string, string>;
  readonly awsCalls: string[];
}

/** The fake AWS side: IMDS answers, `aws` simulates the attachments, `ip` shows the interface once attached. */
function fakes(dir: string, privateIp: string): void {
  const bin = join(dir, "bin");
  const files: Record<string, string> = {
    curl: 'echo "i-0fake"',
    aws: [
      `echo "$*" >> "${dir}/aws-calls"`,
      'case "$2" in',
      `  attach-network-interface) touch "${dir}/eni-attached" ;;`,
      // The volume appears where the NVMe driver's udev rule puts it, pointing at the test's loop device.
      '  attach-volume) vol=$(echo "$*" | sed "s/.*--volume-id \\([^ ]*\\).*/\\1/" | tr -d -);',
      `    ln -s "$(cat "${dir}/loop")" "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_$vol" ;;`,
      "esac",
    ].join("\n"),
    ip: `[ -e "${dir}/eni-attached" ] && echo "3: ens6    inet ${privateIp}/20 brd 10.1.15.255 scope global ens6"; true`,
  };
  spawnSync("mkdir", ["-p", bin]);
  for (const [name, body] of Object.entries(files)) {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
}

/**
 * Runs the attach script twice (first boot, then a reboot of the same instance) inside a private
 * mount namespace, writing a file into etcd's data directory in between; reports what kubeadm
 * would see.
 */
function runAttachScript(script: string, dataDir: string, privateIp: string, presentAt?: string): VolumeRun {
  const dir = mkdtempSync(join(tmpdir(), "g8s-etcd-volume-"));
  try {
    writeFileSync(join(dir, "attach"), script);
    fakes(dir, privateIp);
    const harness = [
      "set -eu",
      `D=${dir}`,
      'facts="$D/facts"; : >"$facts"',
      'truncate -s 64M "$D/etcd.img"',
      'LOOP=$(losetup -f --show "$D/etcd.img"); echo "$LOOP" >"$D/loop"',
      // The namespace's mounts go with it; the loop device is the machine's: detach it (lazily, if still mounted).
      'cleanup() { for m in $(findmnt -rn -o TARGET -S "$LOOP"); do umount "$m" || true; done; losetup -d "$LOOP"; }',
      "trap cleanup EXIT",
      // A /dev of our own: the nodes a boot needs, the loop device, and an empty /dev/disk/by-id.
      'mkdir -p "$D/dev"; mount -t tmpfs tmpfs "$D/dev"',
      'cp -a /dev/null /dev/zero /dev/urandom /dev/random "$LOOP" "$D/dev/"',
      'mkdir -p "$D/dev/disk/by-id"',
      // A disk that is there from the start (KVM: the QEMU pod's second disk) is a link to the loop device.
      ...(presentAt ? [`ln -s "$LOOP" "$D${presentAt}"`] : []),
      'mount --bind "$D/dev" /dev',
      'mount -t tmpfs tmpfs /var/lib; touch "$D/fstab"; mount --bind "$D/fstab" /etc/fstab',
      'export PATH="$D/bin:$PATH"',
      'sh "$D/attach"',
      `echo "mountpoint-after-boot=$(findmnt -rn -o TARGET -S "$LOOP")" >>"$facts"`,
      `echo "datadir-entries-at-join=$(ls -A ${dataDir} 2>/dev/null | tr '\\n' ' ')" >>"$facts"`,
      `echo "datadir-exists-at-join=$([ -e ${dataDir} ] && echo yes || echo no)" >>"$facts"`,
      // etcd writes its data (kubeadm creates the directory, etcd fills it); then the instance reboots.
      `mkdir -p ${dataDir} && echo member >${dataDir}/member-marker`,
      `umount "$(findmnt -rn -o TARGET -S "$LOOP")"`,
      'sh "$D/attach"',
      `echo "marker-after-reboot=$(cat ${dataDir}/member-marker 2>/dev/null || echo missing)" >>"$facts"`,
      'echo "fstab-lines=$(wc -l </etc/fstab)" >>"$facts"',
      'echo "fs-type=$(blkid -o value -s TYPE "$LOOP")" >>"$facts"',
    ].join("\n");
    const r = spawnSync("unshare", ["--mount", "--propagation", "private", "bash", "-c", harness], {
      encoding: "utf8",
      timeout: 60_000,
    });
    const facts: Record<string, string> = {};
    try {
      for (const line of readFileSync(join(dir, "facts"), "utf8").split("\n")) {
        const i = line.indexOf("=");
        if (i > 0) facts[line.slice(0, i)] = line.slice(i + 1).trim();
      }
    } catch {
      // no facts: the harness failed before writing any; stderr says why
    }
    let awsCalls: string[] = [];
    try {
      awsCalls = readFileSync(join(dir, "aws-calls"), "utf8").trim().split("\n");
    } catch {
      // no call recorded
    }
    return { code: r.status, stderr: r.stderr, facts, awsCalls };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("AWS master: the etcd volume as kubeadm finds it", function () {
  this.timeout(90_000);
  const config = awsConfig(3);
  const attach = fakeAttachment(1);
  const role = { kind: "master", master: "master-1", attach } as const;

  before(function () {
    if (process.getuid?.() !== 0) this.skip(); // a loop device and mounts need root (this machine's tests run as root)
  });

  it("formats the volume once, mounts it, and leaves etcd's data directory absent or empty for kubeadm's preflight", () => {
    const script = buildCloudConfig(config, role).write_files.find((f) => f.path === ATTACH_SCRIPT_PATH)?.content;
    assert.ok(script, "the attach script is rendered");
    const cluster = parseAllDocuments(
      kubeadmConfigFor(config, { kind: "first-master", master: "master-0", attach: fakeAttachment(0) }),
    )
      .map((d) => d.toJS() as { kind: string; etcd?: { local: { dataDir: string } } })
      .find((d) => d.kind === "ClusterConfiguration");
    const dataDir = cluster?.etcd?.local.dataDir;
    assert.ok(dataDir, "ClusterConfiguration names etcd's data directory");

    const run = runAttachScript(script, dataDir, attach.privateIp);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.facts["fs-type"], "ext4");
    const mountPoint = run.facts["mountpoint-after-boot"];
    assert.ok(mountPoint, "the volume is mounted after the first boot");
    assert.ok(
      dataDir === mountPoint || dataDir.startsWith(`${mountPoint}/`),
      `etcd's data (${dataDir}) lives on the volume (${mountPoint})`,
    );
    // DirAvailableCheck: "<dir> is not empty" unless the directory is missing or has no entry.
    assert.equal(
      run.facts["datadir-entries-at-join"],
      "",
      `kubeadm would refuse ${dataDir}: "${dataDir} is not empty" (entries: ${run.facts["datadir-entries-at-join"]})`,
    );
    assert.equal(run.facts["marker-after-reboot"], "member", "a reboot mounts the same file system, not a new one");
    assert.equal(run.facts["fstab-lines"], "1", "one fstab line, however often the script runs");
    assert.deepEqual(
      run.awsCalls.map((c) => c.split(" ").slice(0, 2).join(" ")),
      ["ec2 attach-network-interface", "ec2 attach-volume"],
      "attached once: the reboot finds both attached",
    );
  });
});

describe("KVM master: the etcd disk as kubeadm finds it", function () {
  this.timeout(90_000);
  const config = kvmConfig(3);
  const role = { kind: "master", master: "master-1" } as const;
  const etcdDiskScriptOf = () =>
    buildCloudConfig(config, role).write_files.find((f) => f.path === ETCD_DISK_SCRIPT_PATH)?.content;

  before(function () {
    if (process.getuid?.() !== 0) this.skip(); // a loop device and mounts need root (this machine's tests run as root)
  });

  it("runs its etcd-disk script before kubeadm", () => {
    const runcmd = JSON.stringify(buildCloudConfig(config, role).runcmd);
    assert.ok(runcmd.indexOf(ETCD_DISK_SCRIPT_PATH) > 0, runcmd);
    assert.ok(runcmd.indexOf(ETCD_DISK_SCRIPT_PATH) < runcmd.indexOf("kubeadm join"), runcmd);
  });

  it("formats the QEMU pod's second disk once, mounts it, and leaves etcd's data directory empty for kubeadm", () => {
    const script = etcdDiskScriptOf();
    assert.ok(script, "the etcd-disk script is rendered");
    const run = runAttachScript(script, ETCD_DATA_DIR, "", KVM_ETCD_DISK_GUEST_DEVICE);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.facts["fs-type"], "ext4");
    assert.equal(run.facts["mountpoint-after-boot"], ETCD_VOLUME_MOUNT_PATH);
    assert.equal(run.facts["datadir-entries-at-join"], "", "kubeadm's DirAvailable check passes");
    assert.equal(run.facts["marker-after-reboot"], "member", "a reboot mounts the same file system");
    assert.equal(run.facts["fstab-lines"], "1");
  });

  it("leaves etcd on the root disk where there is no such disk (a system container of the lab)", function () {
    if (existsSync(KVM_ETCD_DISK_GUEST_DEVICE)) this.skip(); // this machine has such a disk: never format it
    const run = spawnSync("sh", ["-c", etcdDiskScriptOf() as string], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /no \/dev\/disk\/by-id\/virtio-g8s-etcd: etcd keeps its data on the root disk/);
  });
});
