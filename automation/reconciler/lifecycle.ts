/**
 * A stack's state machine: the sets of phases and every transition between them, as pure
 * functions from (state, event) to the next state. The scheduler only sequences I/O around
 * them (engine, timers, status file); the diagram is in automation/README.md.
 */
import type { DiscoveredStack } from "./discovery";
import type { BackendLock, PassRecord, PendingOperation, StackPhase, StackStatus } from "./types";

/** Phases in which the scheduler never starts an operation on its own. */
export const PARKED: ReadonlySet<StackPhase> = new Set([
  "stalled",
  "invalid",
  "orphaned",
  "needs-attention",
  "off",
  "destroyed",
]);

/**
 * Parked by what discovery finds (a broken file, no file, mode off): lifted as soon as
 * discovery finds a runnable file. The other parked phases wait for a file change or a request.
 */
export const PARKED_BY_FILE: ReadonlySet<StackPhase> = new Set(["invalid", "orphaned", "off"]);

/**
 * Parked phases a restart keeps while the stack file is the same: a stall, and a crash's pending
 * creates (running `up` over them could duplicate what the crash left behind).
 */
export const KEPT_ACROSS_RESTART: ReadonlySet<StackPhase> = new Set(["stalled", "needs-attention"]);

/** Phases in which a requested run is refused: there is nothing a pass could do. */
export const NOT_REQUESTABLE: ReadonlySet<StackPhase> = new Set(["invalid", "orphaned", "off", "destroyed"]);

/** Phases a one-shot run (`g8s reconcile`) leaves out: no file to run, or already destroyed. */
export const NOTHING_TO_RUN: ReadonlySet<StackPhase> = new Set(["orphaned", "destroyed"]);

/** Phases that hold a place in the queue or a worker: never due, never queued twice. */
export const ACTIVE: ReadonlySet<StackPhase> = new Set(["queued", "running"]);

/** What the scheduler knows of one stack. */
export interface StackState {
  /** The stack as discovery last reported it. */
  readonly stack: DiscoveredStack;
  readonly status: StackStatus;
  /** A run was asked for while a pass ran (file change, request): run again as soon as it ends. */
  readonly runAgain: boolean;
  /**
   * Its next run is out of turn: new desired state, a run a person asked for, or recovery from
   * an interrupted run. It goes ahead of routine checks (queue and due order) until it starts:
   * with hundreds of stacks and a few workers, a change or a crash's repair would otherwise wait
   * behind every check that fell due in the same moment.
   */
  readonly urgent: boolean;
  /** A change to what the stack manages was noticed since its last pass began (`changeNoticed`). */
  readonly changed?: boolean;
  /**
   * The stack file hash of the last pass that previewed the desired state and found it in sync
   * or corrected it: a noticed change to the same desired state is corrected at once (pass.ts
   * `correctsAtOnce`). Cleared by a blocked or invalid outcome and by a new checkout.
   */
  readonly judged?: string;
}

/** Retry settings the outcome of a pass is judged by. */
export interface RetryPolicy {
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly stallAfter: number;
  readonly busyRetryMs: number;
  readonly busyStuckAfterMs: number;
}

/** What a busy pass's lock turned out to be. */
export interface LockExamination {
  readonly cleared: boolean;
  readonly holder?: BackendLock;
}

/** The n-th backoff delay (n ≥ 1): base, doubling, capped. */
export function backoffDelay(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, failures - 1), maxMs);
}

const iso = (ms: number) => new Date(ms).toISOString();
const MODE_OFF = "g8s:reconcile.mode is off";

/** When the stack runs next by itself (epoch ms), if it is scheduled. */
export function nextRunAt(status: StackStatus): number | undefined {
  return status.nextRunAt === undefined ? undefined : Date.parse(status.nextRunAt);
}

/**
 * A stack queued here that another replica runs now (replicas sharing the stacks): out of the
 * queue, due again at `dueAt` (at once when it moved away: should it come back; after the busy
 * retry when a claim was refused, so a store that refuses every claim is not asked in a loop).
 */
export function ownedElsewhere(state: StackState, message: string, dueAt: number): StackState {
  return withStatus(state, { phase: "pending", message, nextRunAt: iso(dueAt) });
}

/** Whether the scheduler starts the stack now: its next run has come and it is not already active. */
export function isDue(status: StackStatus, now: number): boolean {
  const at = nextRunAt(status);
  return at !== undefined && at <= now && !ACTIVE.has(status.phase);
}

