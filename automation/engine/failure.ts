/**
 * A failed Pulumi command as a person reads it: one line with the cause, and the engine's output
 * once. The Automation API's CommandError carries the CLI's whole output twice (as stderr and
 * again inside the wrapped error), and the output itself repeats each error (progress line,
 * diagnostics); logged as is, one failure filled a screen.
 */

/** What the Automation API's CommandError holds (its commandResult). */
interface CommandResultLike {
  readonly stdout?: unknown;
  readonly stderr?: unknown;
  readonly code?: unknown;
  readonly err?: unknown;
}

/** Longest cause kept on the one line. */
const MAX_CAUSE = 300;
/** Longest output kept (its end: the diagnostics come last); a pass record must stay small. */
export const MAX_OUTPUT = 32 * 1024;

/** Generic closing lines that say only that something above failed. */
const GENERIC = /^(update|preview|refresh|destroy) failed$|^\d+ errors? occurred/i;

/**
 * The causes in a Pulumi CLI's output: its `error:` lines (each error's first line, once; the
 * closing "update failed" only when nothing more specific is there), else undefined.
 */
export function failureCause(output: string): string | undefined {
  const found: string[] = [];
  for (const line of output.split("\n")) {
    const m = /^\s*error:\s*(.+?)\s*$/.exec(line);
    if (m && !found.includes(m[1])) found.push(m[1]);
  }
  const specific = found.filter((c) => !GENERIC.test(c));
  const causes = specific.length > 0 ? specific : found;
  if (causes.length === 0) return undefined;
  const text = causes.join("; ");
  return text.length > MAX_CAUSE ? `${text.slice(0, MAX_CAUSE - 1)}…` : text;
}

/** The CLI command a failure came from (`pulumi preview`, `pulumi stack select`), from the Automation API's first line. */
function commandOf(output: string): string | undefined {
  const m = /Command failed with exit code -?\d+: \S*?pulumi((?: [a-z][a-z-]*)+)/.exec(output);
  return m ? `pulumi${m[1]}` : undefined;
}

function text(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  return "";
}

/** The output kept for status: at most MAX_OUTPUT characters, its end when longer. */
function bounded(output: string): string {
  if (output.length <= MAX_OUTPUT) return output;
  return `… (${output.length - MAX_OUTPUT} characters cut)\n${output.slice(-MAX_OUTPUT)}`;
}

/**
 * The cause and output of an Automation API CommandError; undefined for any other error. The
 * output is stdout and stderr once each; the wrapped error's text only when it adds to them.
 */
export function describeCommandFailure(err: unknown): { cause: string; output: string } | undefined {
  const result = (err as { commandResult?: CommandResultLike } | null)?.commandResult;
  if (result === undefined || result === null || typeof result !== "object") return undefined;
  const parts: string[] = [];
  for (const part of [text(result.stdout), text(result.stderr), text(result.err)]) {
    const trimmed = part.trim();
    if (trimmed !== "" && !parts.some((p) => p.includes(trimmed))) parts.push(trimmed);
  }
  const output = parts.join("\n");
  const command = commandOf(output) ?? "the pulumi command";
  const cause = failureCause(output);
  const code = typeof result.code === "number" && result.code >= 0 ? ` with exit code ${result.code}` : "";
  return {
    cause:
      cause !== undefined ? `${command} failed: ${cause}` : `${command} failed${code} (no error line in its output)`,
    output: bounded(output),
  };
}
