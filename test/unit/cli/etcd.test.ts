/**
 * `g8s etcd` refusals, as a user meets them: a real process, its exit code and its lines.
 * What it does to a cluster is proven on a booted 3-master cluster (test/lab/ha.test.ts).
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "../../..");

describe("g8s etcd (process)", function () {
  this.timeout(30000);
  let project: string;
  before(() => {
    project = mkdtempSync(path.join(tmpdir(), "g8s-etcd-"));
    cpSync(path.join(ROOT, "stacks"), path.join(project, "stacks"), { recursive: true });
    cpSync(path.join(ROOT, "Pulumi.yaml"), path.join(project, "Pulumi.yaml"));
    const edge8 = readFileSync(path.join(project, "stacks", "Pulumi.edge8.yaml"), "utf8");
    assert.match(edge8, /mode: correct/);
    writeFileSync(
      path.join(project, "stacks", "Pulumi.edge9.yaml"),
      edge8.replace(/\bedge8\b/g, "edge9").replace("mode: correct", "mode: off"),
    );
  });
  after(() => rmSync(project, { recursive: true, force: true }));

  function g8s(args: string[], env: NodeJS.ProcessEnv = {}) {
    const r = spawnSync(process.execPath, [path.join(ROOT, "bin/g8s.js"), "etcd", ...args], {
      cwd: project,
      encoding: "utf8",
      env: { ...process.env, G8S_PROJECT_DIR: project, G8S_STATE_DIR: path.join(project, "state"), ...env },
    });
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it("refuses a bad command line with every problem and the usage (exit 2)", () => {
    const r = g8s(["restore", "edge8", "--snapshot", "../x.db", "--server", "http://plain"]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    const lines = r.stderr.split("\n");
    assert.match(lines[0], /^g8s etcd: --server 'http:\/\/plain': an https URL/);
    assert.match(lines[1], /^--snapshot "\.\.\/x\.db": give a snapshot's file name/);
    assert.match(lines[2], /^--yes is required: a restore loses everything written after the snapshot/);
    assert.match(r.stderr, /usage: g8s etcd snapshots STACK/);
    assert.match(g8s(["restore", "edge8", "--yes"]).stderr, /--snapshot is required/);
    assert.match(g8s(["snapshots", "edge8", "--yes"]).stderr, /--snapshot and --yes belong to restore, not snapshots/);
    assert.match(g8s(["backup", "edge8"]).stderr, /name what to do: snapshots, snapshot, restore/);
    assert.match(g8s(["snapshots"]).stderr, /name one stack/);
  });

  it("refuses a restore while the stack file lets the reconciler act, before reading any state (exit 1)", () => {
    const r = g8s(["restore", "edge8", "--snapshot", "edge8-master-0-20261202T120000Z.db", "--yes"]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      "g8s etcd restore: stacks/Pulumi.edge8.yaml: g8s:reconcile.mode is correct: set it to off while etcd is " +
        "restored (a pass must not replace a master it sees unready), and back afterwards\n",
    );
  });

  it("says a stack the backend does not hold has no state yet (exit 1)", () => {
    const backend = path.join(project, "backend");
    mkdirSync(backend);
    const r = g8s(["restore", "edge9", "--snapshot", "edge9-master-0-20261202T120000Z.db", "--yes", "--offline"], {
      G8S_BACKEND_URL: `file://${backend}`,
      PULUMI_CONFIG_PASSPHRASE: "not-a-secret",
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^g8s etcd restore: stack edge9 has no state yet: apply it first \(g8s reconcile edge9\)$/m);
    assert.equal(
      g8s(["snapshots", "nosuch"]).stderr,
      "g8s etcd snapshots: no stack file for nosuch (stacks/Pulumi.nosuch.yaml)\n",
    );
  });
});