function withStatus(state: StackState, change: Partial<StackStatus>): StackState {
  return { ...state, status: { ...state.status, ...change } };
}

function park(state: StackState, phase: StackPhase, message: string): StackState {
  return withStatus(state, { phase, message, nextRunAt: undefined });
}

export interface DiscoveryContext {
  readonly now: number;
  /** The status the stack had before a restart (status file), for a stack seen the first time. */
  readonly restored?: StackStatus;
  /** A random fraction of the jitter, 0 ≤ x < jitter; drawn only for a stack scheduled afresh. */
  readonly jitter: () => number;
  /** A pass over the stack is running now. */
  readonly inFlight: boolean;
}

/** The first state of a stack seen for the first time: restored, parked phases kept for the same file. */
function firstSight(d: DiscoveredStack, restored: StackStatus | undefined): StackState {
  const sameFile = restored !== undefined && restored.fileHash === d.fileHash;
  // A stall or a crash's pending creates survive a restart; an entry restored as running is
  // decided by `interrupted` once pending operations have been read.
  const keep = restored?.phase === "running" || (sameFile && KEPT_ACROSS_RESTART.has(restored.phase));
  const status: StackStatus = {
    name: d.name,
    phase: "pending",
    mode: d.settings?.mode ?? "correct",
    intervalSeconds: d.settings?.intervalSeconds ?? 0,
    consecutiveFailures: 0,
    ...(restored ?? {}),
    ...(keep ? {} : { phase: "pending" }),
    file: d.file,
    fileHash: d.fileHash,
    nextRunAt: undefined,
  };
  return { stack: d, status, runAgain: false, urgent: false };
}

/** What a discovered stack becomes: new, orphaned, invalid, off, changed (runs at once) or unchanged. */
export function discovered(state: StackState | undefined, d: DiscoveredStack, c: DiscoveryContext): StackState {
  const fileChanged =
    state !== undefined ? state.stack.fileHash !== d.fileHash : changedWhileDown(c.restored, d.fileHash);
  let next: StackState = state === undefined ? firstSight(d, c.restored) : { ...state, stack: d };
  if (d.file === undefined) {
    return park(
      next,
      "orphaned",
      `in the backend without a stack file: nothing is destroyed; a file with g8s:decommission: ${d.name} removes it`,
    );
  }
  if (d.error !== undefined || d.settings === undefined) return park(next, "invalid", d.error ?? "no stack settings");
  const { mode, intervalSeconds } = d.settings;
  next = withStatus(next, { mode, intervalSeconds, file: d.file, fileHash: d.fileHash });
  if (mode === "off") return park(next, "off", MODE_OFF);
  const { phase } = next.status;
  if (fileChanged) {
    // A changed file is new desired state (or a fix): run now, forgetting past failures.
    const fresh = { ...withStatus(next, { consecutiveFailures: 0, message: undefined }), urgent: true };
    if (c.inFlight) return { ...fresh, runAgain: true };
    return phase === "queued" ? fresh : withStatus(fresh, { phase: "pending", nextRunAt: iso(c.now) });
  }
  // Parked until a file change or a request; or restored as running (see `interrupted`).
  if ((PARKED.has(phase) && !PARKED_BY_FILE.has(phase)) || phase === "running") return next;
  if (PARKED_BY_FILE.has(phase)) next = withStatus(next, { phase: "pending", message: undefined });
  if (next.status.nextRunAt === undefined && !ACTIVE.has(next.status.phase) && !c.inFlight) {
    // First sight: spread the stacks over the first jitter window instead of a thundering start.
    next = withStatus(next, { nextRunAt: iso(c.now + Math.round(c.jitter() * intervalSeconds * 1000)) });
  }
  return next;
}

/**
 * The stack file differs from the one the status file recorded before a restart: new desired
 * state the stopped daemon never saw, run at once like any change. A stack restored as running
 * is left to `interrupted`, which must first look at what the dead run left pending.
 */
function changedWhileDown(restored: StackStatus | undefined, fileHash: string | undefined): boolean {
  return (
    restored !== undefined &&
    restored.phase !== "running" &&
    restored.fileHash !== undefined &&
    restored.fileHash !== fileHash
  );
}

/**
 * The stack file changed while a renewal alone ran (a pass would take `runAgain` in passEnded):
 * run now, as `discovered` does for an idle stack; a queued stack keeps its place.
 */
