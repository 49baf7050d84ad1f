/**
 * The reconciler's Engine on the Pulumi Automation API and the real CLI. Every command runs in
 * the hermetic environment from environment.ts with the CLI found by toolchain.ts.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { hostname, tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  ConcurrentUpdateError,
  LocalWorkspace,
  PulumiCommand,
  type EngineEvent,
  type Stack,
} from "@pulumi/pulumi/automation";
import {
  EngineFailure,
  OperationAbortedError,
  StackBusyError,
  type Engine,
  type OperationOptions,
  type PendingOperation,
  type PreviewResource,
  type PreviewResult,
  type RenewalTargets,
  type ResourceDrift,
  type BackendLock,
  type LockOwnerState,
  type StaleLock,
  type StateResource,
  type UpResult,
} from "../reconciler/types";
import type { PulumiCli } from "./toolchain";
import { missingPluginError, type RequiredPlugin } from "./plugins";
import { liveness, orphanedProcesses, processEnv } from "../os/processes";
import { describeCommandFailure } from "./failure";
import { EngineWorkspace } from "./workspace";

export interface PulumiEngineOptions {
  /** The Pulumi project: its program and `stacks/`, which the engine only reads. */
  readonly projectDir: string;
  /**
   * The engine's private workspace (workspace.ts), where Pulumi reads and writes the stack
   * files: a copy of the project's, so no engine run writes to the files the reconciler follows.
   */
  readonly workspaceDir: string;
  readonly cli: PulumiCli;
  /** The hermetic environment (engineEnvironment()). */
  readonly env: Record<string, string>;
  /** Policy packs run before every preview and update (paths). */
  readonly policyPacks?: readonly string[];
  /** The provider plugins the project pins (a missing one is reported as one line). */
  readonly plugins?: readonly RequiredPlugin[];
  /**
   * Whether `host` belonged only to replicas whose leases expired (coordination.ts): a lock
   * taken there is a dead replica's. Without it, locks of other hosts are never judged stale.
   */
  readonly hostGone?: (host: string) => boolean;
}

/** Engine operations that are not a change. */
const PROVIDER_TYPE = "pulumi:providers:";
const NOT_A_CHANGE = new Set(["same", "refresh", "read", "discard", "import"]);
const REPLACE_STEPS = new Set([
  "replace",
  "create-replacement",
  "delete-replaced",
  "discard-replaced",
  "read-replacement",
]);

type StepMetadata = NonNullable<EngineEvent["resourcePreEvent"]>["metadata"];

/**
 * Names of the properties a step changes: what the provider reported (diffs, detailed diff),
 * else the inputs whose desired value differs from the refreshed state (dynamic providers
 * report no property list). Names only: values may be secret.
 */
