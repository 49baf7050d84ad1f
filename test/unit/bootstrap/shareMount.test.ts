/**
 * A KVM node mounts its Secret share (virtio 9p) at every boot, before the first secret sync; a
 * system container, where the lab bind-mounts the files, keeps its bind mount. The rendered
 * `bootcmd` is run by a real shell against stand-ins for mountpoint, modprobe and mount.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildCloudConfig, deliveryBootCommands, DEFAULT_SECRET_MOUNT_PATH } from "../../../components/bootstrap";
import { awsConfig, kvmConfig, rolesOf } from "./helpers";

/** Runs one bootcmd entry with stand-in commands that log their arguments; `mounted`: mountpoint's answer. */
function runBootCommand(cmd: readonly string[], mounted: boolean): { code: number | null; calls: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "g8s-bootcmd-"));
  try {
    const log = join(dir, "calls");
    writeFileSync(log, "");
    for (const [name, exit] of [
      ["mountpoint", mounted ? 0 : 1],
      ["modprobe", 0],
      ["mount", 0],
      ["mkdir", 0],
    ] as const) {
      writeFileSync(join(dir, name), `#!/bin/sh\necho "${name} $*" >>"${log}"\nexit ${exit}\n`);
      chmodSync(join(dir, name), 0o755);
    }
    const [bin, ...args] = cmd;
    const r = spawnSync(bin, args, { env: { PATH: `${dir}:/usr/bin:/bin` }, encoding: "utf8" });
    return { code: r.status, calls: readFileSync(log, "utf8").trim().split("\n").filter(Boolean) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("bootstrap: the KVM Secret share is mounted at boot", () => {
  it("gives every KVM node's cloud-config a bootcmd mounting the share, and no AWS node one", () => {
    for (const config of [kvmConfig(1), kvmConfig(3)]) {
      for (const role of rolesOf(config)) {
        assert.deepEqual(buildCloudConfig(config, role).bootcmd, deliveryBootCommands(config.delivery));
      }
    }
    for (const role of rolesOf(awsConfig(3))) {
      assert.equal(buildCloudConfig(awsConfig(3), role).bootcmd, undefined);
    }
  });

  it("mounts tag g8s-secrets read-only over virtio 9p, uncached, at /mnt/g8s-secrets when nothing is there", () => {
    const [cmd] = deliveryBootCommands({ kind: "mounted-secret" });
    const r = runBootCommand(cmd, false);
    assert.equal(r.code, 0);
    assert.deepEqual(r.calls, [
      `mountpoint -q ${DEFAULT_SECRET_MOUNT_PATH}`,
      `mkdir -p ${DEFAULT_SECRET_MOUNT_PATH}`,
      "modprobe -a 9pnet_virtio 9p",
      `mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=none g8s-secrets ${DEFAULT_SECRET_MOUNT_PATH}`,
    ]);
  });

  it("leaves an existing mount alone (the lab's bind mount in a system container)", () => {
    const [cmd] = deliveryBootCommands({ kind: "mounted-secret" });
    const r = runBootCommand(cmd, true);
    assert.equal(r.code, 0);
    assert.deepEqual(r.calls, [`mountpoint -q ${DEFAULT_SECRET_MOUNT_PATH}`]);
  });

  it("follows the delivery's mount path and tag, and refuses ones a shell would misread", () => {
    const [cmd] = deliveryBootCommands({ kind: "mounted-secret", mountPath: "/run/files", shareTag: "files0" });
    assert.deepEqual(
      runBootCommand(cmd, false).calls.at(-1),
      "mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=none files0 /run/files",
    );
    assert.throws(
      () => deliveryBootCommands({ kind: "mounted-secret", mountPath: "/mnt/x; reboot" }),
      /'\/mnt\/x; reboot' cannot appear in the secret manifest/,
    );
  });
});
