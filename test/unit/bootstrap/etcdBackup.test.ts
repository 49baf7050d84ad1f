/**
 * etcd backups in the masters' cloud-config: scripts, settings, timer, enabled after kubeadm;
 * none of it on workers. The scripts run for real on a booted guest cluster (test/lab/boot.test.ts).
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  ETCD_BACKUP_ENV_PATH,
  ETCD_RESTORE_SCRIPT,
  ETCD_RESTORE_SCRIPT_PATH,
  ETCD_SNAPSHOT_SCRIPT,
  ETCD_SNAPSHOT_SCRIPT_PATH,
  buildCloudConfig,
  type BootstrapConfig,
} from "../../../components/bootstrap";
import { awsConfig, kvmConfig } from "./helpers";

const TIMER = "/etc/systemd/system/g8s-etcd-snapshot.timer";

function withBackup(
  config: BootstrapConfig,
  backup: Partial<BootstrapConfig["spec"]["etcd"]["backup"]>,
): BootstrapConfig {
  return { ...config, spec: { ...config.spec, etcd: { backup: { ...config.spec.etcd.backup, ...backup } } } };
}

function filesOf(config: BootstrapConfig, kind: "first-master" | "master" | "worker") {
  const role =
    kind === "worker"
      ? ({ kind, pool: "general" } as const)
      : ({ kind, master: kind === "master" ? "master-1" : "master-0" } as const);
  const doc = buildCloudConfig(config, role);
  return {
    files: new Map(doc.write_files.map((f) => [f.path, f])),
    runcmd: doc.runcmd.map((c) => (typeof c === "string" ? c : c.join(" "))),
  };
}

describe("bootstrap: etcd backups on the masters", () => {
  for (const [platform, config] of [
    ["aws", awsConfig(3)],
    ["kvm", kvmConfig(3)],
  ] as const) {
    it(`gives every ${platform} master both scripts, its settings and the timer, enabled after kubeadm`, () => {
      for (const kind of ["first-master", "master"] as const) {
        const { files, runcmd } = filesOf(config, kind);
        assert.equal(files.get(ETCD_SNAPSHOT_SCRIPT_PATH)?.permissions, "0755");
        assert.equal(files.get(ETCD_RESTORE_SCRIPT_PATH)?.permissions, "0755");
        assert.equal(
          files.get(ETCD_BACKUP_ENV_PATH)?.content,
          `CLUSTER_ID=${config.spec.id}\nRETENTION=8\nSNAPSHOT_DIR=/var/lib/etcd-disk/snapshots\n`,
        );
        assert.match(files.get(TIMER)?.content ?? "", /OnUnitActiveSec=6h\n/);
        const kubeadm = runcmd.findIndex((c) => /kubeadm (init|join)/.test(c));
        const enable = runcmd.findIndex(
          (c) => c.startsWith("systemctl enable --now") && c.includes("g8s-etcd-snapshot.timer"),
        );
        assert.ok(kubeadm >= 0 && enable > kubeadm, runcmd.join("\n"));
      }
    });
  }

  it("gives workers none of it", () => {
    const { files, runcmd } = filesOf(kvmConfig(1), "worker");
    assert.deepEqual(
      [...files.keys()].filter((p) => p.includes("etcd")),
      [],
    );
    assert.ok(!runcmd.some((c) => c.includes("g8s-etcd-snapshot")));
  });

  it("follows etcd.backup: interval and retention, no timer when off (the restore script stays)", () => {
    const some = filesOf(withBackup(kvmConfig(1), { interval: "1h30m", retention: 3 }), "first-master");
    assert.match(some.files.get(TIMER)?.content ?? "", /OnUnitActiveSec=1h 30m\n/);
    assert.match(some.files.get(ETCD_BACKUP_ENV_PATH)?.content ?? "", /^RETENTION=3$/m);
    const off = filesOf(withBackup(kvmConfig(1), { enabled: false }), "first-master");
    assert.equal(off.files.get(TIMER), undefined);
    assert.ok(off.files.has(ETCD_RESTORE_SCRIPT_PATH));
    assert.ok(!off.runcmd.some((c) => c.includes("g8s-etcd-snapshot")));
  });

  it("renders scripts bash accepts", () => {
    for (const script of [ETCD_SNAPSHOT_SCRIPT, ETCD_RESTORE_SCRIPT]) {
      const r = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.ok(script.startsWith("#!/bin/bash\n"));
    }
  });

  it("restores with a revision bump every watcher notices, into a new data directory, keeping the old", () => {
    assert.match(ETCD_RESTORE_SCRIPT, /--bump-revision 1000000000 --mark-compacted/);
    assert.match(ETCD_RESTORE_SCRIPT, /mv "\$data" "\$data\.before-restore-\$stamp"/);
    assert.match(ETCD_RESTORE_SCRIPT, /sha256sum --check/);
  });
});
