/** The `g8s` command line: dispatches to one command per verb. */
import { EXIT, UsageError, writeLine, type CliIo } from "./io";
import { DAEMON_USAGE, runDaemon } from "./daemon";
import { HOST_USAGE, runHost } from "./host";
import { PLAN_USAGE, runPlanCommand } from "./plan";
import { RECONCILE_USAGE, runReconcile } from "./reconcile";
import { runStatus, STATUS_USAGE } from "./status";
import { runValidate, VALIDATE_USAGE } from "./validate";

interface Command {
  readonly summary: string;
  readonly usage: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  validate: { summary: "check stack files offline", usage: VALIDATE_USAGE, run: runValidate },
  reconcile: { summary: "one reconcile pass over the stacks", usage: RECONCILE_USAGE, run: runReconcile },
  daemon: { summary: "reconcile every stack on a schedule, with an HTTP API", usage: DAEMON_USAGE, run: runDaemon },
  status: { summary: "the running daemon's view of every stack", usage: STATUS_USAGE, run: runStatus },
  plan: {
    summary: "what a change would do to the clusters (for pull requests)",
    usage: PLAN_USAGE,
    run: runPlanCommand,
  },
  host: {
    summary: "the local host Kubernetes cluster on 127.0.0.1 (up, down, status)",
    usage: HOST_USAGE,
    run: runHost,
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: g8s <command> [options]\n\ncommands:\n${lines.join("\n")}\n\n'g8s <command> --help' shows a command's options.`;
}

/** Runs one command line and returns the exit code; never throws for bad input. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    writeLine(name === undefined ? io.stderr : io.stdout, usage());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) {
    writeLine(io.stderr, `g8s: unknown command '${name}'\n\n${usage()}`);
    return EXIT.usage;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      writeLine(io.stderr, `g8s ${name}: ${err.message}\n\n${command.usage}`);
      return EXIT.usage;
    }
    throw err;
  }
}
