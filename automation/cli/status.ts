/** `g8s status`: the daemon's view of every stack, read from its API. */
import { parseArgs } from "node:util";
import { DEFAULT_PORT } from "../config";
import type { StackStatus } from "../reconciler/types";
import { EXIT, UsageError, writeLine, type CliIo } from "./io";

export const STATUS_USAGE = `usage: g8s status [--url URL] [--json] [STACK]

Shows the running daemon's status of every stack (or one) from its API.
  --url URL   the daemon's address (default http://127.0.0.1:$G8S_PORT, port ${DEFAULT_PORT})
  --json      print the API's JSON`;

function age(iso: string | undefined, now: number): string {
  if (!iso) return "-";
  const s = Math.round((Date.parse(iso) - now) / 1000);
  const a = Math.abs(s);
  const text = a < 90 ? `${a}s` : a < 5400 ? `${Math.round(a / 60)}m` : `${Math.round(a / 3600)}h`;
  return s < 0 ? `${text} ago` : `in ${text}`;
}

export function statusTable(stacks: readonly StackStatus[], now = Date.now()): string {
  const rows = [
    ["STACK", "PHASE", "MODE", "FAILURES", "LAST SUCCESS", "NEXT RUN", "MESSAGE"],
    ...stacks.map((s) => [
      s.name,
      s.phase,
      s.mode,
      String(s.consecutiveFailures),
      age(s.lastSuccessAt, now),
      age(s.nextRunAt, now),
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

export async function runStatus(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { url: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
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
  const base = values.url ?? `http://${io.env.G8S_HOST ?? "127.0.0.1"}:${io.env.G8S_PORT ?? DEFAULT_PORT}`;
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
  else writeLine(io.stdout, statusTable(body.stacks ?? [body]));
  return EXIT.ok;
}