export function changedWhileRenewing(state: StackState, now: number): StackState {
  const next = { ...state, runAgain: false, urgent: true };
  if (next.status.phase === "queued" || PARKED_BY_FILE.has(next.status.phase)) return next;
  return withStatus(next, { phase: "pending", nextRunAt: iso(now) });
}

/** What the pending operations of a stack restored as running decide (the previous process died mid-operation). */
export function interrupted(
  state: StackState,
  pending: readonly PendingOperation[],
  c: { readonly now: number; readonly clearPendingOperations: boolean },
): { readonly state: StackState; readonly clearPending: boolean } {
  // A pending create may have made a resource the state does not know: a person decides.
  // Pending updates and deletes are settled by the engine's next update.
  const creates = pending.filter((p) => p.op === "creating");
  if (creates.length > 0 && !c.clearPendingOperations) {
    const urns = creates.map((p) => p.urn).join(", ");
    return {
      state: park(state, "needs-attention", `interrupted update left ${creates.length} pending create(s): ${urns}`),
      clearPending: false,
    };
  }
  return {
    state: {
      ...withStatus(state, {
        phase: "pending",
        message: "previous run was interrupted: reconciling now",
        nextRunAt: iso(c.now),
      }),
      urgent: true,
    },
    clearPending: creates.length > 0,
  };
}

/** Due, requested or one-shot: the stack waits for a worker. */
export function enqueued(state: StackState): StackState {
  return withStatus(state, { phase: "queued", nextRunAt: undefined });
}

/** A worker took the stack: whatever made it urgent is being done. */
export function started(state: StackState): StackState {
  return { ...withStatus(state, { phase: "running", nextRunAt: undefined }), urgent: false, changed: false };
}

/** A running pass says where it is (a rolling upgrade's node): its message until the pass ends. */
export function progressed(state: StackState, message: string): StackState {
  return state.status.phase === "running" ? withStatus(state, { message }) : state;
}

/** Shutdown: a stack still waiting for a worker goes back to pending. */
export function stopped(state: StackState): StackState {
  return state.status.phase === "queued" ? withStatus(state, { phase: "pending" }) : state;
}

/**
 * A change to what the stack manages was noticed (a host object a person edited, an outside
 * event): a pass now, urgent; after the running one if one runs. A parked stack stays parked:
 * a stall or needs-attention waits for a person, and an event is no answer.
 */
export function changeNoticed(state: StackState, now: number): StackState | undefined {
  const { phase } = state.status;
  if (PARKED.has(phase)) return undefined;
  if (phase === "running") return { ...state, runAgain: true, changed: true };
  if (phase === "queued") return { ...state, urgent: true, changed: true };
  return { ...withStatus(state, { phase: "pending", nextRunAt: iso(now) }), urgent: true, changed: true };
}

export type RunRequestAnswer =
  | { readonly accepted: true; readonly state: StackState }
  | { readonly accepted: false; readonly reason: "not-runnable" };

/**
 * Someone asked for a run now: queued, or marked to run again after the running pass. A stalled
 * stack starts afresh (its failures forgotten); needs-attention is taken as answered.
 */
export function runRequested(state: StackState): RunRequestAnswer {
  const { phase, consecutiveFailures } = state.status;
  if (NOT_REQUESTABLE.has(phase)) return { accepted: false, reason: "not-runnable" };
  if (phase === "running") return { accepted: true, state: { ...state, runAgain: true } };
  if (phase === "queued") return { accepted: true, state: { ...state, urgent: true } };
  const fresh = withStatus(state, { consecutiveFailures: phase === "stalled" ? 0 : consecutiveFailures });
  return { accepted: true, state: enqueued({ ...fresh, urgent: true }) };
}

export interface PassEndContext {
  readonly now: number;
  readonly policy: RetryPolicy;
  /** A random fraction of the jitter, 0 ≤ x < jitter; drawn only when the next run is on the interval. */
  readonly jitter: () => number;
  /** For a busy pass: what its lock turned out to be. */
  readonly lock?: LockExamination;
}

function busyMessage(record: PassRecord, busyMs: number, holder: BackendLock | undefined, stuckAfterMs: number) {
  if (busyMs < stuckAfterMs) return `busy: ${record.error ?? "locked"}; retrying`;
  const held = holder ? `the backend lock is held by pid ${holder.pid} on ${holder.host || "an unknown host"}` : "";
  const foreign = holder?.owner === "other-host" ? " (another host: g8s cannot tell whether it still runs)" : "";
  return `busy for ${Math.round(busyMs / 1000)} s: ${held || "locked"}${foreign}; retrying`;
}

