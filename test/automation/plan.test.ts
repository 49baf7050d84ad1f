import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { isProgramFile, touchedStacks } from "../../automation/plan/changes";
import { mapBounded, runPlan, type PlanResult } from "../../automation/plan/plan";
import { renderMarkdown, renderSummary } from "../../automation/plan/report";
import { ProjectStackSource } from "../../automation/reconciler/discovery";
import { runPass } from "../../automation/reconciler/pass";
import type { OperationOptions, PreviewResult } from "../../automation/reconciler/types";
import { FakeClock, FakeEngine, whileAdvancing, type Step } from "./fakes";

/** A git repository at `dir` with a `stacks/` folder and a Pulumi.yaml named `project`; `commit()` commits everything. */
function projectRepo(dir: string, project: string): () => void {
  mkdirSync(path.join(dir, "stacks"));
  writeFileSync(path.join(dir, "Pulumi.yaml"), `name: ${project}\nruntime: nodejs\n`);
  const git = (...args: string[]) => execFileSync("git", ["-C", dir, ...args], { stdio: "pipe" });
  git("init", "-q", "-b", "main");
  return () => {
    git("add", "-A");
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "c");
  };
}

describe("g8s plan: touched stacks", () => {
  const current = ["eu1prod", "edge7", "us2"];

  it("touches the stack whose file changed, and only that one", () => {
    assert.deepEqual(touchedStacks([{ path: "stacks/Pulumi.edge7.yaml", status: "modified" }], current), [
      { stack: "edge7", reason: "modified" },
    ]);
  });

  it("touches every stack when the program changes", () => {
    for (const path of [
      "components/aws/network.ts",
      "index.ts",
      "package-lock.json",
      "Pulumi.yaml",
      "policy/index.ts",
    ]) {
      assert.deepEqual(
        touchedStacks([{ path, status: "modified" }], current).map((t) => [t.stack, t.reason]),
        [
          ["edge7", "program"],
          ["eu1prod", "program"],
          ["us2", "program"],
        ],
        path,
      );
    }
  });

  it("touches nothing for docs, tests or CI files", () => {
    const changes = ["README.md", "test/unit/x.test.ts", ".github/workflows/pr.yaml", "components/README.md"].map(
      (path) => ({ path, status: "modified" as const }),
    );
    assert.deepEqual(touchedStacks(changes, current), []);
    assert.equal(isProgramFile("components/README.md"), false);
    assert.equal(isProgramFile("components/pki/vault.ts"), true);
  });

  it("reports added and removed stack files with their status, even with a program change", () => {
    assert.deepEqual(
      touchedStacks(
        [
          { path: "index.ts", status: "modified" },
          { path: "stacks/Pulumi.new1.yaml", status: "added" },
          { path: "stacks/Pulumi.old1.yaml", status: "removed" },
        ],
        ["eu1prod", "new1"],
      ),
      [
        { stack: "eu1prod", reason: "program" },
        { stack: "new1", reason: "added" },
        { stack: "old1", reason: "removed" },
      ],
    );
  });

  it("ignores files below stacks/ that are not stack files", () => {
    assert.deepEqual(touchedStacks([{ path: "stacks/README.md", status: "added" }], current), []);
  });

  it("bounds concurrency and keeps the order of results", async () => {
    let running = 0;
    let most = 0;
    const out = await mapBounded([5, 1, 3, 2, 4], 2, async (n) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setImmediate(r));
      running--;
      return n * 10;
    });
    assert.deepEqual(out, [50, 10, 30, 20, 40]);
    assert.equal(most, 2);
  });
});

