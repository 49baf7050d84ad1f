/** What a command may touch of the outside world; main() passes the process's, tests their own. */
export interface CliIo {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream;
  /** Subscribes to SIGTERM/SIGINT; returns the unsubscribe. Absent in tests that do not need it. */
  readonly onSignal?: (handler: (signal: NodeJS.Signals) => void) => () => void;
  /** What bin/g8s.js runs: the build in dist/ ("compiled") or the sources through tsx. Absent in tests. */
  readonly runtime?: "compiled" | "sources";
}

/** Exit codes shared by every command. */
export const EXIT = { ok: 0, problems: 1, usage: 2 } as const;

/** A bad command line: printed with the command's usage, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export function writeLine(stream: NodeJS.WritableStream, line = ""): void {
  stream.write(`${line}\n`);
}
