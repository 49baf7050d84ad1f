/** `g8s reconcile [stack…] [--once]`: one pass over the stacks, live on a terminal, JSON lines otherwise. */
import { Writable } from "node:stream";
import { buildReconciler } from "../compose";
import { ToolchainError } from "../engine";
import type { PassOutcome, PassRecord } from "../reconciler/types";
import { EXIT, writeLine, type CliIo } from "./io";
import { parseCommandLine, settingsFrom, SETTINGS_HELP } from "./settingsFlags";

export const RECONCILE_USAGE = `usage: g8s reconcile [STACK…] [--once] [--json] [settings]

One reconcile pass over the named stacks (default: every stack file in <project>/stacks):
a refreshing preview per stack, and up --refresh where it drifted and the mode is correct.
Exits 1 if any stack failed, has an invalid stack file, or was blocked by a mandatory policy.
  --once    accepted for clarity: reconcile always makes exactly one pass
  --json    one JSON line per stack even on a terminal

${SETTINGS_HELP}`;

/** Outcomes that are not a success: the command exits 1. */
const FAILED: ReadonlySet<PassOutcome> = new Set(["failed", "invalid", "aborted", "blocked"]);

/** 1 when any pass failed, met an invalid file, was aborted or was blocked by policy; else 0. */
export function exitCodeOf(records: readonly PassRecord[]): number {
  return records.some((r) => FAILED.has(r.outcome)) ? EXIT.problems : EXIT.ok;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

export function summaryTable(records: readonly PassRecord[]): string {
  const rows = [
    ["STACK", "OUTCOME", "DRIFTED", "DURATION", "DETAIL"],
    ...records.map((r) => [
      r.stack,
      r.outcome,
      String(r.drift.length),
      seconds(r.durationMs),
      (r.error ?? r.drift.map((d) => `${d.op} ${d.name}`).join(", ")).split("\n")[0].slice(0, 80),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export async function runReconcile(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, {
    once: { type: "boolean" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    writeLine(io.stdout, RECONCILE_USAGE);
    return EXIT.ok;
  }
  const settings = settingsFrom(values, io);
  const live = io.stdout.isTTY === true && !values.json;
  // Logs go to stderr; on a terminal only warnings unless a level was asked for.
  const logSettings =
    live && !values["log-level"] && !io.env.G8S_LOG_LEVEL ? { ...settings, logLevel: "warn" } : settings;
  const stderr = new Writable({ write: (chunk, _enc, cb) => (io.stderr.write(chunk), cb()) });
  let reconciler;
  try {
    reconciler = await buildReconciler(logSettings, {
      env: io.env,
      logDestination: stderr,
      onStatus: (status) => {
        if (live && status.phase === "running") writeLine(io.stdout, `… ${status.name}: detecting drift`);
      },
      onPass: (record) => {
        if (live) {
          const mark = FAILED.has(record.outcome) ? "✖" : record.outcome === "in-sync" ? "✔" : "●";
          writeLine(io.stdout, `${mark} ${record.stack}: ${record.outcome} in ${seconds(record.durationMs)}`);
        } else writeLine(io.stdout, JSON.stringify(record));
      },
    });
  } catch (err) {
    if (err instanceof ToolchainError) {
      writeLine(io.stderr, `g8s reconcile: ${err.message}`);
      return EXIT.problems;
    }
    throw err;
  }
  let records: PassRecord[];
  try {
    records = await reconciler.scheduler.runOnce(positionals.length > 0 ? positionals : undefined);
  } catch (err) {
    writeLine(io.stderr, `g8s reconcile: ${(err as Error).message}`);
    return EXIT.problems;
  }
  if (live) writeLine(io.stdout, `\n${summaryTable(records)}`);
  else writeLine(io.stdout, JSON.stringify({ summary: Object.fromEntries(countBy(records)) }));
  return exitCodeOf(records);
}

function countBy(records: readonly PassRecord[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of records) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
  return counts;
}
