/**
 * `g8s reconcile --once` as a process with the real engine: JSON lines, exit codes, a broken file
 * among good ones, and a checkout the reconciler follows left as it was.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { PassRecord } from "../../automation/reconciler/types";
import { createSandbox, readRecord, reconcileOnce, writeFixtureStack, writeRecord, type Sandbox } from "./harness";

function reconcile(sandbox: Sandbox, ...args: string[]) {
  const r = reconcileOnce(sandbox, args);
  const lines = r.stdout.trim().split("\n").filter(Boolean);
  const records = lines.map((l) => JSON.parse(l) as PassRecord & { summary?: Record<string, number> });
  // Lines come as passes finish; sort for stable assertions.
  const passes = records.filter((x) => !x.summary).sort((a, b) => a.stack.localeCompare(b.stack));
  return {
    code: r.code,
    records: passes,
    summary: records.find((x) => x.summary)?.summary,
    stderr: r.stderr,
    /** The log lines that carry an error, as [message, error]. */
    loggedErrors: () =>
      r.stderr
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { msg: string; err?: string })
        .filter((l) => l.err !== undefined)
        .map((l) => [l.msg, l.err]),
  };
}

describe("real engine: g8s reconcile --once", function () {
  this.timeout(600_000);
  let sandbox: Sandbox;
  before(async () => (sandbox = await createSandbox("g8s-once")));
  after(() => sandbox?.dispose());

  it("creates new stacks, then reports them in sync, one JSON line per stack", async () => {
    writeFixtureStack(sandbox, "o1", { a: "1" });
    writeFixtureStack(sandbox, "o2", { a: "2" });
    const first = reconcile(sandbox);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(
      first.records.map((r) => [r.stack, r.outcome]),
      [
        ["o1", "corrected"],
        ["o2", "corrected"],
      ],
    );
    const second = reconcile(sandbox);
    assert.deepEqual(second.summary, { "in-sync": 2 });
  });

  /** Stacks created and in sync, so each test passes alone. */
  function created(...records: Array<[string, string]>): void {
    for (const [stack, value] of records) writeFixtureStack(sandbox, stack, { a: value });
    const r = reconcile(sandbox, ...records.map(([stack]) => stack));
    assert.equal(r.code, 0, r.stderr);
  }

  it("detects without correcting in mode detect", async () => {
    created(["d1", "1"]);
    writeRecord(sandbox, "d1", "a", "hand edit");
    const r = reconcile(sandbox, "d1", "--default-mode", "detect");
    assert.equal(r.code, 0);
    assert.equal(r.records[0].outcome, "drifted");
    assert.deepEqual(
      r.records[0].drift.map((d) => [d.op, d.name, d.keys]),
      [["update", "record-a", ["content"]]],
    );
    assert.equal(readRecord(sandbox, "d1", "a"), "hand edit");
  });

  it("reconciles the good stacks and exits 1 when one stack file is broken", async () => {
    created(["b1", "1"], ["b2", "2"]);
    writeRecord(sandbox, "b1", "a", "hand edit");
    writeFileSync(
      path.join(sandbox.projectDir, "stacks", "Pulumi.b3.yaml"),
      "config:\n  g8s:reconcile: { mode: fix }\n",
    );
    const r = reconcile(sandbox, "b1", "b2", "b3");
    assert.equal(r.code, 1);
    assert.deepEqual(
      r.records.map((x) => [x.stack, x.outcome]),
      [
        ["b1", "corrected"],
        ["b2", "in-sync"],
        ["b3", "invalid"],
      ],
    );
    assert.equal(
      r.records[2].error,
      "stacks/Pulumi.b3.yaml: g8s:reconcile.mode: must be one of correct, detect, off (got 'fix')",
    );
    assert.equal(readRecord(sandbox, "b1", "a"), "1");
  });

  it("leaves the stack files it follows untouched: git status stays clean, the salt stays private", () => {
    const git = (...args: string[]) => execFileSync("git", ["-C", sandbox.projectDir, ...args], { encoding: "utf8" });
    writeFileSync(path.join(sandbox.projectDir, ".gitignore"), "node_modules\n");
    writeFixtureStack(sandbox, "g1", { a: "1" });
    git("init", "-q", "-b", "main");
    git("add", "-A");
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "desired state");
    const created = reconcile(sandbox, "g1");
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.records[0].outcome, "corrected");
    assert.equal(git("status", "--porcelain"), "", "a new stack's creation writes nothing into the checkout");
    const again = reconcile(sandbox, "g1");
    assert.deepEqual(again.summary, { "in-sync": 1 });
    assert.equal(git("status", "--porcelain"), "");
    const copy = readFileSync(path.join(sandbox.stateDir, "workspace", "stacks", "Pulumi.g1.yaml"), "utf8");
    assert.match(copy, /^encryptionsalt: v1:/m, "Pulumi's salt lives in the engine's own copy");
  });

  it("logs an engine failure as one line with its cause and keeps the engine's output once in the record", () => {
    writeFileSync(
      path.join(sandbox.projectDir, "stacks", "Pulumi.f1.yaml"),
      `config:\n  store:dir: ${path.join(sandbox.storeDir, "f1")}\n`,
    );
    const r = reconcile(sandbox, "f1");
    assert.equal(r.code, 1);
    const cause = "detect: pulumi preview failed: Missing required configuration variable 'store:records'";
    assert.equal(r.records[0].error, cause);
    assert.equal(r.records[0].output?.split("Diagnostics:").length, 2, "the output once");
    assert.deepEqual(r.loggedErrors(), [["pass failed: backing off", cause]]);
    assert.doesNotMatch(r.stderr, /Diagnostics:/, "the log holds no engine output");
  });

  it("logs a backend it cannot reach as one line per duty (renewal, pass), never the CLI's whole output, and no password", () => {
    writeFixtureStack(sandbox, "u1", { a: "1" });
    const r = reconcile(sandbox, "u1", "--backend-url", "postgres://g8s:s3cr3t-pw@127.0.0.1:1/state");
    assert.equal(r.code, 1, r.stderr);
    const cause =
      'pulumi stack select failed: unable to open state database "postgres://g8s:[redacted]@127.0.0.1:1/state": ' +
      "failed to ping PostgreSQL: dial tcp 127.0.0.1:1: connect: connection refused";
    assert.deepEqual(r.loggedErrors(), [
      ["certificate renewal failed", cause],
      ["pass failed: backing off", `detect: ${cause}`],
    ]);
    assert.match(r.records[0].output ?? "", /^Command failed with exit code 1: \S+ stack select/);
    assert.doesNotMatch(r.stderr + JSON.stringify(r.records), /s3cr3t-pw/);
  });
});