describe("g8s plan: the reconciler's decision", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), "g8s-plan-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A scripted engine that also previews destroys and removes stacks, as plan needs. */
  class PlanFakeEngine extends FakeEngine {
    previewDestroy(stack: string, options: OperationOptions): Promise<PreviewResult> {
      return this.destroy(stack, options).then(() => ({ changeSummary: { delete: 3 }, drift: [] }));
    }
    previewNewStack(stack: string, options: OperationOptions): Promise<PreviewResult> {
      return this.previewRefresh(stack, options);
    }
  }

  it("previews what a pass would run, stack by stack", async () => {
    const stacks: Record<string, { yaml: string; steps: Step[] }> = {
      off: { yaml: "g8s:reconcile: { mode: off }\n  g8s:decommission: off", steps: [] },
      gone: { yaml: "g8s:decommission: gone", steps: [] },
      watch: { yaml: "g8s:reconcile: { mode: detect }", steps: ["drift"] },
      fix: { yaml: "g8s:reconcile: { mode: correct }", steps: ["drift"] },
      same: { yaml: "g8s:reconcile: { mode: correct }", steps: ["in-sync"] },
    };
    const commit = projectRepo(dir, "other");
    commit();
    for (const [name, { yaml }] of Object.entries(stacks)) {
      writeFileSync(path.join(dir, "stacks", `Pulumi.${name}.yaml`), `config:\n  ${yaml}\n`);
    }
    commit();

    const clock = new FakeClock();
    const script = (engine: FakeEngine) => {
      for (const [name, { steps }] of Object.entries(stacks)) engine.plan(name, ...steps);
      engine.backendStacks = Object.keys(stacks);
    };
    const planEngine = new PlanFakeEngine(clock);
    script(planEngine);
    const plan = await whileAdvancing(
      clock,
      runPlan({ projectDir: dir, base: "HEAD~1", engine: planEngine, concurrency: 1, specChecks: false }),
    );

    const passEngine = new FakeEngine(clock);
    script(passEngine);
    const found = await new ProjectStackSource({
      projectDir: dir,
      reconcileDefaults: {},
      specChecks: false,
    }).discover();
    const signal = new AbortController().signal;
    const passes = Promise.all(found.map((s) => runPass(s, { engine: passEngine, clock, signal, redact: (t) => t })));
    const outcomes = new Map((await whileAdvancing(clock, passes)).map((r) => [r.stack, r.outcome]));

    assert.deepEqual(
      plan.stacks.map((p) => [p.stack, p.verdict ? `${p.kind}: ${p.verdict}` : p.kind, outcomes.get(p.stack)]),
      [
        ["fix", "preview: correct", "corrected"],
        ["gone", "destroy", "destroyed"],
        ["off", "off", "skipped"],
        ["same", "preview: in-sync", "in-sync"],
        ["watch", "preview: drifted", "drifted"],
      ],
    );
  });
});

describe("g8s plan: a kubernetes.version the running cluster cannot take", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), "g8s-plan-version-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("fails the pull request's plan without a preview, naming the file's field and the next step", async () => {
    const edge8 = readFileSync(path.join(__dirname, "../../stacks/Pulumi.edge8.yaml"), "utf8");
    const commit = projectRepo(dir, "g8s");
    writeFileSync(
      path.join(dir, "stacks", "Pulumi.edge8.yaml"),
      edge8.replace('version: "1.34.12"', 'version: "1.32.4"'),
    );
    commit();
    // The pull request: straight from 1.32 to 1.34.
    writeFileSync(path.join(dir, "stacks", "Pulumi.edge8.yaml"), edge8);
    commit();

    const clock = new FakeClock();
    const engine = new (class extends FakeEngine {
      previewDestroy(): Promise<PreviewResult> {
        throw new Error("not here");
      }
      previewNewStack(stack: string, options: OperationOptions): Promise<PreviewResult> {
        return this.previewRefresh(stack, options);
      }
    })(clock);
    engine.backendStacks = ["edge8"];
    engine.outputs.set("edge8", { kubernetesVersion: "1.32.4" });
    engine.plan("edge8", "drift");
    const plan = await whileAdvancing(
      clock,
      runPlan({ projectDir: dir, base: "HEAD~1", engine, concurrency: 1, specChecks: true }),
    );
    assert.equal(plan.exitCode, 1);
    assert.deepEqual(
      plan.stacks.map((p) => [p.stack, p.kind]),
      [["edge8", "invalid"]],
    );
    assert.equal(
      plan.stacks[0].error,
      "stacks/Pulumi.edge8.yaml: kubernetes.version: 1.34.12 skips minor 1.33 from the 1.32.4 the cluster runs: " +
        "upgrade one minor at a time (kubeadm and the version-skew policy allow no more); set 1.33.x first",
    );
    assert.equal(engine.previews("edge8").length, 0, "no preview of a file the cluster cannot take");
  });
});

