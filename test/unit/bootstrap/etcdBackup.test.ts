/**
 * etcd backups in the masters' cloud-config: scripts, settings, timer, enabled after kubeadm;
 * none of it on workers. The scripts run for real on a booted guest cluster (test/lab/boot.test.ts).
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import {
  ETCD_BACKUP_ENV_PATH,
  ETCD_FETCH_SCRIPT,
  ETCD_FETCH_SCRIPT_PATH,
  OBJECT_STORE_CLIENT,
  OBJECT_STORE_CLIENT_PATH,
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
  backup: Partial<Omit<BootstrapConfig["spec"]["etcd"]["backup"], "objectStore">> & {
    objectStore?: Partial<BootstrapConfig["spec"]["etcd"]["backup"]["objectStore"]>;
  },
): BootstrapConfig {
  const objectStore = { ...config.spec.etcd.backup.objectStore, ...backup.objectStore };
  return {
    ...config,
    spec: { ...config.spec, etcd: { backup: { ...config.spec.etcd.backup, ...backup, objectStore } } },
  } as BootstrapConfig;
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
        assert.equal(files.get(ETCD_FETCH_SCRIPT_PATH)?.permissions, "0755");
        assert.equal(files.get(OBJECT_STORE_CLIENT_PATH)?.permissions, "0755");
        const env = files.get(ETCD_BACKUP_ENV_PATH)?.content ?? "";
        assert.match(
          env,
          new RegExp(`^CLUSTER_ID=${config.spec.id}\nRETENTION=8\nSNAPSHOT_DIR=/var/lib/etcd-disk/snapshots\n`),
        );
        // aws: S3 in the region, the bucket g8s makes, the instance role, the lifecycle prunes.
        // kvm: no store unless etcd.backup.objectStore names one.
        const s3 = Object.fromEntries(env.split("\n").flatMap((l) => (/^S3_/.test(l) ? [l.split("=")] : [])));
        assert.deepEqual(
          s3,
          platform === "aws"
            ? {
                S3_ENDPOINT: "https://s3.eu-central-1.amazonaws.com",
                S3_ADDRESSING: "virtual",
                S3_BUCKET: s3.S3_BUCKET,
                S3_REGION: "eu-central-1",
                S3_PREFIX: `${config.spec.id}/`,
                S3_PRUNE: "no",
                S3_CREDENTIALS_DIR: "",
              }
            : {
                S3_ENDPOINT: "",
                S3_ADDRESSING: "",
                S3_BUCKET: "",
                S3_REGION: "",
                S3_PREFIX: "",
                S3_PRUNE: "no",
                S3_CREDENTIALS_DIR: "",
              },
        );
        if (platform === "aws") assert.match(s3.S3_BUCKET, new RegExp(`^g8s-${config.spec.id}-etcd-[0-9a-f]{8}$`));
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

  it("copies to an S3-compatible store outside AWS with the credentialsSecret's keys from the share, pruning there too", () => {
    const { files } = filesOf(
      withBackup(kvmConfig(1), {
        objectStore: { endpoint: "https://s3.example.com:9000", bucket: "backups", credentialsSecret: "etcd-s3" },
      }),
      "first-master",
    );
    const env = files.get(ETCD_BACKUP_ENV_PATH)?.content ?? "";
    for (const line of [
      "S3_ENDPOINT=https://s3.example.com:9000",
      "S3_ADDRESSING=path",
      "S3_BUCKET=backups",
      "S3_REGION=us-east-1",
      "S3_PREFIX=edge7/",
      "S3_PRUNE=yes",
      "S3_CREDENTIALS_DIR=/mnt/g8s-secrets",
    ]) {
      assert.ok(env.split("\n").includes(line), `${line} in\n${env}`);
    }
  });

  it("signs requests as AWS documents Signature Version 4 (the S3 examples of its reference)", () => {
    // The GET Object and ListObjects examples of AWS's SigV4 documentation for S3, with their
    // published signatures.
    const dir = mkdtempSync(path.join(tmpdir(), "g8s-sigv4-"));
    try {
      writeFileSync(path.join(dir, "g8s_object_store.py"), OBJECT_STORE_CLIENT);
      const driver = [
        "import datetime, sys",
        `sys.path.insert(0, ${JSON.stringify(dir)})`,
        "import g8s_object_store as s",
        "when = datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc)",
        "keys = ('AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'us-east-1')",
        "host = 'examplebucket.s3.amazonaws.com'",
        "print(s.sign('GET', host, '/test.txt', {}, {'Range': 'bytes=0-9'}, s.EMPTY_SHA256, when, *keys)['authorization'])",
        "print(s.sign('GET', host, '/', {'max-keys': '2', 'prefix': 'J'}, {}, s.EMPTY_SHA256, when, *keys)['authorization'])",
      ].join("\n");
      const r = spawnSync("python3", ["-c", driver], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      const signatures = r.stdout
        .trim()
        .split("\n")
        .map((l) => /Signature=([0-9a-f]{64})$/.exec(l)?.[1]);
      assert.deepEqual(signatures, [
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
      ]);
      assert.match(r.stdout, /SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("renders scripts bash accepts", () => {
    const py = spawnSync("python3", ["-c", "import ast, sys; ast.parse(sys.stdin.read())"], {
      input: OBJECT_STORE_CLIENT,
      encoding: "utf8",
    });
    assert.equal(py.status, 0, py.stderr);
    for (const script of [ETCD_SNAPSHOT_SCRIPT, ETCD_RESTORE_SCRIPT, ETCD_FETCH_SCRIPT]) {
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
