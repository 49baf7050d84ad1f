/** The command line of `g8s host`: a pure parser, so every accepted and refused form has a unit test. */
import * as path from "node:path";
import { parseArgs } from "node:util";

export const HOST_VERBS = ["up", "down", "status"] as const;
export type HostVerb = (typeof HOST_VERBS)[number];

export interface HostCommand {
  readonly verb: HostVerb;
  /** Absolute. */
  readonly hostDir: string;
  /** down only: delete the host dir after stopping. */
  readonly purge: boolean;
  /** status only: print JSON. */
  readonly json: boolean;
  /** up only: also boot the real node (realNode.ts). */
  readonly realNode: boolean;
  readonly help: boolean;
}

/** A command line `g8s host` cannot run; the CLI prints it with the usage and exits 2. */
export class HostUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostUsageError";
  }
}

/** The default host dir: `<project>/.g8s/host`, beside the reconciler's state. */
export function defaultHostDir(projectRoot: string): string {
  return path.join(projectRoot, ".g8s", "host");
}

const FLAGS_OF: Readonly<Record<HostVerb, readonly string[]>> = {
  up: ["host-dir", "real-node"],
  down: ["host-dir", "purge"],
  status: ["host-dir", "json"],
};

/**
 * Parses `g8s host <verb> [flags]` (argv after `host`). `--host-dir` is resolved against `cwd`;
 * a flag of another verb (`up --purge`) is refused rather than ignored.
 */
export function parseHostCommandLine(argv: readonly string[], cwd: string, projectRoot: string): HostCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        "host-dir": { type: "string" },
        purge: { type: "boolean" },
        json: { type: "boolean" },
        "real-node": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new HostUsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [verb, ...extra] = positionals;
  if (verb === undefined) {
    if (values.help) return { verb: "status", hostDir: "", purge: false, json: false, realNode: false, help: true };
    throw new HostUsageError(`missing the action: one of ${HOST_VERBS.join(", ")}`);
  }
  if (!(HOST_VERBS as readonly string[]).includes(verb)) {
    throw new HostUsageError(`unknown action '${verb}': one of ${HOST_VERBS.join(", ")}`);
  }
  if (extra.length > 0) throw new HostUsageError(`unexpected argument '${extra[0]}'`);
  const v = verb as HostVerb;
  for (const flag of ["host-dir", "purge", "json", "real-node"] as const) {
    if (values[flag] !== undefined && !FLAGS_OF[v].includes(flag)) {
      throw new HostUsageError(`--${flag} does not apply to 'host ${v}'`);
    }
  }
  const dir = values["host-dir"];
  if (dir !== undefined && dir.trim() === "") throw new HostUsageError("--host-dir must not be empty");
  return {
    verb: v,
    hostDir: dir === undefined ? defaultHostDir(projectRoot) : path.resolve(cwd, dir),
    purge: values.purge === true,
    json: values.json === true,
    realNode: values["real-node"] === true,
    help: values.help === true,
  };
}