describe("g8s plan: report", () => {
  const result: PlanResult = {
    base: "origin/main",
    changes: [],
    exitCode: 2,
    stacks: [
      {
        stack: "eu1prod",
        reason: "modified",
        kind: "preview",
        changeSummary: { same: 10, update: 1, replace: 1 },
        preview: {
          changeSummary: { same: 10, update: 1, replace: 1 },
          drift: [
            { urn: "u1", type: "aws:ec2/launchTemplate:LaunchTemplate", name: "lt", op: "update", keys: ["userData"] },
            { urn: "u2", type: "aws:ebs/volume:Volume", name: "etcd-0", op: "replace", keys: ["type"] },
          ],
        },
      },
      { stack: "old1", reason: "removed", kind: "orphaned" },
      { stack: "new1", reason: "added", kind: "new", changeSummary: { create: 4 } },
    ],
  };

  it("tabulates every touched stack and calls out replacements and deletions", () => {
    const md = renderMarkdown(result);
    assert.match(md, /^## g8s plan against `origin\/main`/);
    assert.match(md, /\| `eu1prod` \| file modified \| 0 \| 1 \| 1 \| 0 \| changes \|/);
    assert.match(md, /\| `old1` \| file removed \| 0 \| 0 \| 0 \| 0 \| ⚠️ orphaned, nothing will be destroyed \|/);
    assert.match(md, /\| `new1` \| file added \| 4 \| 0 \| 0 \| 0 \| 🆕 new cluster \|/);
    assert.match(md, /- \*\*replace\*\* `aws:ebs\/volume:Volume` `etcd-0` \(type\)/);
    assert.doesNotMatch(md, /launchTemplate/, "updates are counted, not listed");
  });

  it("lists policy violations and marks a stack blocked by a mandatory one", () => {
    const md = renderMarkdown({
      base: "main",
      changes: [],
      exitCode: 1,
      stacks: [
        {
          stack: "eu1prod",
          reason: "modified",
          kind: "preview",
          changeSummary: { update: 1 },
          violations: [
            {
              policy: "no-public-api",
              enforcementLevel: "mandatory",
              message: "internet-facing API load balancer, but the spec does not set aws.publicApi",
              urn: "urn:pulumi:eu1prod::g8s::aws:lb/loadBalancer:LoadBalancer::eu1prod-aws-cp-api-lb",
            },
          ],
        },
      ],
    });
    assert.match(md, /\| `eu1prod` \| file modified \| 0 \| 1 \| 0 \| 0 \| ⛔ blocked by policy \|/);
    assert.match(
      md,
      /- \[mandatory\] no-public-api: internet-facing API load balancer, but the spec does not set aws.publicApi \(eu1prod-aws-cp-api-lb\)/,
    );
  });

  it("says when a change would only be reported (mode detect)", () => {
    const md = renderMarkdown({
      base: "main",
      changes: [],
      exitCode: 2,
      stacks: [
        { stack: "watch", reason: "modified", kind: "preview", changeSummary: { update: 1 }, verdict: "drifted" },
        { stack: "new2", reason: "added", kind: "new", changeSummary: { create: 3 }, verdict: "drifted" },
      ],
    });
    assert.match(
      md,
      /\| `watch` \| file modified \| 0 \| 1 \| 0 \| 0 \| changes \(mode detect: reported, not applied\) \|/,
    );
    assert.match(
      md,
      /\| `new2` \| file added \| 3 \| 0 \| 0 \| 0 \| 🆕 new cluster \(mode detect: reported, not applied\) \|/,
    );
  });

  it("says when nothing is touched", () => {
    const md = renderMarkdown({ base: "HEAD~1", changes: [], stacks: [], exitCode: 0 });
    assert.match(md, /This change touches no stack\./);
    assert.equal(
      renderSummary({ base: "HEAD~1", changes: [], stacks: [], exitCode: 0 }),
      "g8s plan: no stack touched since HEAD~1",
    );
  });
});
