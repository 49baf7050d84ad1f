/** `g8s status`: the daemon's view of every stack, read from its API. */
import { parseArgs } from "node:util";
import { DEFAULT_PORT, type Settings } from "../config";
import { age, firstExpiry, rollSummary, upgradeSummary } from "../reconciler/present";
import type { StackStatus } from "../reconciler/types";
import { EXIT, UsageError, writeLine, type CliIo } from "./io";
import { settingsFrom } from "./settingsFlags";

export const STATUS_USAGE = `usage: g8s status [--url URL] [--json] [--host H] [--port P] [--config FILE] [STACK]

Shows the running daemon's status of every stack (or one, with the engine's output of its last
failed pass) from its API.
  --url URL   the daemon's address (default http://<host>:<port> from the daemon's settings:
              --host/--port, G8S_HOST/G8S_PORT or the --config file; 127.0.0.1:${DEFAULT_PORT})
  --json      print the API's JSON`;

/** Where the daemon of these settings answers: a wildcard listen address is reached on loopback. */
export function daemonUrl(settings: Pick<Settings, "host" | "port">): string {
  const host = settings.host === "0.0.0.0" ? "127.0.0.1" : settings.host === "::" ? "::1" : settings.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${settings.port}`;
}

export function statusTable(stacks: readonly StackStatus[], now = Date.now()): string {
  // OWNER only where replicas share the stacks (--coordination kubernetes).
  const owners = stacks.some((s) => s.owner !== undefined);
  const rows = [
    [
      "STACK",
      ...(owners ? ["OWNER"] : []),
      "PHASE",
      "MODE",
      "FAILURES",
      "LAST SUCCESS",
      "NEXT RUN",
      "CERTIFICATES EXPIRE",
      "MESSAGE",
    ],
    ...stacks.map((s) => [
      s.name,
      ...(owners ? [s.owner ?? "-"] : []),
      s.phase,
      s.mode,
      String(s.consecutiveFailures),
      age(s.lastSuccessAt, now),
      age(s.nextRunAt, now),
      firstExpiry(s, now),
      (s.message ?? "").split("\n")[0].slice(0, 60),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** One stack in full: the table row, the whole message, and the last pass's error and engine output. */
export function stackDetail(stack: StackStatus, now = Date.now()): string {
  const lines = [statusTable([stack], now)];
  if (stack.message) lines.push("", `message: ${stack.message}`);
  const certs = stack.certificates ?? [];
  if (certs.length > 0) {
    lines.push("", "certificates:");
    const width = Math.max(...certs.map((c) => c.key.length));
    for (const c of certs) {
      const renew = c.renewAt === "" ? "not renewed by g8s" : `renewal ${age(c.renewAt, now)}`;
      lines.push(
        `  ${c.key.padEnd(width)}  expires ${c.notAfter || "-"} (${age(c.notAfter || undefined, now)}), ${renew}`,
      );
    }
  }
  const renewal = stack.renewal;
  if (renewal) {
    const last = renewal.lastRenewedAt
      ? `last renewed ${renewal.lastRenewedAt} (${(renewal.lastRenewed ?? []).join(", ")})`
      : "not renewed yet";
    lines.push(`renewal: ${last}; ${renewal.consecutiveFailures} failure(s) in a row`);
    if (renewal.lastError) lines.push(`renewal error: ${renewal.lastError}`);
    if (renewal.nextAttemptAt) lines.push(`next renewal attempt: ${renewal.nextAttemptAt}`);
  }
  const pass = stack.lastPass;
  if (pass) {
    const how = pass.direct ? ", a noticed change corrected at once (no preview)" : "";
    lines.push("", `last pass: ${pass.outcome} at ${pass.startedAt} in ${(pass.durationMs / 1000).toFixed(1)}s${how}`);
    if (pass.rolled) lines.push(`restarted on the new template: ${rollSummary(pass.rolled)}`);
    if (pass.upgrade) lines.push(`upgraded: ${upgradeSummary(pass.upgrade)}`);
    if (pass.error) lines.push(`error: ${pass.error}`);
    if (pass.output) lines.push("", "engine output of the last pass:", pass.output);
  }
  return lines.join("\n");
}

export async function runStatus(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: "string" },
        json: { type: "boolean" },
        host: { type: "string" },
        port: { type: "string" },
        config: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    writeLine(io.stdout, STATUS_USAGE);
    return EXIT.ok;
  }
  if (positionals.length > 1) throw new UsageError("at most one stack name");
  const base = values.url ?? daemonUrl(settingsFrom(values, io));
  let url: URL;
  try {
    url = new URL(positionals[0] ? `/api/stacks/${encodeURIComponent(positionals[0])}` : "/api/stacks", base);
  } catch {
    throw new UsageError(`--url: '${base}' is not a URL`);
  }
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    writeLine(
      io.stderr,
      `g8s status: cannot reach the daemon at ${base} (${(err as Error).message}): is 'g8s daemon' running?`,
    );
    return EXIT.problems;
  }
  const body = (await response.json().catch(() => ({}))) as { stacks?: StackStatus[]; error?: string } & StackStatus;
  if (!response.ok) {
    writeLine(io.stderr, `g8s status: ${response.status} ${body.error ?? response.statusText}`);
    return EXIT.problems;
  }
  if (values.json) writeLine(io.stdout, JSON.stringify(body, null, 2));
  else writeLine(io.stdout, body.stacks ? statusTable(body.stacks) : stackDetail(body));
  return EXIT.ok;
}