/** The status change an outcome makes, before the common bookkeeping of `passEnded`. */
function outcomeChange(state: StackState, record: PassRecord, c: PassEndContext): Partial<StackStatus> {
  const { now, policy } = c;
  const { status } = state;
  const at = iso(now);
  const onInterval = () => iso(now + Math.round(status.intervalSeconds * 1000 * (1 + c.jitter())));
  const drift = record.drift.length > 0 ? { lastDrift: record, lastDriftAt: at } : {};
  const success = { consecutiveFailures: 0, lastSuccessAt: at, message: undefined, ...drift };
  switch (record.outcome) {
    case "in-sync":
    case "corrected":
      return { phase: "in-sync", ...success, nextRunAt: onInterval() };
    case "drifted":
      return { phase: "drifted", ...success, nextRunAt: onInterval() };
    case "blocked":
      // Not a success: the live state still differs from the desired one, and stays so until
      // the stack file or the policy changes. Nor a failure: retrying sooner changes nothing.
      return { phase: "blocked", message: `up blocked: ${record.error}`, ...drift, nextRunAt: onInterval() };
    case "busy": {
      if (c.lock?.cleared) {
        // The lock's owner on this host is dead: the lock was removed, so run again at once.
        return { phase: "pending", message: "a dead process's backend lock was cleared: retrying now", nextRunAt: at };
      }
      const since = status.busySince ?? at;
      const holder = c.lock?.holder;
      return {
        phase: "pending",
        message: busyMessage(record, now - Date.parse(since), holder, policy.busyStuckAfterMs),
        busySince: since,
        lockOwner: holder
          ? { pid: holder.pid, host: holder.host, since: holder.since, owner: holder.owner }
          : undefined,
        nextRunAt: iso(now + policy.busyRetryMs),
      };
    }
    case "aborted":
      return { phase: "pending", message: "aborted by shutdown", nextRunAt: undefined };
    case "destroyed":
      return { phase: "destroyed", message: "decommissioned: stack resources destroyed", nextRunAt: undefined };
    case "skipped":
      return { phase: "off", message: MODE_OFF, nextRunAt: undefined };
    case "invalid":
      return { phase: "invalid", message: record.error ?? "invalid stack file", nextRunAt: undefined };
    case "failed": {
      const failures = status.consecutiveFailures + 1;
      if (failures >= policy.stallAfter) {
        const message = `stalled after ${failures} consecutive failures: change the stack file or request a run`;
        return { phase: "stalled", consecutiveFailures: failures, message, nextRunAt: undefined };
      }
      const delay = backoffDelay(failures, policy.backoffBaseMs, policy.backoffMaxMs);
      return { phase: "backoff", consecutiveFailures: failures, message: record.error, nextRunAt: iso(now + delay) };
    }
  }
}

/** What a pass's outcome does to phase, next run, failure count and message. */
export function passEnded(state: StackState, record: PassRecord, c: PassEndContext): StackState {
  const change = outcomeChange(state, record, c);
  const notBusy = record.outcome !== "busy" ? { busySince: undefined, lockOwner: undefined } : {};
  const next = withStatus(state, { ...notBusy, ...change, lastPass: record });
  // A run asked for during the pass follows at once, unless the outcome parked the stack or a
  // shutdown aborted the pass.
  const again = state.runAgain && !PARKED.has(next.status.phase) && record.outcome !== "aborted";
  // A cleared dead lock is recovery from a crash: as urgent as the interrupted run it stood for.
  const recovering = record.outcome === "busy" && c.lock?.cleared === true;
  return {
    ...(again ? withStatus(next, { nextRunAt: iso(c.now) }) : next),
    runAgain: false,
    urgent: again || recovering,
    judged: judgedAfter(state.judged, record),
  };
}

/** What a pass leaves judged (see StackState.judged): a busy, failed or aborted pass changes nothing. */
function judgedAfter(judged: string | undefined, record: PassRecord): string | undefined {
  if (record.outcome === "in-sync" || record.outcome === "corrected") return record.fileHash;
  if (record.outcome === "busy" || record.outcome === "failed" || record.outcome === "aborted") return judged;
  return undefined;
}