export function changedProperties(meta: StepMetadata): string[] {
  const reported = [...(meta.diffs ?? []), ...(meta.keys ?? []), ...Object.keys(meta.detailedDiff ?? {})];
  if (reported.length > 0) return reported.map((k) => k.split(/[.[]/)[0]);
  const desired = meta.new?.inputs ?? {};
  const actual = meta.old?.outputs ?? meta.old?.inputs ?? {};
  if (!meta.old) return [];
  return Object.keys(desired).filter(
    (k) => !k.startsWith("__") && JSON.stringify(desired[k]) !== JSON.stringify(actual[k]),
  );
}

/** Resources as the update would leave them, from the preview's steps (deletions left out). */
export function previewResourcesFromEvents(events: readonly EngineEvent[]): PreviewResource[] {
  const byUrn = new Map<string, PreviewResource>();
  for (const event of events) {
    const meta = event.resourcePreEvent?.metadata;
    const state = meta?.new;
    if (!meta || !state || meta.op.startsWith("delete") || meta.op === "discard" || meta.op === "refresh") continue;
    byUrn.set(meta.urn, {
      urn: meta.urn,
      type: meta.type,
      name: meta.urn.split("::").pop() ?? meta.urn,
      props: state.inputs ?? {},
      protect: state.protect === true,
      provider: state.provider || undefined,
      parent: state.parent || undefined,
    });
  }
  return [...byUrn.values()];
}

/** What drifted, from the engine's resource pre-events (property names only, never values). */
export function driftFromEvents(events: readonly EngineEvent[]): ResourceDrift[] {
  const drift = new Map<string, ResourceDrift>();
  for (const event of events) {
    const meta = event.resourcePreEvent?.metadata;
    if (!meta || NOT_A_CHANGE.has(meta.op)) continue;
    // A provider is configuration, not something managed: an update's events show its default
    // provider as updated when its inputs (the stack's config) are diffed again, and the update's
    // change summary does not count it (seen on the KVM stack: `update default`, summary update 1).
    if (meta.type.startsWith(PROVIDER_TYPE)) continue;
    const name = meta.urn.split("::").pop() ?? meta.urn;
    const earlier = drift.get(meta.urn);
    // A replacement shows as several steps (create-replacement, replace, delete-replaced): one entry.
    const op = REPLACE_STEPS.has(meta.op) ? "replace" : meta.op;
    const keys = [...new Set([...(earlier?.keys ?? []), ...changedProperties(meta)])].sort();
    drift.set(meta.urn, { urn: meta.urn, type: meta.type, name, op, keys });
  }
  return [...drift.values()];
}

/** How `stack export` writes a secret it did not decrypt. */
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";

function isSecretValue(value: unknown): boolean {
  return typeof value === "object" && value !== null && SECRET_SIG_KEY in value;
}

/** A resource as `stack export` writes it (the fields g8s reads). */
interface ExportedResource {
  urn: string;
  type: string;
  protect?: boolean;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

/** The resources of an exported state, the objects themselves (an edit goes into a later import); undefined without state. */
function exportedResources(state: { deployment: unknown }): ExportedResource[] | undefined {
  return (state.deployment as { resources?: ExportedResource[] } | undefined)?.resources;
}

/**
 * A value of `stack export --show-secrets` with every secret in plain text: the export wraps each
 * as `{<sig>: …, plaintext: "<JSON>"}`. One it could not decrypt (`ciphertext`) is refused.
 */
export function revealSecrets(value: unknown, where = ""): unknown {
  if (Array.isArray(value)) return value.map((v, i) => revealSecrets(v, `${where}[${i}]`));
  if (typeof value !== "object" || value === null) return value;
  const record = value as Record<string, unknown>;
  if (SECRET_SIG_KEY in record) {
    if (typeof record.plaintext !== "string") {
      throw new Error(
        `the state's secret ${where || "value"} was not decrypted (is the backend's passphrase or key set?)`,
      );
    }
    return revealSecrets(JSON.parse(record.plaintext) as unknown, where);
  }
  return Object.fromEntries(
    Object.entries(record).map(([k, v]) => [k, revealSecrets(v, where === "" ? k : `${where}.${k}`)]),
  );
}

/** A file backend lock as the Pulumi CLI writes it. */
interface LockFile {
  pid?: number;
  hostname?: string;
  timestamp?: string;
}

/** Rethrows a failed CLI command as an EngineFailure (one line, the output apart); others as they are. */
function readable(err: unknown): never {
  const failure = describeCommandFailure(err);
  if (failure !== undefined) throw new EngineFailure(failure.cause, failure.output);
  throw err;
}

/**
 * What became of a lock's owner, judged from this host: its pid when the lock is this host's,
 * else whether its host was only a replica that is gone (`hostGone`).
 */
export function lockOwnerState(lock: LockFile, here: string, hostGone?: (host: string) => boolean): LockOwnerState {
  if (lock.hostname !== here || typeof lock.pid !== "number") {
    return lock.hostname && hostGone?.(lock.hostname) ? "replica-gone" : "other-host";
  }
  const taken = lock.timestamp === undefined ? NaN : Date.parse(lock.timestamp);
  return liveness(lock.pid, Number.isNaN(taken) ? undefined : taken);
}

/** A lock as a DIY backend's "currently locked" error lists it. */
export interface ReportedLock extends LockFile {
  /** Where the backend keeps it (the CLI masks a URL's credentials). */
  readonly url: string;
}

/**
 * The locks a DIY backend listed when it refused an update ("the stack is currently locked by
 * N lock(s)", one line each: `<url>: created by <user>@<host> (pid <pid>) at <time>`): what a
 * shared backend (postgres://, s3://) tells of its locks without a client of its own.
 */
export function reportedLocks(message: string): ReportedLock[] {
  // Once each: a failed command's message holds the error as printed to stdout and to stderr.
  const found = new Map<string, ReportedLock>();
  for (const m of message.matchAll(/^\s+(\S+): created by .*@([^@\s]+) \(pid (\d+)\) at (\S+)\s*$/gm)) {
    found.set(m[1], { url: m[1], hostname: m[2], pid: Number(m[3]), timestamp: m[4] });
  }
  return [...found.values()];
}

const DEAD_OWNER = new Set<LockOwnerState>(["exited", "zombie", "reused", "replica-gone"]);

export class PulumiEngine implements Engine {
  private command?: Promise<PulumiCommand>;
  private readonly stacks = new Map<string, Promise<Stack>>();
  private readonly files: EngineWorkspace;
  /** Shared backends: the locks each stack's last refused update listed (file backends are read). */
  private readonly reported = new Map<string, ReportedLock[]>();

  constructor(private readonly options: PulumiEngineOptions) {
    this.files = new EngineWorkspace(options.projectDir, options.workspaceDir);
  }

  private pulumiCommand(): Promise<PulumiCommand> {
    this.command ??= PulumiCommand.get({ root: this.options.cli.root, skipVersionCheck: false });
    return this.command;
  }

  private async workspace(): Promise<LocalWorkspace> {
    await this.files.sync();
    return LocalWorkspace.create({
      workDir: this.files.dir,
      pulumiCommand: await this.pulumiCommand(),
      envVars: this.options.env,
    });
  }

  /**
   * Syncs the stack's file into the private workspace, then selects the stack, creating it in
   * the backend the first time its file is reconciled.
   */
  private async stack(name: string): Promise<Stack> {
    await this.files.sync(name);
    let stack = this.stacks.get(name);
    if (!stack) {
      stack = this.pulumiCommand().then((pulumiCommand) =>
        LocalWorkspace.createOrSelectStack(
          { stackName: name, workDir: this.files.dir },
          { pulumiCommand, envVars: this.options.env },
        ),
      );
      stack.catch(() => this.stacks.delete(name));
      this.stacks.set(name, stack);
    }
    return stack;
  }

  private translate(stack: string, options: OperationOptions, err: unknown): never {
    if (err instanceof ConcurrentUpdateError) {
      const locks = reportedLocks(err.message);
      if (locks.length > 0) this.reported.set(stack, locks);
      throw new StackBusyError(stack, "the backend lock is held");
    }
    if (options.signal.aborted) throw new OperationAbortedError(stack);
    const missing = missingPluginError(String((err as Error)?.message ?? err), this.options.plugins ?? []);
    if (missing !== undefined) throw new Error(missing);
    return readable(err);
  }

  async listStacks(): Promise<string[]> {
    try {
      const ws = await this.workspace();
      return (await ws.listStacks()).map((s) => s.name.split("/").pop() as string);
    } catch (err) {
      return readable(err);
    }
  }

  async previewRefresh(name: string, options: OperationOptions): Promise<PreviewResult> {
    const events: EngineEvent[] = [];
    try {
      const stack = await this.stack(name);
      const result = await stack.preview({
        refresh: true,
        signal: options.signal,
        color: "never",
        policyPacks: this.options.policyPacks ? [...this.options.policyPacks] : undefined,
        onEvent: (e) => void events.push(e),
      });
      return {
        changeSummary: { ...result.changeSummary },
        drift: driftFromEvents(events),
        resources: previewResourcesFromEvents(events),
      };
    } catch (err) {
      return this.translate(name, options, err);
    }
  }

  async upRefresh(name: string, options: OperationOptions): Promise<UpResult> {
    const events: EngineEvent[] = [];
    try {
      const stack = await this.stack(name);
      const result = await stack.up({
        refresh: true,
        signal: options.signal,
        color: "never",
        policyPacks: this.options.policyPacks ? [...this.options.policyPacks] : undefined,
        onEvent: (e) => void events.push(e),
      });
      return { resourceChanges: { ...(result.summary.resourceChanges ?? {}) }, drift: driftFromEvents(events) };
    } catch (err) {
      return this.translate(name, options, err);
    }
  }

  /** What destroying the stack would delete (for `g8s plan` on a decommissioned stack). */
  async previewDestroy(name: string, options: OperationOptions): Promise<PreviewResult> {
    // Not the engine's destroy preview: it fails on every protected resource (etcd volumes, CA,
    // namespace), which a confirmed decommission unprotects first. Destroying deletes every
    // resource of the state, so the state says exactly what goes.
    try {
      const resources = exportedResources(await (await this.stack(name)).exportStack()) ?? [];
      const deleted = resources.filter((r) => !r.type.startsWith("pulumi:providers:"));
      return {
        changeSummary: deleted.length > 0 ? { delete: deleted.length } : {},
        drift: deleted
          .filter((r) => r.type !== "pulumi:pulumi:Stack")
          .map((r) => ({ urn: r.urn, type: r.type, name: r.urn.split("::").pop() ?? r.urn, op: "delete", keys: [] })),
      };
    } catch (err) {
      return this.translate(name, options, err);
    }
  }

  /**
   * A preview of a stack the backend does not hold yet (`g8s plan` on a new stack file), run on a
   * private temporary file backend and workspace, removed afterwards: nothing is written to the
   * shared backend. A stack file without a salt of its own gets a throwaway passphrase, so a new
   * stack is previewed even where no passphrase is given (a pull request from a fork).
   */
  async previewNewStack(name: string, options: OperationOptions): Promise<PreviewResult> {
    const scratch = await fs.mkdtemp(path.join(tmpdir(), "g8s-new-stack-"));
    try {
      const backend = path.join(scratch, "backend");
      await fs.mkdir(backend);
      const env: Record<string, string> = { ...this.options.env, PULUMI_BACKEND_URL: pathToFileURL(backend).href };
      if (env.PULUMI_CONFIG_PASSPHRASE === undefined && env.PULUMI_CONFIG_PASSPHRASE_FILE === undefined)
        env.PULUMI_CONFIG_PASSPHRASE = randomBytes(24).toString("base64");
      const engine = new PulumiEngine({ ...this.options, env, workspaceDir: path.join(scratch, "workspace") });
      engine.command = this.command;
      return await engine.previewRefresh(name, options);
    } finally {
      await fs.rm(scratch, { recursive: true, force: true });
    }
  }

  /**
   * Destroys a decommissioned stack (the file confirmed it by name): first lifts the protection of
   * what the program protects against accidental deletion (etcd volumes, CA, KMS key, namespace),
   * the `state unprotect --all` of the CLI, through an export and import of the state.
   */
  async destroy(name: string, options: OperationOptions): Promise<UpResult> {
    try {
      const stack = await this.stack(name);
      const state = await stack.exportStack();
      const resources = exportedResources(state) ?? [];
      if (resources.some((r) => r.protect === true)) {
        for (const r of resources) delete r.protect;
        await stack.importStack(state);
      }
      const result = await stack.destroy({ signal: options.signal, color: "never", refresh: true });
      return { resourceChanges: { ...(result.summary.resourceChanges ?? {}) } };
    } catch (err) {
      return this.translate(name, options, err);
    }
  }

  /** The root stack resource's `pki` output from `stack export` (a plain output: a secret one is refused). */
  async pkiOutput(name: string): Promise<unknown> {
    return this.plainOutput(name, "pki");
  }

  /** A root stack output from `stack export`, nothing decrypted: a secret one is refused. */
  async plainOutput(name: string, key: string): Promise<unknown> {
    const state = await this.stack(name)
      .then((stack) => stack.exportStack())
      .catch(readable);
    const value = exportedResources(state)?.find((r) => r.type === "pulumi:pulumi:Stack")?.outputs?.[key];
    if (isSecretValue(value))
      throw new Error(`stack output ${key} is a secret: it must be plain (components/cluster.ts)`);
    return value;
  }

  async stackResources(name: string): Promise<StateResource[] | undefined> {
    const state = await this.stack(name)
      .then((stack) => stack.exportStack())
      .catch(readable);
    return exportedResources(state)?.map((r) => ({
      urn: r.urn,
      type: r.type,
      inputs: revealSecrets(r.inputs ?? {}, `${r.urn}.inputs`) as Record<string, unknown>,
      outputs: revealSecrets(r.outputs ?? {}, `${r.urn}.outputs`) as Record<string, unknown>,
    }));
  }

  /**
   * A renewal: `up --refresh` of the targets alone (`--target`, `--replace` for those to
   * replace, never `--target-dependents`). No policy packs: it changes only certificates and
   * what carries them, whatever else of the desired state a policy holds back.
   */
  async upTargets(name: string, targets: RenewalTargets, options: OperationOptions): Promise<UpResult> {
    try {
      const stack = await this.stack(name);
      const result = await stack.up({
        refresh: true,
        target: [...new Set([...targets.update, ...targets.replace])],
        replace: [...targets.replace],
        targetDependents: false,
        signal: options.signal,
        color: "never",
      });
      return { resourceChanges: { ...(result.summary.resourceChanges ?? {}) } };
    } catch (err) {
      return this.translate(name, options, err);
    }
  }

  async pendingOperations(name: string): Promise<PendingOperation[]> {
    const state = await this.stack(name)
      .then((stack) => stack.exportStack())
      .catch(readable);
    const pending = (
      state.deployment as { pending_operations?: Array<{ resource: { urn: string; type: string }; type: string }> }
    ).pending_operations;
    return (pending ?? []).map((p) => ({ urn: p.resource.urn, type: p.resource.type, op: p.type }));
  }

  async clearPendingOperations(name: string): Promise<void> {
    try {
      const stack = await this.stack(name);
      const state = await stack.exportStack();
      delete (state.deployment as { pending_operations?: unknown }).pending_operations;
      await stack.importStack(state);
    } catch (err) {
      readable(err);
    }
  }

  private isFileBackend(): boolean {
    return (this.options.env.PULUMI_BACKEND_URL ?? "").startsWith("file://");
  }

  /**
   * Every lock (of one stack, or all) with its owner's state: a file backend's lock files, or
   * on a shared backend the locks its last refusal listed (none known before one).
   */
  private async locks(stack?: string): Promise<BackendLock[]> {
    const here = hostname();
    const judged = (name: string, lock: LockFile, file: string): BackendLock => ({
      stack: name,
      pid: lock.pid ?? 0,
      host: lock.hostname ?? "",
      since: lock.timestamp,
      file,
      owner: lockOwnerState(lock, here, this.options.hostGone),
    });
    if (!this.isFileBackend()) {
      const names = stack === undefined ? [...this.reported.keys()] : [stack];
      return names.flatMap((name) => (this.reported.get(name) ?? []).map((l) => judged(name, l, l.url)));
    }
    const url = this.options.env.PULUMI_BACKEND_URL as string;
    const locksDir = path.join(fileURLToPath(url), ".pulumi", "locks");
    const found: BackendLock[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(file);
        else if (entry.name.endsWith(".json") && (stack === undefined || path.basename(dir) === stack)) {
          let lock: LockFile;
          try {
            lock = JSON.parse(await fs.readFile(file, "utf8")) as LockFile;
          } catch {
            continue; // removed meanwhile, or being written
          }
          found.push(judged(path.basename(dir), lock, file));
        }
      }
    };
    await walk(locksDir);
    return found;
  }

  /**
   * Removes the locks whose owner is dead. A file backend's one by one; a shared backend's with
   * `pulumi cancel` (which removes every lock of the stack), so only when every lock it listed
   * is dead, and then they are forgotten: a later refusal lists them afresh.
   */
  async clearStaleLocks(stack?: string): Promise<StaleLock[]> {
    const all = await this.locks(stack);
    const stale = all.filter((l): l is StaleLock => DEAD_OWNER.has(l.owner));
    if (this.isFileBackend()) {
      for (const lock of stale) await fs.rm(lock.file, { force: true });
      return stale;
    }
    const cleared: StaleLock[] = [];
    for (const name of new Set(stale.map((l) => l.stack))) {
      const ofStack = all.filter((l) => l.stack === name);
      if (!ofStack.every((l) => DEAD_OWNER.has(l.owner))) continue;
      try {
        await (await this.stack(name)).cancel();
      } catch (err) {
        readable(err);
      }
      this.reported.delete(name);
      cleared.push(...stale.filter((l) => l.stack === name));
    }
    return cleared;
  }

  async lockHolder(stack: string): Promise<BackendLock | undefined> {
    return (await this.locks(stack))[0];
  }

  /** Processes whose PULUMI_HOME is this engine's and whose engine run died (reparented). */
  async endOrphanedProcesses(): Promise<number[]> {
    const home = this.options.env.PULUMI_HOME;
    if (!home) return [];
    const orphans = orphanedProcesses(
      (pid) => processEnv(pid, "PULUMI_HOME") === home,
      (p) => path.basename(p.argv[0] ?? "") === "pulumi",
    );
    const ended: number[] = [];
    for (const p of orphans) {
      // Same process still (not a reused pid) before the signal.
      if (liveness(p.pid, p.startedAtMs) !== "alive") continue;
      try {
        process.kill(p.pid, "SIGKILL");
        ended.push(p.pid);
      } catch {
        /* gone meanwhile */
      }
    }
    return ended;
  }
}
