/**
 * `g8s plan` against a temporary git repository holding the store fixture, with the real
 * engine: commits that touch one stack, the program, or nothing; added, removed and broken
 * stack files; exit codes and report content.
 */
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { PROJECT_ROOT } from "../../automation/engine";
import { createSandbox, reconcileOnce, TEST_PASSPHRASE, writeFixtureStack, type Sandbox } from "./harness";

describe("real engine: g8s plan", function () {
  this.timeout(600_000);
  let sandbox: Sandbox;
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", sandbox.projectDir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const commit = (message: string) => {
    git("add", "-A");
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message);
  };
  const plan = (base = "base") => {
    const report = path.join(sandbox.root, "plan.md");
    rmSync(report, { force: true });
    const r = spawnSync(
      process.execPath,
      [
        path.join(PROJECT_ROOT, "bin/g8s.js"),
        "plan",
        "--base",
        base,
        "--report",
        report,
        "--project-dir",
        sandbox.projectDir,
        "--state-dir",
        sandbox.stateDir,
        ...sandbox.settingsArgs,
      ],
      {
        env: {
          ...process.env,
          PULUMI_CONFIG_PASSPHRASE: TEST_PASSPHRASE,
          G8S_PULUMI: path.join(sandbox.cli.binDir, "pulumi"),
        },
        encoding: "utf8",
      },
    );
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, report: readFileSync(report, "utf8") };
  };

  /** Every file of the shared backend with a hash of its content. */
  const backendFiles = (dir = path.join(sandbox.stateDir, "backend")): Record<string, string> => {
    const files: Record<string, string> = {};
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) Object.assign(files, backendFiles(file));
      else files[file] = createHash("sha256").update(readFileSync(file)).digest("hex");
    }
    return files;
  };

  before(async () => {
    sandbox = await createSandbox("g8s-plan");
    writeFileSync(path.join(sandbox.projectDir, ".gitignore"), "node_modules\n");
    writeFixtureStack(sandbox, "p1", { a: "1" });
    writeFixtureStack(sandbox, "p2", { a: "2" });
    const deployed = reconcileOnce(sandbox);
    assert.equal(deployed.code, 0, deployed.stderr);
    git("init", "-q", "-b", "main");
    commit("deployed state");
    git("tag", "base");
  });
  after(() => sandbox?.dispose());

  afterEach(() => {
    git("reset", "-q", "--hard", "base");
    git("clean", "-qfd", "-e", "node_modules");
  });

  it("touches no stack for a documentation change: exit 0", () => {
    writeFileSync(path.join(sandbox.projectDir, "NOTES.md"), "docs\n");
    commit("docs");
    const r = plan();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.report, /This change touches no stack\./);
  });

  it("previews only the stack whose file changed: exit 2", () => {
    writeFixtureStack(sandbox, "p1", { a: "1", b: "new" });
    commit("p1 gets a record");
    const r = plan();
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.report, /\| `p1` \| file modified \| 1 \| 0 \| 0 \| 0 \| changes \|/);
    assert.doesNotMatch(r.report, /`p2`/);
  });

  it("previews every stack when the program changes", () => {
    const index = path.join(sandbox.projectDir, "index.ts");
    writeFileSync(index, readFileSync(index, "utf8").replace("content: records[key]", 'content: records[key] + "!"'));
    commit("program change");
    const r = plan();
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.report, /\| `p1` \| program changed \| 0 \| 1 \| 0 \| 0 \| changes \|/);
    assert.match(r.report, /\| `p2` \| program changed \| 0 \| 1 \| 0 \| 0 \| changes \|/);
  });

  it("previews an added stack file as a new cluster without writing to the shared backend", () => {
    const file = writeFixtureStack(sandbox, "p3", { a: "3" });
    const before = readFileSync(file, "utf8");
    commit("new cluster");
    const backendBefore = backendFiles();
    const r = plan();
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.report, /\| `p3` \| file added \| 2 \| 0 \| 0 \| 0 \| 🆕 new cluster \|/);
    assert.deepEqual(backendFiles(), backendBefore, "no file of the shared backend was created, changed or removed");
    assert.equal(readFileSync(file, "utf8"), before, "the stack file is left as it was");
    assert.equal(git("status", "--porcelain"), "", "the checkout is clean");
    const listed = execFileSync(path.join(sandbox.cli.binDir, "pulumi"), ["stack", "ls", "--json"], {
      cwd: sandbox.projectDir,
      env: sandbox.env,
      encoding: "utf8",
    });
    assert.doesNotMatch(listed, /"p3"/, "the preview's stack was removed from the backend");
  });

  it("reports a removed stack file as orphaned, nothing destroyed", () => {
    git("rm", "-q", "stacks/Pulumi.p2.yaml");
    commit("remove p2");
    const r = plan();
    assert.equal(r.code, 2);
    assert.match(r.report, /\| `p2` \| file removed \| 0 \| 0 \| 0 \| 0 \| ⚠️ orphaned, nothing will be destroyed \|/);
  });

  it("fails on a broken stack file with its located errors, before any preview: exit 1", () => {
    writeFileSync(
      path.join(sandbox.projectDir, "stacks", "Pulumi.p1.yaml"),
      "config:\n  g8s:reconcile: { interval: 1s }\n",
    );
    commit("broken");
    const r = plan();
    assert.equal(r.code, 1);
    assert.match(r.report, /g8s:reconcile.interval: must be between 10s and 24h \(got 1s\)/);
    assert.doesNotMatch(r.stderr, /previewing/);
  });
});
