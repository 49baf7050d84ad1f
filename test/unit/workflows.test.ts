/** The CI workflows are valid YAML and call only commands this repository has. */
import * as assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

const ROOT = path.resolve(__dirname, "../..");
const DIR = path.join(ROOT, ".github/workflows");
const SCRIPTS = Object.keys(
  (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: object }).scripts,
);
const G8S_COMMANDS = [
  "validate",
  "reconcile",
  "daemon",
  "status",
  "renew",
  "plan",
  "host",
  "lab",
  "kubeconfig",
  "etcd",
  "upgrade",
];

interface Step {
  run?: string;
  uses?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}

interface Job {
  if?: string;
  env?: Record<string, string>;
  steps: Step[];
}

interface Workflow {
  on: unknown;
  env?: Record<string, string>;
  jobs: Record<string, Job>;
}

/** Whether a piece of a workflow hands a repository secret to what runs there. */
const usesSecrets = (value: unknown): boolean => /\bsecrets\./.test(JSON.stringify(value ?? {}));

/** The condition that keeps a job to pull requests from this repository's own branches. */
const SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository";

describe(".github/workflows", () => {
  const files = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f));

  it("has the pull-request and main workflows", () => {
    assert.deepEqual(files.sort(), ["main.yaml", "pull-request.yaml"]);
  });

  for (const file of files) {
    describe(file, () => {
      const doc = parse(readFileSync(path.join(DIR, file), "utf8")) as Workflow;
      const runs = Object.values(doc.jobs).flatMap((j) => j.steps.map((s) => s.run ?? "").filter(Boolean));

      it("is a workflow with jobs and steps", () => {
        assert.ok(doc.on);
        assert.ok(Object.keys(doc.jobs).length > 0);
      });

      it("runs only npm scripts that package.json defines", () => {
        for (const run of runs) {
          for (const m of run.matchAll(/npm run ([\w:-]+)/g))
            assert.ok(SCRIPTS.includes(m[1]), `${file}: npm run ${m[1]}`);
        }
      });

      it("runs only g8s commands that exist", () => {
        for (const run of runs) {
          for (const m of run.matchAll(/npx g8s ([\w-]+)/g))
            assert.ok(G8S_COMMANDS.includes(m[1]), `${file}: g8s ${m[1]}`);
        }
      });

      it("applies nothing: no pulumi up, no reconcile, no destroy", () => {
        for (const run of runs) assert.doesNotMatch(run, /pulumi (up|destroy)|g8s (reconcile|daemon)/, file);
      });

      it("never runs with secrets on pull_request_target (the pull request's code would get them)", () => {
        assert.doesNotMatch(JSON.stringify(doc.on), /pull_request_target/);
      });
    });
  }

  describe("pull-request.yaml: secrets stay away from untrusted code", () => {
    const doc = parse(readFileSync(path.join(DIR, "pull-request.yaml"), "utf8")) as Workflow;
    const jobs = Object.entries(doc.jobs);

    it("checks every pull request, forks included, without any secret", () => {
      const checks = jobs.filter(([, job]) => job.steps.some((s) => /npx g8s validate/.test(s.run ?? "")));
      assert.ok(checks.length > 0, "a job validates the stack files");
      for (const [name, job] of checks) {
        assert.equal(job.if, undefined, `${name} runs for every pull request`);
        assert.equal(usesSecrets(job), false, `${name} sees no secret`);
      }
    });

    it("hands secrets to no job or workflow environment, so npm ci never sees them", () => {
      assert.equal(usesSecrets(doc.env), false);
      for (const [name, job] of jobs) assert.equal(usesSecrets(job.env), false, name);
    });

    it("hands secrets only to the g8s plan step, in a job limited to this repository's branches", () => {
      for (const [name, job] of jobs) {
        for (const step of job.steps.filter(usesSecrets)) {
          assert.match(step.run ?? "", /npx g8s plan/, `${name}: only g8s plan gets secrets`);
          assert.match(job.if ?? "", new RegExp(SAME_REPOSITORY.replace(/[.]/g, "\\.")), `${name}: forks excluded`);
        }
      }
      assert.ok(
        jobs.some(([, job]) => job.steps.some((s) => usesSecrets(s) && /npx g8s plan/.test(s.run ?? ""))),
        "the plan step gets the backend and passphrase",
      );
    });
  });

  it("knows every g8s command the CLI has", async () => {
    const { main } = await import("../../automation/cli/main");
    const { PassThrough } = await import("node:stream");
    const out = new PassThrough();
    let text = "";
    out.on("data", (c: Buffer) => (text += c.toString()));
    await main(["--help"], { cwd: ROOT, env: {}, stdout: out, stderr: out });
    const listed = [...text.matchAll(/^ {2}([a-z]+) {2}/gm)].map((m) => m[1]).sort();
    assert.deepEqual(listed, [...G8S_COMMANDS].sort());
  });
});
