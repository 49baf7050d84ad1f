/**
 * The nodes' boot commands as cloud-init runs them: Debian's cloud-init turns `runcmd` into a
 * shell script (`cloudinit.util.shellify`, called here), and `sh` runs it against fake node
 * commands that log each call. A failed kubeadm init must end the boot; a join that fails while
 * the API is not up yet must be retried, with the node's files put back between attempts.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import {
  BOOTSTRAP_FAILED_SCRIPT_PATH,
  JOIN_ATTEMPTS,
  buildCloudConfig,
  type BootstrapConfig,
  type BootstrapRole,
} from "../../../components/bootstrap";
import { awsConfig, fakeAttachment, kvmConfig } from "./helpers";

const PYTHON = "/usr/bin/python3";
/** Commands a boot calls that would touch this machine or AWS: replaced by loggers (`curl` answers IMDS). */
const FAKED = [
  "mkdir",
  "modprobe",
  "sysctl",
  "systemctl",
  "kubeadm",
  "g8s-kubernetes",
  "kubectl",
  "touch",
  "sleep",
  "g8s-sync-secrets",
  "g8s-attach-master",
  "g8s-etcd-disk",
  "g8s-bootstrap-token",
  "curl",
  "gpg",
  "apt-get",
  "apt-mark",
  "aws",
];
/** g8s's own scripts that run for real, from the document's write_files. */
const REAL = [BOOTSTRAP_FAILED_SCRIPT_PATH];

interface Boot {
  readonly code: number | null;
  readonly calls: string[];
}

/** The first `times` calls of `command` whose arguments contain `match` fail. */
interface Failure {
  readonly command: "kubeadm" | "kubectl";
  readonly match: string;
  readonly times: number;
}

function shellify(runcmd: unknown): string {
  const r = spawnSync(
    PYTHON,
    ["-c", "import json,sys; from cloudinit import util; sys.stdout.write(util.shellify(json.load(sys.stdin)))"],
    { input: JSON.stringify(runcmd), encoding: "utf8" },
  );
  assert.equal(r.status, 0, `cloud-init's shellify failed: ${r.stderr}`);
  return r.stdout;
}

