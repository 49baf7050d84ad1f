/** `g8s plan --base <ref>`: the stacks a change touches, validated and previewed, as a report. */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { Writable } from "node:stream";
import { checkG8sPolicies, createEngine } from "../compose";
import { ToolchainError } from "../engine";
import { createLogger, redactText } from "../reconciler/logger";
import { runPlan, type PlanResult } from "../plan/plan";
import { renderMarkdown, renderSummary } from "../plan/report";
import { UsageError, writeLine, type CliIo } from "./io";
import { parseCommandLine, settingsFrom, SETTINGS_HELP } from "./settingsFlags";

export const PLAN_USAGE = `usage: g8s plan --base REF [--report FILE] [--json] [settings]

What the change since REF (a git ref: origin/main, a commit) would do to the clusters:
the touched stacks (a changed stack file touches its stack; a change to components/,
policy/, index.ts or another .ts at the project root, package*.json, tsconfig.json or
Pulumi.yaml touches all), validation first, then a lock-free preview of each with
--concurrency at a time. Writes a Markdown report (default plan.md) and a summary.
Exit codes: 0 no changes, 2 changes, 1 error (an invalid stack file, a failed preview).
  --report FILE   where the Markdown report goes
  --json          print the plan as JSON instead of the summary

${SETTINGS_HELP}`;

/** The plan with secrets scrubbed from engine errors and output: the report becomes a PR comment. */
function redacted(result: PlanResult, secrets: readonly string[]): PlanResult {
  const scrub = (text: string | undefined) => (text === undefined ? undefined : redactText(text, secrets));
  return { ...result, stacks: result.stacks.map((p) => ({ ...p, error: scrub(p.error), output: scrub(p.output) })) };
}

export async function runPlanCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandLine(argv, {
    base: { type: "string" },
    report: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    writeLine(io.stdout, PLAN_USAGE);
    return 0;
  }
  if (typeof values.base !== "string" || values.base === "") throw new UsageError("--base REF is required");
  const settings = settingsFrom(values, io);
  const stderr = new Writable({ write: (chunk, _enc, cb) => (io.stderr.write(chunk), cb()) });
  const secrets = [settings.passphrase ?? ""];
  const logger = createLogger({
    level: values["log-level"] ? settings.logLevel : "warn",
    destination: stderr,
    secrets,
  });
  let engine;
  try {
    engine = await createEngine(settings, io.env, logger);
  } catch (err) {
    if (err instanceof ToolchainError) {
      writeLine(io.stderr, `g8s plan: ${err.message}`);
      return 1;
    }
    throw err;
  }
  let result: PlanResult;
  try {
    result = await runPlan({
      projectDir: settings.projectDir,
      base: values.base,
      engine,
      concurrency: settings.concurrency,
      specChecks: settings.specChecks,
      checkPolicies: checkG8sPolicies,
      onProgress: (stack, what) => writeLine(io.stderr, `… ${stack}: ${what}`),
    });
  } catch (err) {
    writeLine(io.stderr, `g8s plan: ${redactText((err as Error).message, secrets)}`);
    return 1;
  }
  result = redacted(result, secrets);
  const reportFile = path.resolve(io.cwd, typeof values.report === "string" ? values.report : "plan.md");
  await fs.writeFile(reportFile, `${renderMarkdown(result)}\n`);
  if (values.json) writeLine(io.stdout, JSON.stringify(result, null, 2));
  else writeLine(io.stdout, `${renderSummary(result)}\nreport: ${path.relative(io.cwd, reportFile) || reportFile}`);
  for (const p of result.stacks) {
    if (p.error) writeLine(io.stderr, p.error);
    if (p.output) writeLine(io.stderr, `${p.stack}: the engine's output:\n${p.output}`);
  }
  return result.exitCode;
}
