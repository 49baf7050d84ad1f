/**
 * The reconciler's contracts. The scheduler talks to the Pulumi engine only through `Engine`,
 * so it is tested against a fake engine and the adapter (automation/engine/pulumiEngine.ts)
 * against the real CLI.
 */
import type { ReconcileMode } from "../../components/spec";
import type { PreviewResource, Violation } from "../policy/runner";

export type { PreviewResource, Violation };

/** A resource the engine would change, as seen by a refreshing preview. */
export interface ResourceDrift {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  /** Engine operation: update, replace, create, delete, create-replacement, … */
  readonly op: string;
  /** Properties that differ, when the engine says (never their values: they may be secret). */
  readonly keys: readonly string[];
}

export interface PreviewResult {
  /** Engine change summary by operation, e.g. `{ same: 3, update: 1 }`. */
  readonly changeSummary: Readonly<Record<string, number>>;
  readonly drift: readonly ResourceDrift[];
  /** Every resource as the update would leave it (new inputs, options), for policy checks. */
  readonly resources?: readonly PreviewResource[];
}

export interface UpResult {
  readonly resourceChanges: Readonly<Record<string, number>>;
  /** What the update changed, per resource (as a preview reports drift); absent when unknown. */
  readonly drift?: readonly ResourceDrift[];
}

export interface OperationOptions {
  /** Aborting cancels the engine operation (the CLI gets SIGINT, then is killed). */
  readonly signal: AbortSignal;
}

/** Pending operations left in a stack's state by an interrupted update. */
export interface PendingOperation {
  readonly urn: string;
  readonly type: string;
  /** Engine operation: creating, updating, deleting, reading, importing. */
  readonly op: string;
}

/** One certificate of a stack as its `pki` output says (automation/reconciler/renewal.ts). */
export interface CertificateStatus {
  /** `apiserver`, `etcd-master-0`, `user-jane`, …; `ca` for the CA. */
  readonly key: string;
  /** RFC 3339; "" when unknown. */
  readonly notBefore: string;
  readonly notAfter: string;
  /** From when it is due for renewal (RFC 3339); "" when g8s never renews it by itself. */
  readonly renewAt: string;
  /** The resources an update renewing it includes. */
  readonly urns: readonly string[];
}

/** The resources of a targeted update: updated in place, or replaced. Never their dependents. */
export interface RenewalTargets {
  readonly update: readonly string[];
  readonly replace: readonly string[];
}

/** What a renewal can end in (a list at runtime, for metrics series). */
export const RENEWAL_OUTCOMES = ["not-due", "renewed", "busy", "aborted", "failed"] as const;
export type RenewalOutcome = (typeof RENEWAL_OUTCOMES)[number];

export interface RenewalRecord {
  readonly stack: string;
  readonly outcome: RenewalOutcome;
  readonly startedAt: string;
  readonly durationMs: number;
  /** Keys of the certificates reissued. */
  readonly renewed: readonly string[];
  /** Keys that were due when it failed. */
  readonly due?: readonly string[];
  /** The certificates as read last (after the update when it ran). */
  readonly certificates?: readonly CertificateStatus[];
  readonly resourceChanges?: Readonly<Record<string, number>>;
  readonly error?: string;
  readonly output?: string;
}

/** A stack's renewal duty, as status shows it. */
export interface RenewalStatus {
  readonly consecutiveFailures: number;
  readonly lastCheckAt?: string;
  readonly lastRenewedAt?: string;
  readonly lastRenewed?: readonly string[];
  readonly lastError?: string;
  /** Set after a failure or a busy lock: when the next attempt runs. */
  readonly nextAttemptAt?: string;
}

/** A resource as the stack's state holds it, secrets in plain text. */
export interface StateResource {
  readonly urn: string;
  readonly type: string;
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly outputs: Readonly<Record<string, unknown>>;
}

