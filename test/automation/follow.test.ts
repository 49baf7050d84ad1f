/** Following a git branch: real git repositories in a temp dir, a fake reconciler target. */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { GitFollower } from "../../automation/plan/follow";

describe("following a git branch", () => {
  let root: string;
  let upstream: string; // where people merge
  let checkout: string; // the reconciler's project dir
  let requested: string[];
  let refreshed: number;
  let warnings: string[];
  let follower: GitFollower;

  const git = (dir: string, ...args: string[]) =>
    execFileSync("git", ["-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  const commitIn = (dir: string, files: Record<string, string>, message: string) => {
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), text);
    }
    git(dir, "add", "-A");
    git(dir, "commit", "-qm", message);
  };

  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), "g8s-follow-"));
    const origin = path.join(root, "origin.git");
    upstream = path.join(root, "upstream");
    checkout = path.join(root, "checkout");
    execFileSync("git", ["init", "-q", "--bare", "-b", "main", origin]);
    execFileSync("git", ["clone", "-q", origin, upstream], { stdio: "ignore" });
    git(upstream, "checkout", "-q", "-b", "main");
    commitIn(
      upstream,
      { "Pulumi.yaml": "name: p\n", "stacks/Pulumi.a.yaml": "config: {}\n", "stacks/Pulumi.b.yaml": "config: {}\n" },
      "init",
    );
    git(upstream, "push", "-q", "origin", "main");
    execFileSync("git", ["clone", "-q", "-b", "main", origin, checkout], { stdio: "ignore" });
    requested = [];
    refreshed = 0;
    warnings = [];
    follower = new GitFollower(
      checkout,
      "origin",
      "main",
      {
        refresh: async () => void refreshed++,
        requestRun: (s) => (requested.push(s), { accepted: true }),
        stackNames: () => ["a", "b", "c"],
      },
      { info: () => undefined, warn: (_o, msg) => void warnings.push(msg) },
    );
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("does nothing while the branch has not moved", async () => {
    assert.equal(await follower.poll(), undefined);
    assert.deepEqual(requested, []);
  });

  it("fast-forwards and runs exactly the stacks a new commit touches", async () => {
    commitIn(upstream, { "stacks/Pulumi.a.yaml": "config:\n  x:y: 1\n", "README.md": "docs\n" }, "change a");
    git(upstream, "push", "-q", "origin", "main");
    const moved = await follower.poll();
    assert.deepEqual(moved?.stacks, ["a"]);
    assert.deepEqual(requested, ["a"]);
    assert.equal(refreshed, 1, "stack files are re-read before the runs are requested");
    assert.equal(git(checkout, "rev-parse", "HEAD"), git(upstream, "rev-parse", "HEAD"));
  });

  it("runs every stack when the program changes", async () => {
    commitIn(upstream, { "index.ts": "export const x = 1;\n" }, "program");
    git(upstream, "push", "-q", "origin", "main");
    await follower.poll();
    assert.deepEqual(requested, ["a", "b", "c"]);
  });

  it("leaves a checkout with local commits alone and says so", async () => {
    commitIn(checkout, { "local.txt": "mine\n" }, "local work");
    commitIn(upstream, { "stacks/Pulumi.b.yaml": "config:\n  x:y: 2\n" }, "change b");
    git(upstream, "push", "-q", "origin", "main");
    assert.equal(await follower.poll(), undefined);
    assert.deepEqual(requested, []);
    assert.match(warnings[0], /cannot fast-forward to origin\/main/);
  });
});
