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
import { buildCloudConfig, type BootstrapConfig, type BootstrapRole } from "../../../components/bootstrap";
import { kvmConfig } from "./helpers";

const PYTHON = "/usr/bin/python3";
/** Commands a boot calls that would touch this machine: replaced by loggers. */
const FAKED = ["mkdir", "modprobe", "sysctl", "systemctl", "kubeadm", "kubectl", "touch", "sleep", "g8s-sync-secrets"];

interface Boot {
  readonly code: number | null;
  readonly calls: string[];
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

/** Runs a node's runcmd; `kubeadm` fails for the first `failures` calls of `verb`. */
function boot(config: BootstrapConfig, role: BootstrapRole, verb: "init" | "join", failures: number): Boot {
  const dir = mkdtempSync(join(tmpdir(), "g8s-runcmd-"));
  try {
    const log = join(dir, "calls");
    for (const name of FAKED) {
      const body =
        name === "kubeadm"
          ? [
              `if [ "$1" = version ]; then echo v${config.spec.kubernetes.version}; exit 0; fi`,
              `if [ "$1" = ${verb} ]; then`,
              `  n=$(cat "${dir}/n" 2>/dev/null || echo 0); echo $((n + 1)) > "${dir}/n"`,
              `  [ "$n" -ge ${failures} ] || { echo "kubeadm $*" >> "${log}"; exit 1; }`,
              "fi",
            ].join("\n")
          : "";
      writeFileSync(join(dir, name), `#!/bin/sh\n${body}\necho "${name} $*" >> "${log}"\n`);
      chmodSync(join(dir, name), 0o755);
    }
    const doc = buildCloudConfig(config, role);
    // Absolute paths of g8s's own scripts resolve to the fakes by name.
    const runcmd = doc.runcmd.map((c) =>
      Array.isArray(c) && c[0].startsWith("/") ? [basename(c[0]), ...c.slice(1)] : c,
    );
    const script = shellify(runcmd).replace(/\/usr\/local\/sbin\/g8s-sync-secrets/g, "g8s-sync-secrets");
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
    const b = boot(config, first, "init", 0);
    assert.equal(b.code, 0, b.calls.join("\n"));
    assert.ok(b.calls.some((c) => c.startsWith("kubeadm init")));
    assert.ok(b.calls.some((c) => c.startsWith("kubectl") && c.includes("apply")));
  });

  it("ends the boot at a failed kubeadm init: no token, no add-ons, exit status not 0", () => {
    const b = boot(config, first, "init", 1);
    assert.notEqual(b.code, 0);
    assert.equal(b.calls.at(-1)?.startsWith("kubeadm init"), true, b.calls.join("\n"));
    assert.ok(!b.calls.some((c) => c.startsWith("kubectl")), "nothing runs after the failed init");
  });

  it("retries a failing join, resetting and putting the node's files back in between", () => {
    const b = boot(config, worker, "join", 2);
    assert.equal(b.code, 0, b.calls.join("\n"));
    const joins = b.calls.filter((c) => c.startsWith("kubeadm join"));
    assert.equal(joins.length, 3);
    const afterFirstJoin = b.calls.slice(b.calls.indexOf(joins[0]) + 1);
    assert.deepEqual(
      afterFirstJoin.slice(0, 3).map((c) => c.split(" ").slice(0, 2).join(" ").trim()),
      ["kubeadm reset", "g8s-sync-secrets", "sleep 15"],
    );
  });
});
