/** The `g8s` command line: dispatches to one command per verb. */
import { EXIT, UsageError, writeLine, type CliIo } from "./io";

/** What a command module provides; loaded only when its verb runs. */
interface CommandModule {
  readonly usage: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

interface Command {
  readonly summary: string;
  /**
   * Imports the command on demand: the reconciler's commands pull in the Automation API and
   * take seconds to load, which `g8s host` and `g8s validate` should not pay. `require`, not
   * `import()`: tsx's CommonJS hook (bin/g8s.js) does not serve dynamic imports of .ts files.
   */
  load(): CommandModule;
}

/* eslint-disable @typescript-eslint/no-require-imports -- commands load on demand, see Command.load */
const COMMANDS: Record<string, Command> = {
  validate: {
    summary: "check stack files offline",
    load: () => {
      const m = require("./validate") as typeof import("./validate");
      return { usage: m.VALIDATE_USAGE, run: m.runValidate };
    },
  },
  reconcile: {
    summary: "one reconcile pass over the stacks",
    load: () => {
      const m = require("./reconcile") as typeof import("./reconcile");
      return { usage: m.RECONCILE_USAGE, run: m.runReconcile };
    },
  },
  daemon: {
    summary: "reconcile every stack on a schedule, with an HTTP API",
    load: () => {
      const m = require("./daemon") as typeof import("./daemon");
      return { usage: m.DAEMON_USAGE, run: m.runDaemon };
    },
  },
  status: {
    summary: "the running daemon's view of every stack",
    load: () => {
      const m = require("./status") as typeof import("./status");
      return { usage: m.STATUS_USAGE, run: m.runStatus };
    },
  },
  renew: {
    summary: "renew a stack's due certificates now, whatever its mode",
    load: () => {
      const m = require("./renew") as typeof import("./renew");
      return { usage: m.RENEW_USAGE, run: m.runRenew };
    },
  },
  kubeconfig: {
    summary: "a person's short-lived kubeconfig from a cluster's CA (user, groups, TTL)",
    load: () => {
      const m = require("./kubeconfig") as typeof import("./kubeconfig");
      return { usage: m.KUBECONFIG_USAGE, run: m.runKubeconfig };
    },
  },
  etcd: {
    summary: "a cluster's etcd snapshots: list, take one now, restore every master from one",
    load: () => {
      const m = require("./etcd") as typeof import("./etcd");
      return { usage: m.ETCD_USAGE, run: m.runEtcd };
    },
  },
  upgrade: {
    summary: "roll a cluster to its stack file's Kubernetes version, one node at a time",
    load: () => {
      const m = require("./upgrade") as typeof import("./upgrade");
      return { usage: m.UPGRADE_USAGE, run: m.runUpgrade };
    },
  },
  plan: {
    summary: "what a change would do to the clusters (for pull requests)",
    load: () => {
      const m = require("./plan") as typeof import("./plan");
      return { usage: m.PLAN_USAGE, run: m.runPlanCommand };
    },
  },
  host: {
    summary: "the local host Kubernetes cluster on 127.0.0.1 (up, down, status)",
    load: () => {
      const m = require("./host") as typeof import("./host");
      return { usage: m.HOST_USAGE, run: m.runHost };
    },
  },
  lab: {
    summary: "a KVM-platform guest cluster booted on this machine (up, down)",
    load: () => {
      const m = require("./lab") as typeof import("./lab");
      return { usage: m.LAB_USAGE, run: m.runLab };
    },
  },
};
/* eslint-enable @typescript-eslint/no-require-imports */

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
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    writeLine(io.stderr, `g8s: unknown command '${name}'\n\n${usage()}`);
    return EXIT.usage;
  }
  const loaded = command.load();
  try {
    return await loaded.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      writeLine(io.stderr, `g8s ${name}: ${err.message}\n\n${loaded.usage}`);
      return EXIT.usage;
    }
    throw err;
  }
}