/** Runs a node's runcmd with `failure` injected. */
function boot(config: BootstrapConfig, role: BootstrapRole, failure?: Failure): Boot {
  const dir = mkdtempSync(join(tmpdir(), "g8s-runcmd-"));
  try {
    const log = join(dir, "calls");
    const doc = buildCloudConfig(config, role);
    for (const name of FAKED) {
      const lines: string[] = [];
      if (name === "curl") lines.push('echo "curl $*" >> "' + log + '"; echo i-0fake; exit 0');
      if (failure?.command === name) {
        lines.push(
          `case "$*" in *${failure.match}*)`,
          `  n=$(cat "${dir}/n" 2>/dev/null || echo 0); echo $((n + 1)) > "${dir}/n"`,
          `  [ "$n" -ge ${failure.times} ] || { echo "${name} $*" >> "${log}"; exit 1; } ;;`,
          "esac",
        );
      }
      writeFileSync(join(dir, name), `#!/bin/sh\n${lines.join("\n")}\necho "${name} $*" >> "${log}"\n`);
      chmodSync(join(dir, name), 0o755);
    }
    for (const path of REAL) {
      const file = doc.write_files.find((f) => f.path === path);
      if (file) writeFileSync(join(dir, basename(path)), file.content, { mode: 0o755 });
    }
    // Absolute paths of g8s's own scripts resolve to the fakes (or the real scripts) by name.
    const runcmd = doc.runcmd.map((c) =>
      Array.isArray(c) && c[0].startsWith("/") ? [basename(c[0]), ...c.slice(1)] : c,
    );
    const script = shellify(runcmd).replace(/\/usr\/local\/sbin\//g, "");
    const r = spawnSync("sh", ["-c", script], {
      encoding: "utf8",
      env: { PATH: `${dir}:/usr/bin:/bin` },
    });
    const calls = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [];
    return { code: r.status, calls };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("bootstrap: runcmd as cloud-init runs it", function () {
  this.timeout(60_000);
  const config = kvmConfig(1);
  const first: BootstrapRole = { kind: "first-master", master: "master-0" };
  const worker: BootstrapRole = { kind: "worker", pool: config.spec.nodePools[0].name };

  it("boots a first master through every step when nothing fails", () => {
    const b = boot(config, first);
    assert.equal(b.code, 0, b.calls.join("\n"));
    assert.ok(b.calls.some((c) => c.startsWith("kubeadm init")));
    assert.ok(b.calls.some((c) => c.startsWith("kubectl") && c.includes("apply")));
  });

  it("ends the boot at a failed kubeadm init: no token, no add-ons, exit status not 0", () => {
    const b = boot(config, first, { command: "kubeadm", match: "init", times: 1 });
    assert.notEqual(b.code, 0);
    assert.equal(b.calls.at(-1)?.startsWith("kubeadm init"), true, b.calls.join("\n"));
    assert.ok(!b.calls.some((c) => c.startsWith("kubectl")), "nothing runs after the failed init");
  });

  it("retries a failing join, resetting and putting the node's files back in between", () => {
    const b = boot(config, worker, { command: "kubeadm", match: "join", times: 2 });
    assert.equal(b.code, 0, b.calls.join("\n"));
    const joins = b.calls.filter((c) => c.startsWith("kubeadm join"));
    assert.equal(joins.length, 3);
    const afterFirstJoin = b.calls.slice(b.calls.indexOf(joins[0]) + 1);
    assert.deepEqual(
      afterFirstJoin.slice(0, 3).map((c) => c.split(" ").slice(0, 2).join(" ").trim()),
      ["kubeadm reset", "g8s-sync-secrets", "sleep 15"],
    );
  });

  describe("on AWS, a node whose bootstrap failed asks its auto scaling group to replace it", () => {
    const aws = awsConfig(1);
    const awsWorker: BootstrapRole = { kind: "worker", pool: aws.spec.nodePools[0].name };
    const awsFirst: BootstrapRole = { kind: "first-master", master: "master-0", attach: fakeAttachment(0) };
    const unhealthy =
      "aws autoscaling set-instance-health --region eu-central-1 --instance-id i-0fake --health-status Unhealthy --no-should-respect-grace-period";

    it("marks a worker whose join failed for good unhealthy, at once (not after the grace period)", () => {
      const b = boot(aws, awsWorker, { command: "kubeadm", match: "join", times: JOIN_ATTEMPTS });
      assert.notEqual(b.code, 0);
      assert.equal(b.calls.filter((c) => c.startsWith("kubeadm join")).length, JOIN_ATTEMPTS);
      assert.equal(b.calls.at(-1), unhealthy, b.calls.join("\n"));
    });

    it("marks a first master whose kubeadm init failed unhealthy", () => {
      const b = boot(aws, awsFirst, { command: "kubeadm", match: "init", times: 1 });
      assert.notEqual(b.code, 0);
      assert.equal(b.calls.at(-1), unhealthy, b.calls.join("\n"));
    });

    it("leaves a master alone once kubeadm succeeded: its etcd holds the cluster's state, a new instance could not take it", () => {
      const b = boot(aws, awsFirst, { command: "kubectl", match: "apply", times: 1 });
      assert.notEqual(b.code, 0, "the boot still fails, and cloud-init reports it");
      assert.ok(b.calls.some((c) => c.startsWith("kubectl") && c.includes("apply")));
      assert.ok(!b.calls.some((c) => c.startsWith("aws autoscaling")), b.calls.join("\n"));
    });

    it("reports nothing when the boot succeeds, or on KVM (no auto scaling group)", () => {
      const ok = boot(aws, awsWorker);
      assert.equal(ok.code, 0, ok.calls.join("\n"));
      const kvm = boot(config, worker, { command: "kubeadm", match: "join", times: JOIN_ATTEMPTS });
      assert.notEqual(kvm.code, 0);
      for (const b of [ok, kvm]) assert.ok(!b.calls.some((c) => c.startsWith("aws autoscaling")), b.calls.join("\n"));
    });
  });
});
