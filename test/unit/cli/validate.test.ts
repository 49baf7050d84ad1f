/** `g8s validate` as a user runs it: a real process, its exit code and its output lines. */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "../../..");
const BROKEN = "test/fixtures/stacks/broken";

function g8s(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, "bin/g8s.js"), ...args], { cwd: ROOT, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("g8s validate (process)", function () {
  this.timeout(30000);

  it("passes on the example stacks in stacks/ with exit 0 and no problem lines", () => {
    const r = g8s("validate");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "3 stack file(s) valid\n");
  });

  it("prints one located line per problem in a folder of broken files and exits 1", () => {
    const r = g8s("validate", BROKEN);
    assert.equal(r.code, 1);
    assert.deepEqual(r.stdout.trimEnd().split("\n"), [
      `${BROKEN}/Pulumi.badyaml.yaml: line 3, column 9: invalid YAML: Nested mappings are not allowed in compact mappings`,
      `${BROKEN}/Pulumi.nocluster.yaml: g8s:cluster: is missing: every g8s stack file describes one cluster`,
      `${BROKEN}/Pulumi.pools.yaml: g8s:hostKubeconfig: must be a secret: set it with 'pulumi config set --secret g8s:hostKubeconfig …' (and rotate the exposed value)`,
      `${BROKEN}/Pulumi.pools.yaml: g8s:reconcile.mode: must be one of correct, detect, off (got 'fix')`,
      `${BROKEN}/Pulumi.pools.yaml: g8s:reconcile.interval: must be between 10s and 24h (got 1s)`,
      `${BROKEN}/Pulumi.pools.yaml: nodePools[1].max: must be ≥ min (3)`,
      `${BROKEN}/Pulumi.types.yaml: masters.count: must be a number (got 'three')`,
      `${BROKEN}/Pulumi.types.yaml: nodePools[0].cpus: must be a whole number (got number 2.5)`,
      `${BROKEN}/Pulumi.typo.yaml: g8s:reconcil: unknown key: did you mean 'g8s:reconcile'?`,
      `${BROKEN}/Pulumi.typo.yaml: nodePools: is required`,
      `${BROKEN}/Pulumi.typo.yaml: nodepools: unknown key: did you mean 'nodePools'?`,
    ]);
    assert.equal(r.stderr, "5 of 5 stack file(s) invalid, 11 problem(s)\n");
    assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at /, "no stack trace");
  });

  it("validates the files it is given, valid and broken alike", () => {
    const r = g8s("validate", "test/fixtures/stacks/valid/Pulumi.edge7.yaml", `${BROKEN}/Pulumi.pools.yaml`);
    assert.equal(r.code, 1);
    assert.equal(r.stdout.split("\n").filter((l) => l.includes("Pulumi.edge7.yaml")).length, 0);
    assert.equal(r.stderr, "1 of 2 stack file(s) invalid, 4 problem(s)\n");
  });

  it("prints the same findings as JSON with --json", () => {
    const r = g8s("validate", "--json", `${BROKEN}/Pulumi.pools.yaml`, "test/fixtures/stacks/valid");
    assert.equal(r.code, 1);
    const results = JSON.parse(r.stdout) as Array<{ file: string; stack: string; valid: boolean; issues: unknown[] }>;
    assert.deepEqual(
      results.map((x) => [x.file, x.stack, x.valid, x.issues.length]),
      [
        [`${BROKEN}/Pulumi.pools.yaml`, "pools", false, 4],
        ["test/fixtures/stacks/valid/Pulumi.edge7.yaml", "edge7", true, 0],
        ["test/fixtures/stacks/valid/Pulumi.eu1prod.yaml", "eu1prod", true, 0],
      ],
    );
    assert.deepEqual(results[0].issues[3], { path: "nodePools[1].max", message: "must be ≥ min (3)" });
  });

  it("reports a file it cannot read as a problem line", () => {
    const r = g8s("validate", "stacks/Pulumi.nope.yaml");
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "stacks/Pulumi.nope.yaml: cannot read the file (ENOENT)\n");
  });

  it("rejects an unknown flag with usage and exit 2", () => {
    const r = g8s("validate", "--frobnicate");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^g8s validate: Unknown option '--frobnicate'/);
    assert.match(r.stderr, /usage: g8s validate/);
  });

  it("rejects an unknown command with exit 2", () => {
    const r = g8s("destroy-everything");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^g8s: unknown command 'destroy-everything'/);
  });
});