export interface Engine {
  /** Stacks the backend holds for the project. */
  listStacks(): Promise<string[]>;
  /** Lock-free preview that refreshes first. */
  previewRefresh(stack: string, options: OperationOptions): Promise<PreviewResult>;
  /** `up --refresh` under the backend lock. */
  upRefresh(stack: string, options: OperationOptions): Promise<UpResult>;
  destroy(stack: string, options: OperationOptions): Promise<UpResult>;
  /**
   * The stack output `pki` as the state holds it, read without running the program or
   * decrypting anything; undefined when the stack has no such output (or no state yet).
   */
  pkiOutput(stack: string): Promise<unknown>;
  /** A plain (not secret) stack output as the state holds it, such as `kubernetesVersion`; undefined without one. */
  plainOutput(stack: string, key: string): Promise<unknown>;
  /**
   * Every resource of the stack's state with its inputs and outputs, secrets decrypted (the
   * backend's passphrase or key), read without running the program; undefined when the stack
   * has no state yet. For what an operator asks of the state, such as `g8s kubeconfig`: never
   * log or return what it gives.
   */
  stackResources(stack: string): Promise<StateResource[] | undefined>;
  /** `up --refresh` limited to the targets (no dependents), under the backend lock: a renewal. */
  upTargets(stack: string, targets: RenewalTargets, options: OperationOptions): Promise<UpResult>;
  pendingOperations(stack: string): Promise<PendingOperation[]>;
  /** Drops pending operations from the stack's state (only on explicit request). */
  clearPendingOperations(stack: string): Promise<void>;
  /**
   * Removes backend locks whose owner is dead: a process on this host that no longer runs
   * (exited, zombie, or a pid now used by a younger process), or a replica on another host whose
   * lease expired (replica-gone). All of them, or one stack's. A shared backend's locks are known
   * from the last update it refused (file backends are read).
   */
  clearStaleLocks(stack?: string): Promise<StaleLock[]>;
  /** Who holds the stack's backend lock, if anyone knows (a shared backend: as its last refusal said). */
  lockHolder(stack: string): Promise<BackendLock | undefined>;
  /**
   * Ends engine processes (language hosts, provider plugins, programs) that a killed engine
   * run of this reconciler left behind; returns their pids.
   */
  endOrphanedProcesses(): Promise<number[]>;
}

/**
 * What became of a lock's owner: `alive`, dead (`exited`, `zombie`, `reused` pid on this host;
 * `replica-gone`: another host that only a replica with an expired lease ran on), or unknown.
 */
export type LockOwnerState = "alive" | "exited" | "zombie" | "reused" | "replica-gone" | "other-host";

/** A backend lock and its owner. */
export interface BackendLock {
  readonly stack: string;
  /** The owner's pid and host, as the lock recorded them. */
  readonly pid: number;
  readonly host: string;
  /** When the lock was taken (ISO time), when recorded. */
  readonly since?: string;
  /** A file backend's lock file; a shared backend's lock URL, as the CLI showed it. */
  readonly file: string;
  readonly owner: LockOwnerState;
}

/** A backend lock whose owner is gone. */
export type StaleLock = BackendLock & { readonly owner: "exited" | "zombie" | "reused" | "replica-gone" };

/** The stack is locked by another update: retry soon, not a failure. */
export class StackBusyError extends Error {
  constructor(stack: string, detail?: string) {
    super(`stack ${stack} is locked by another update${detail ? `: ${detail}` : ""}`);
    this.name = "StackBusyError";
  }
}

/** The operation was aborted through its signal (shutdown). */
export class OperationAbortedError extends Error {
  constructor(stack: string) {
    super(`operation on stack ${stack} was aborted`);
    this.name = "OperationAbortedError";
  }
}

/**
 * A failed engine command: `message` is one line with the cause (what logs and the status table
 * show), `output` the engine's whole output (what `g8s status <stack>` shows).
 */
export class EngineFailure extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
    this.name = "EngineFailure";
  }
}

