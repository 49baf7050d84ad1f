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
const G8S_COMMANDS = ["validate", "reconcile", "daemon", "status", "plan", "host"];

interface Workflow {
  on: unknown;
  jobs: Record<string, { steps: Array<{ run?: string; uses?: string }> }>;
}

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
    });
  }

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
