/**
 * What the commands that act on one applied cluster (`g8s kubeconfig`, `g8s etcd`) read first:
 * its stack file, validated, and the resources of its state, read with the backend's passphrase.
 * Read-only: the stack is neither locked nor changed, and a stack the backend lacks is never
 * selected (selecting would create it). Problems are printed as `g8s <command>: …` and returned
 * as an exit code; nothing secret reaches the output.
 */
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { Writable } from "node:stream";
import {
  ClusterSpecError,
  formatIssue,
  parseStackFile,
  type ClusterSpec,
  type ReconcileSpec,
} from "../../components/spec";
import { AccessError } from "../access/userKubeconfig";
import { buildReconciler } from "../compose";
import type { Settings } from "../config";
import { ToolchainError } from "../engine";
import { redactText } from "../reconciler/logger";
import type { StateResource } from "../reconciler/types";
import { EXIT, writeLine, type CliIo } from "./io";

export interface StackFile {
  readonly spec: ClusterSpec;
  /** The stack file as the user names it (relative to the working directory). */
  readonly display: string;
  /** `g8s:reconcile` of the file (its defaults where the file is silent). */
  readonly reconcile: ReconcileSpec;
}

/** The stack's file, validated; or the exit code after its problems were printed. */
export function readStackFile(command: string, stack: string, settings: Settings, io: CliIo): StackFile | number {
  const file = path.join(settings.projectDir, "stacks", `Pulumi.${stack}.yaml`);
  const display = path.relative(io.cwd, file) || file;
  if (!existsSync(file)) {
    writeLine(io.stderr, `g8s ${command}: no stack file for ${stack} (${display})`);
    return EXIT.problems;
  }
  try {
    const parsed = parseStackFile(readFileSync(file, "utf8"), display);
    return { spec: parsed.cluster, display, reconcile: parsed.reconcile };
  } catch (err) {
    if (!(err instanceof ClusterSpecError)) throw err;
    for (const issue of err.issues) writeLine(io.stderr, formatIssue(issue, display));
    return EXIT.problems;
  }
}

/**
 * Runs `use` on the resources of the stack's state. An AccessError or ToolchainError from
 * either is printed as it is; anything else as a failed read, with the passphrase and token
 * redacted. Returns `use`'s result, or the exit code after the problem was printed.
 */
export async function withStackState<T>(
  command: string,
  stack: string,
  settings: Settings,
  io: CliIo,
  use: (resources: readonly StateResource[]) => Promise<T> | T,
): Promise<{ value: T } | number> {
  const secrets = [settings.passphrase, settings.apiToken].filter((s): s is string => !!s);
  const stderr = new Writable({ write: (chunk, _enc, cb) => (io.stderr.write(chunk), cb()) });
  try {
    // What the user asked for is the command's output: the reconciler's start-up info lines
    // (the Pulumi CLI, provider plugins) only when a debug level asks for them.
    const quiet: Settings = settings.logLevel === "info" ? { ...settings, logLevel: "warn" } : settings;
    const { engine } = await buildReconciler(quiet, { env: io.env, logDestination: stderr });
    const resources = (await engine.listStacks()).includes(stack) ? await engine.stackResources(stack) : undefined;
    if (resources === undefined || resources.length === 0) {
      throw new AccessError(`stack ${stack} has no state yet: apply it first (g8s reconcile ${stack})`);
    }
    return { value: await use(resources) };
  } catch (err) {
    if (err instanceof AccessError || err instanceof ToolchainError) {
      writeLine(io.stderr, `g8s ${command}: ${redactText(err.message, secrets)}`);
      return EXIT.problems;
    }
    writeLine(
      io.stderr,
      `g8s ${command}: reading stack ${stack} failed: ${redactText(String((err as Error).message ?? err), secrets)}`,
    );
    return EXIT.problems;
  }
}
