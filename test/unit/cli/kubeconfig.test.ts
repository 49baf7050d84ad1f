/**
 * `g8s kubeconfig` refusals, as a user meets them: a real process, its exit code and its lines.
 * The kubeconfig it issues is proven on a booted guest cluster (test/lab/boot.test.ts).
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "../../..");

describe("g8s kubeconfig (process)", function () {
  this.timeout(30000);
  let project: string;
  before(() => {
    project = mkdtempSync(path.join(tmpdir(), "g8s-kubeconfig-"));
    cpSync(path.join(ROOT, "stacks"), path.join(project, "stacks"), { recursive: true });
    cpSync(path.join(ROOT, "Pulumi.yaml"), path.join(project, "Pulumi.yaml"));
    writeFileSync(path.join(project, "stacks", "Pulumi.bad.yaml"), "config:\n  g8s:cluster:\n    id: bad\n");
  });
  after(() => rmSync(project, { recursive: true, force: true }));

  function g8s(...args: string[]) {
    const r = spawnSync(process.execPath, [path.join(ROOT, "bin/g8s.js"), "kubeconfig", ...args], {
      cwd: project,
      encoding: "utf8",
      env: { ...process.env, G8S_PROJECT_DIR: project, G8S_STATE_DIR: path.join(project, "state") },
    });
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it("refuses a bad request with every problem, its flag and the usage (exit 2)", () => {
    const r = g8s("edge8", "--user", "Sam", "--group", "system:masters", "--ttl", "3d");
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    const lines = r.stderr.split("\n");
    assert.match(lines[0], /^g8s kubeconfig: --user must be 1 to 64 lowercase/);
    assert.match(lines[1], /^--group system:masters is the admin kubeconfig's group/);
    assert.match(lines[2], /^--ttl 3d: between 1m and 24h/);
    assert.match(r.stderr, /usage: g8s kubeconfig STACK --user NAME/);
    assert.match(g8s("edge8").stderr, /--user is required/);
    assert.match(g8s("--user", "sam").stderr, /name one stack/);
  });

  it("says which stack file is missing, and where (exit 1)", () => {
    const r = g8s("nosuch", "--user", "sam");
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `g8s kubeconfig: no stack file for nosuch (stacks/Pulumi.nosuch.yaml)\n`);
  });

  it("prints the stack file's located problems instead of reading its state (exit 1)", () => {
    const r = g8s("bad", "--user", "sam");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^stacks\/Pulumi\.bad\.yaml: provider: is required/m);
  });

  it("says a stack the backend does not hold has no state yet, and creates none (exit 1)", () => {
    const backend = path.join(project, "backend");
    mkdirSync(backend);
    const r = spawnSync(
      process.execPath,
      [path.join(ROOT, "bin/g8s.js"), "kubeconfig", "edge8", "--user", "sam", "--offline"],
      {
        cwd: project,
        encoding: "utf8",
        env: {
          ...process.env,
          G8S_PROJECT_DIR: project,
          G8S_STATE_DIR: path.join(project, "state"),
          G8S_BACKEND_URL: `file://${backend}`,
          PULUMI_CONFIG_PASSPHRASE: "not-a-secret",
        },
      },
    );
    assert.equal(r.status, 1, r.stderr);
    // The one line: the reconciler's start-up info (the Pulumi CLI, plugins) only at G8S_LOG_LEVEL=debug.
    assert.equal(r.stderr.trim(), "g8s kubeconfig: stack edge8 has no state yet: apply it first (g8s reconcile edge8)");
    const stacks = path.join(backend, ".pulumi", "stacks");
    const created = existsSync(stacks) ? readdirSync(stacks, { recursive: true }).map(String) : [];
    assert.deepEqual(
      created.filter((f) => f.endsWith(".json")),
      [],
      "no stack made in the backend",
    );
  });

  it("points a vault-backed cluster to the Vault role that issues for the user (exit 1)", () => {
    const r = g8s("eu1prod", "--user", "jane", "--ttl", "2h");
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      "g8s kubeconfig: stacks/Pulumi.eu1prod.yaml: pki.backend is vault, whose CA key never leaves Vault: issue with " +
        "'vault write pki-eu1prod/issue/user-jane common_name=jane ttl=2h' (a role per user listed in pki.users)\n",
    );
  });
});
