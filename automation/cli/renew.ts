/**
 * `g8s renew STACK… [--all]`: the reconciler's renewal duty, now, for an operator whose daemon
 * was down or who will not wait for it. Same update as the daemon's (the certificates and what
 * carries them, nothing else), under the backend lock, so it is safe beside a running daemon.
 */
import { existsSync } from "node:fs";
import * as path from "node:path";
import { Writable } from "node:stream";
import { buildReconciler } from "../compose";
import { ToolchainError } from "../engine";
import { systemClock } from "../reconciler/clock";
import { redactText } from "../reconciler/logger";
import { runRenewal } from "../reconciler/renewal";
import type { RenewalRecord } from "../reconciler/types";
import { EXIT, UsageError, writeLine, type CliIo } from "./io";
import { parseCommandLine, settingsFrom, SETTINGS_HELP } from "./settingsFlags";

export const RENEW_USAGE = `usage: g8s renew STACK… [--all] [--json] [settings]

Renews the stacks' certificates that are past their renewal point, now, whatever the stack's
mode or phase: an update of the certificates and of what carries them to the nodes (Secrets,
SSM parameters), nothing else. Exits 1 if a renewal failed or found the stack locked.
  --all     reissue every leaf certificate now, due or not, with a new key (never the CA)
  --json    one JSON line per stack

${SETTINGS_HELP}`;

function describe(r: RenewalRecord): string {
  const took = `${(r.durationMs / 1000).toFixed(1)}s`;
  switch (r.outcome) {
    case "renewed":
      return `✔ ${r.stack}: renewed ${r.renewed.join(", ")} in ${took}`;
    case "not-due": {
      const next = (r.certificates ?? [])
        .filter((c) => c.renewAt !== "" && c.urns.length > 0)
        .map((c) => c.renewAt)
        .sort()[0];
      return `● ${r.stack}: nothing due${next ? `; next renewal at ${next}` : " (no certificates g8s renews)"}`;
    }
    default:
      return `✖ ${r.stack}: ${r.outcome}${r.error ? `: ${r.error}` : ""}`;
  }
}

export async function runRenew(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, {
    all: { type: "boolean" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    writeLine(io.stdout, RENEW_USAGE);
    return EXIT.ok;
  }
  if (positionals.length === 0) throw new UsageError("name the stacks to renew");
  const settings = settingsFrom(values, io);
  const missing = positionals.filter((s) => !existsSync(path.join(settings.projectDir, "stacks", `Pulumi.${s}.yaml`)));
  if (missing.length > 0) {
    writeLine(
      io.stderr,
      `g8s renew: no stack file for ${missing.join(", ")} in ${path.join(settings.projectDir, "stacks")}`,
    );
    return EXIT.problems;
  }
  const stderr = new Writable({ write: (chunk, _enc, cb) => (io.stderr.write(chunk), cb()) });
  let engine;
  try {
    engine = (await buildReconciler(settings, { env: io.env, logDestination: stderr })).engine;
  } catch (err) {
    if (err instanceof ToolchainError) {
      writeLine(io.stderr, `g8s renew: ${err.message}`);
      return EXIT.problems;
    }
    throw err;
  }
  const secrets = [settings.passphrase, settings.apiToken].filter((s): s is string => !!s);
  const controller = new AbortController();
  const unsubscribe = io.onSignal?.(() => controller.abort(new Error("interrupted"))) ?? (() => undefined);
  let failed = false;
  try {
    for (const stack of positionals) {
      if (!values.json)
        writeLine(io.stdout, `… ${stack}: ${values.all ? "reissuing every leaf certificate" : "renewing what is due"}`);
      const record = await runRenewal(
        stack,
        { engine, clock: systemClock, signal: controller.signal, redact: (t) => redactText(t, secrets) },
        { force: values.all === true },
      );
      failed ||= !["renewed", "not-due"].includes(record.outcome);
      if (values.json) writeLine(io.stdout, JSON.stringify({ ...record, output: undefined }));
      else {
        writeLine(io.stdout, describe(record));
        if (record.output) writeLine(io.stderr, record.output);
      }
      if (controller.signal.aborted) break;
    }
  } finally {
    unsubscribe();
  }
  return failed ? EXIT.problems : EXIT.ok;
}