/** The reason a pass's signal is aborted with when it ran too long. */
export class PassTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${Math.round(timeoutMs / 1000)} s`);
    this.name = "PassTimeoutError";
  }
}

/** What one pass over one stack can end in (a list at runtime, for metrics series). */
export const PASS_OUTCOMES = [
  "in-sync", // nothing drifted
  "corrected", // drift found and undone by up
  "drifted", // drift found, mode detect: reported only
  "blocked", // drift found, but the desired state violates a mandatory policy: no up
  "skipped", // mode off
  "destroyed", // decommissioned
  "busy", // locked by someone else; retried soon
  "invalid", // the stack file is broken; nothing was run
  "aborted", // shutdown interrupted it
  "failed", // the engine failed
] as const;

export type PassOutcome = (typeof PASS_OUTCOMES)[number];

export interface PassRecord {
  readonly stack: string;
  readonly outcome: PassOutcome;
  readonly mode: ReconcileMode;
  readonly startedAt: string;
  readonly durationMs: number;
  /** sha256 of the stack file the pass ran on. */
  readonly fileHash?: string;
  /**
   * A noticed change was corrected at once: `up --refresh` without the detection preview, since
   * a pass had already judged this desired state (see `correctsAtOnce`).
   */
  readonly direct?: boolean;
  readonly detectMs?: number;
  readonly correctMs?: number;
  readonly drift: readonly ResourceDrift[];
  readonly changeSummary?: Readonly<Record<string, number>>;
  readonly resourceChanges?: Readonly<Record<string, number>>;
  /** Error text for failed/invalid/busy passes, secrets redacted: one line for an engine failure. */
  readonly error?: string;
  /** The engine's whole output when it failed (EngineFailure), secrets redacted. */
  readonly output?: string;
  /** Policy violations of the desired state (a mandatory one blocks the up). */
  readonly violations?: readonly Violation[];
  /** The node pools the update removed, drained first: pool → nodes, pods evicted, how long it took. */
  readonly drained?: {
    readonly pools: Readonly<Record<string, readonly string[]>>;
    readonly evicted: number;
    readonly ms: number;
  };
  /** The rolling upgrade the pass made after its update: versions, each node and its seconds. */
  readonly upgrade?: UpgradeRecord;
  /** The KVM nodes the pass restarted on their new pod template after its update, each drained first. */
  readonly rolled?: RollRecord;
  /** The renewal the pass ran first (or after its preview, when certificates fell due meanwhile). */
  readonly renewal?: RenewalRecord;
  /** The certificates as read after the pass's `up` (which may have reissued some). */
  readonly certificates?: readonly CertificateStatus[];
}

/** A rolling upgrade of a guest cluster's Kubernetes (automation/access/upgrade.ts), as a pass records it. */
export interface UpgradeRecord {
  readonly from: string;
  readonly to: string;
  readonly nodes: readonly { readonly node: string; readonly seconds: number }[];
  readonly seconds: number;
}

/** A roll of KVM nodes onto their StatefulSet's new template (automation/access/roll.ts), as a pass records it. */
export interface RollRecord {
  readonly nodes: readonly { readonly node: string; readonly seconds: number }[];
  readonly seconds: number;
}

/**
 * Where a stack stands, as /api/stacks, `g8s status` and `g8s_stack_phase` show it. The sets of
 * phases and the transitions between them live in lifecycle.ts (diagram: automation/README.md).
 */
export const STACK_PHASES = [
  "pending", // discovered, or waiting for its next run
  "queued", // due, waiting for a worker
  "running",
  "in-sync",
  "drifted", // drift found in mode detect: reported only
  "blocked", // drift found, but a mandatory policy forbids the up: not a success
  "backoff", // failed, retrying with backoff
  "stalled", // too many failures in a row: waits for a file change or a requested run
  "invalid",
  "orphaned", // in the backend, no stack file: reported, never destroyed
  "needs-attention", // pending operations in state after a crash
  "off",
  "destroyed",
] as const;

export type StackPhase = (typeof STACK_PHASES)[number];

export interface StackStatus {
  readonly name: string;
  readonly phase: StackPhase;
  readonly mode: ReconcileMode;
  readonly intervalSeconds: number;
  readonly file?: string;
  /** sha256 of the stack file's text: a change makes the stack run at once. */
  readonly fileHash?: string;
  readonly consecutiveFailures: number;
  readonly nextRunAt?: string;
  readonly lastSuccessAt?: string;
  readonly lastDriftAt?: string;
  readonly lastPass?: PassRecord;
  /** Last pass that found drift, with its details. */
  readonly lastDrift?: PassRecord;
  readonly message?: string;
  /** Since when passes have ended busy, without a break (cleared by any other outcome). */
  readonly busySince?: string;
  /** Who held the backend lock at the last busy pass. */
  readonly lockOwner?: Omit<BackendLock, "file" | "stack">;
  /** The stack's certificates as last read (undefined: not read yet). */
  readonly certificates?: readonly CertificateStatus[];
  /** The renewal duty: last check, last renewal, failures and retry. */
  readonly renewal?: RenewalStatus;
  /** With replicas (`--coordination kubernetes`): the replica that owns the stack in this one's view. */
  readonly owner?: string;
}
