/**
 * The reconciler's scheduler: every stack on its own interval with jitter, a bounded worker
 * pool, never two operations on one stack, exponential backoff and stall on failures, an
 * immediate run when a stack file changes, status persisted across restarts, and a shutdown
 * that aborts running operations and waits for them.
 */
import type { Clock, TimerHandle } from "./clock";
import { sleep } from "./clock";
import type { DiscoveredStack, StackSource } from "./discovery";
import { runPass, type PassContext } from "./pass";
import type { StatusStore } from "./status";
import {
  PassTimeoutError,
  type BackendLock,
  type Engine,
  type PassRecord,
  type StackPhase,
  type StackStatus,
} from "./types";

/** The part of a pino logger the scheduler uses. */
export interface Log {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const SCHEDULER_DEFAULTS = {
  concurrency: 2,
  /** A run is due between interval and interval × (1 + jitter) after the last one. */
  jitter: 0.1,
  backoffBaseMs: 10_000,
  backoffMaxMs: 60 * 60 * 1000,
  stallAfter: 5,
  busyRetryMs: 15_000,
  /** A stack busy without a break for this long is reported as stuck on its lock (10 busy retries). */
  busyStuckAfterMs: 150_000,
  discoverIntervalMs: 5_000,
  backendDiscoverIntervalMs: 60_000,
  shutdownGraceMs: 60_000,
  /** A pass still running after this long is aborted and recorded as failed. */
  passTimeoutMs: 30 * 60 * 1000,
} as const;

export interface SchedulerOptions {
  readonly engine: Engine;
  readonly source: StackSource;
  readonly store: StatusStore;
  readonly clock: Clock;
  readonly log: Log;
  readonly random?: () => number;
  readonly redact?: (text: string) => string;
  readonly concurrency?: number;
  readonly jitter?: number;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  readonly stallAfter?: number;
  readonly busyRetryMs?: number;
  readonly busyStuckAfterMs?: number;
  readonly passTimeoutMs?: number;
  readonly discoverIntervalMs?: number;
  readonly backendDiscoverIntervalMs?: number;
  /** Policy check before every up (see pass.ts). */
  readonly checkPolicies?: PassContext["checkPolicies"];
  /** Drop pending operations left by a crash instead of stopping at needs-attention. */
  readonly clearPendingOperations?: boolean;
  /** Called after every pass and every status change (metrics). */
  readonly onPass?: (record: PassRecord) => void;
  readonly onStatus?: (status: StackStatus) => void;
  readonly onLoad?: (inFlight: number, queueDepth: number) => void;
  /** A stack is gone from files and backend (its metrics series should go too). */
  readonly onForget?: (name: string) => void;
}

type Hooks = "onPass" | "onStatus" | "onLoad" | "onForget" | "checkPolicies";
type Resolved = Required<Omit<SchedulerOptions, Hooks>> &
  Pick<SchedulerOptions, Hooks> & { readonly shutdownGraceMs: number };

interface Entry {
  stack: DiscoveredStack;
  status: StackStatus;
  nextRunAt?: number;
  queued: boolean;
  running?: { controller: AbortController; done: Promise<void> };
  rerun: boolean;
}

/** What a busy pass's lock turned out to be. */
interface LockExamination {
  readonly cleared: boolean;
  readonly holder?: BackendLock;
}

export type RunRequest =
  | { accepted: true; status: StackStatus }
  | { accepted: false; reason: "unknown-stack" | "not-runnable" | "shutting-down"; status?: StackStatus };

/** Phases in which the scheduler never starts an operation on its own. */
const PARKED: ReadonlySet<StackPhase> = new Set([
  "stalled",
  "invalid",
  "orphaned",
  "needs-attention",
  "off",
  "destroyed",
]);

/** The n-th backoff delay (n ≥ 1): base, doubling, capped. */
export function backoffDelay(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, failures - 1), maxMs);
}

export class Scheduler {
  private readonly entries = new Map<string, Entry>();
  private readonly queue: Entry[] = [];
  private readonly o: Resolved;
  private readonly passListeners = new Set<(record: PassRecord) => void>();
  private wakeTimer?: TimerHandle;
  private wakeAt?: number;
  private discoverTimer?: TimerHandle;
  private lastBackendDiscovery = -Infinity;
  private inFlight = 0;
  private started = false;
  /** runOnce: run what was queued, schedule nothing further. */
  private oneShot = false;
  private stopping = false;
  private ready = false;
  private persisted = new Map<string, StackStatus>();
  private drainWaiters: Array<() => void> = [];

  constructor(options: SchedulerOptions) {
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as SchedulerOptions;
    this.o = {
      random: Math.random,
      redact: (t: string) => t,
      clearPendingOperations: false,
      ...SCHEDULER_DEFAULTS,
      ...given,
    };
    if (!Number.isInteger(this.o.concurrency) || this.o.concurrency < 1) {
      throw new RangeError(`concurrency must be a whole number ≥ 1 (got ${this.o.concurrency})`);
    }
  }

  // ---- queries (HTTP API, CLI) ----

  isReady(): boolean {
    return this.ready;
  }

  list(): StackStatus[] {
    return [...this.entries.values()].map((e) => e.status).sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): StackStatus | undefined {
    return this.entries.get(name)?.status;
  }

  load(): { inFlight: number; queueDepth: number } {
    return { inFlight: this.inFlight, queueDepth: this.queue.length };
  }

  // ---- lifecycle ----

  /** Restores status, clears stale locks, discovers stacks, and starts scheduling. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.persisted = await this.o.store.load();
    await this.clearStaleLocks();
    await this.discover(true);
    await this.recoverInterrupted();
    this.ready = true;
    this.scheduleDiscovery();
    this.reschedule();
    await this.persist();
  }

  /** Stops scheduling, aborts running operations, waits up to graceMs for them, persists. */
  async stop(graceMs: number = SCHEDULER_DEFAULTS.shutdownGraceMs): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.clearTimer("wake");
    this.clearTimer("discover");
    for (const e of this.queue.splice(0)) {
      e.queued = false;
      this.setStatus(e, { phase: e.status.phase === "queued" ? "pending" : e.status.phase });
    }
    const running = [...this.entries.values()].filter((e) => e.running);
    for (const e of running) e.running?.controller.abort(new Error("reconciler shutting down"));
    if (running.length > 0) {
      this.o.log.info({ stacks: running.map((e) => e.stack.name), graceMs }, "aborting running operations");
      const grace = new AbortController();
      await Promise.race([
        Promise.all(running.map((e) => e.running?.done)),
        sleep(this.o.clock, graceMs, grace.signal).catch(() => undefined),
      ]);
      grace.abort();
    }
    await this.persist();
  }

  /**
   * One pass over the given stacks (default: every runnable one), for `g8s reconcile --once`.
   * Resolves with one record per stack when all are done.
   */
  async runOnce(names?: readonly string[]): Promise<PassRecord[]> {
    this.started = true;
    this.oneShot = true;
    this.persisted = await this.o.store.load();
    await this.discover(false);
    this.ready = true;
    const selected = names ?? [...this.entries.keys()].sort();
    const unknown = selected.filter((n) => !this.entries.has(n));
    if (unknown.length > 0) throw new Error(`no stack file for ${unknown.join(", ")} in stacks/`);
    const records: PassRecord[] = [];
    const collect = (r: PassRecord) => void records.push(r);
    this.passListeners.add(collect);
    for (const name of selected) {
      const e = this.entries.get(name) as Entry;
      if (e.status.phase === "orphaned" || e.status.phase === "destroyed") continue;
      this.enqueue(e);
    }
    this.pump();
    await this.drained();
    this.passListeners.delete(collect);
    await this.persist();
    return records.sort((a, b) => a.stack.localeCompare(b.stack));
  }

  /** Re-reads stack files now (a new commit was checked out), outside the discovery timer. */
  async refresh(): Promise<void> {
    await this.discover(false);
    this.reschedule();
  }

  /** Queues an immediate run; un-stalls a stalled stack and clears needs-attention. */
  requestRun(name: string): RunRequest {
    const e = this.entries.get(name);
    if (!e) return { accepted: false, reason: "unknown-stack" };
    if (this.stopping) return { accepted: false, reason: "shutting-down", status: e.status };
    const { phase } = e.status;
    if (phase === "invalid" || phase === "orphaned" || phase === "off" || phase === "destroyed") {
      return { accepted: false, reason: "not-runnable", status: e.status };
    }
    if (e.running) {
      e.rerun = true;
    } else if (!e.queued) {
      this.setStatus(e, { consecutiveFailures: phase === "stalled" ? 0 : e.status.consecutiveFailures });
      this.enqueue(e);
      this.pump();
      this.reschedule();
    }
    this.o.log.info({ stack: name }, "run requested");
    return { accepted: true, status: e.status };
  }

  // ---- discovery ----

  private scheduleDiscovery(): void {
    this.clearTimer("discover");
    if (this.stopping) return;
    this.discoverTimer = this.o.clock.setTimeout(() => {
      this.discoverTimer = undefined;
      const withBackend = this.o.clock.now() - this.lastBackendDiscovery >= this.o.backendDiscoverIntervalMs;
      this.discover(withBackend)
        .catch((err: Error) => this.o.log.error({ err: this.o.redact(err.message) }, "discovery failed"))
        .finally(() => {
          this.scheduleDiscovery();
          this.reschedule();
        });
    }, this.o.discoverIntervalMs);
  }

  private async discover(includeBackend: boolean): Promise<void> {
    let found: DiscoveredStack[];
    try {
      found = await this.o.source.discover({ includeBackend });
      if (includeBackend) this.lastBackendDiscovery = this.o.clock.now();
    } catch (err) {
      if (!includeBackend) throw err;
      // The backend may be unreachable: carry on with the files, report orphans later.
      this.o.log.warn({ err: this.o.redact((err as Error).message) }, "could not list backend stacks");
      found = await this.o.source.discover({ includeBackend: false });
    }
    const seen = new Set<string>();
    for (const d of found) {
      seen.add(d.name);
      this.apply(d);
    }
    for (const [name, e] of this.entries) {
      if (seen.has(name) || e.running) continue;
      this.entries.delete(name);
      this.removeFromQueue(e);
      this.o.onForget?.(name);
      this.o.log.info({ stack: name }, "stack file and backend stack gone: forgetting the stack");
    }
  }

  private apply(d: DiscoveredStack): void {
    const now = this.o.clock.now();
    let e = this.entries.get(d.name);
    const fileChanged = e !== undefined && e.stack.fileHash !== d.fileHash;
    if (!e) {
      const before = this.persisted.get(d.name);
      e = {
        stack: d,
        queued: false,
        rerun: false,
        status: {
          name: d.name,
          phase: "pending",
          mode: d.settings?.mode ?? "correct",
          intervalSeconds: d.settings?.intervalSeconds ?? 0,
          consecutiveFailures: 0,
          ...(before ?? {}),
          file: d.file,
          fileHash: d.fileHash,
        },
      };
      this.entries.set(d.name, e);
      const sameFile = before !== undefined && before.fileHash === d.fileHash;
      const keepParked = sameFile && (before.phase === "stalled" || before.phase === "needs-attention");
      if (!keepParked && before?.phase !== "running") this.setStatus(e, { phase: "pending" });
    } else {
      e.stack = d;
    }
    if (d.file === undefined) {
      if (e.status.phase !== "orphaned") {
        this.o.log.warn(
          { stack: d.name },
          "orphaned: the backend holds the stack but it has no stack file (never destroyed)",
        );
      }
      this.park(
        e,
        "orphaned",
        "in the backend without a stack file: nothing is destroyed; add g8s:decommission to remove it",
      );
      return;
    }
    if (d.error !== undefined) {
      if (e.status.phase !== "invalid" || fileChanged)
        this.o.log.warn({ stack: d.name, problems: d.error }, "invalid stack file");
      this.park(e, "invalid", d.error);
      return;
    }
    const settings = d.settings as NonNullable<DiscoveredStack["settings"]>;
    this.setStatus(e, {
      mode: settings.mode,
      intervalSeconds: settings.intervalSeconds,
      file: d.file,
      fileHash: d.fileHash,
    });
    if (settings.mode === "off" && !settings.decommission) {
      this.park(e, "off", "g8s:reconcile.mode is off");
      return;
    }
    if (fileChanged) {
      // A changed file is new desired state (or a fix): run now, forgetting past failures.
      this.o.log.info({ stack: d.name }, "stack file changed: reconciling now");
      this.setStatus(e, { consecutiveFailures: 0, phase: e.running ? e.status.phase : "pending", message: undefined });
      if (e.running) e.rerun = true;
      else if (!e.queued) e.nextRunAt = now;
      return;
    }
    if (PARKED.has(e.status.phase) || e.status.phase === "running") {
      // Leave parked phases parked; an entry restored as "running" is decided by recoverInterrupted.
      if (e.status.phase !== "invalid" && e.status.phase !== "off" && e.status.phase !== "orphaned") return;
      this.setStatus(e, { phase: "pending", message: undefined });
    }
    if (e.nextRunAt === undefined && !e.queued && !e.running) {
      // First sight: spread the stacks over the first jitter window instead of a thundering start.
      e.nextRunAt = now + Math.round(this.o.random() * this.o.jitter * settings.intervalSeconds * 1000);
    }
  }

  private park(e: Entry, phase: StackPhase, message: string): void {
    e.nextRunAt = undefined;
    this.removeFromQueue(e);
    this.setStatus(e, { phase, message, nextRunAt: undefined });
  }

  /** Stacks whose last recorded phase was running: the previous process died during an operation. */
  private async recoverInterrupted(): Promise<void> {
    for (const e of this.entries.values()) {
      if (e.status.phase !== "running") continue;
      let pending: Awaited<ReturnType<Engine["pendingOperations"]>> = [];
      try {
        pending = await this.o.engine.pendingOperations(e.stack.name);
      } catch (err) {
        this.o.log.warn(
          { stack: e.stack.name, err: this.o.redact((err as Error).message) },
          "could not read pending operations",
        );
      }
      // A pending create may have made a resource the state does not know: a person decides.
      // Pending updates and deletes are settled by the engine's next update.
      const creates = pending.filter((p) => p.op === "creating");
      if (creates.length > 0 && !this.o.clearPendingOperations) {
        const urns = creates.map((p) => p.urn);
        this.o.log.warn(
          { stack: e.stack.name, pending: urns },
          "interrupted update left pending creates: needs attention",
        );
        this.park(
          e,
          "needs-attention",
          `interrupted update left ${creates.length} pending create(s): ${urns.join(", ")}`,
        );
        continue;
      }
      if (creates.length > 0) {
        await this.o.engine.clearPendingOperations(e.stack.name);
        this.o.log.warn({ stack: e.stack.name, cleared: pending.length }, "cleared pending operations (as configured)");
      }
      this.setStatus(e, { phase: "pending", message: "previous run was interrupted: reconciling now" });
      e.nextRunAt = this.o.clock.now();
    }
  }

  // ---- running ----

  private enqueue(e: Entry): void {
    if (e.queued || e.running) return;
    e.queued = true;
    e.nextRunAt = undefined;
    this.queue.push(e);
    this.setStatus(e, { phase: "queued", nextRunAt: undefined });
    this.reportLoad();
  }

  private removeFromQueue(e: Entry): void {
    const i = this.queue.indexOf(e);
    if (i >= 0) this.queue.splice(i, 1);
    e.queued = false;
    this.reportLoad();
  }

  private pump(): void {
    while (!this.stopping && this.inFlight < this.o.concurrency && this.queue.length > 0) {
      const e = this.queue.shift() as Entry;
      e.queued = false;
      this.startRun(e);
    }
    this.reportLoad();
    if (this.inFlight === 0 && this.queue.length === 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  private startRun(e: Entry): void {
    const controller = new AbortController();
    // An engine that waits forever on an unreachable API must not hold the stack (and a worker)
    // forever: abort it, record a failure, back off.
    const timeout = this.o.clock.setTimeout(
      () => controller.abort(new PassTimeoutError(this.o.passTimeoutMs)),
      this.o.passTimeoutMs,
    );
    this.inFlight++;
    this.setStatus(e, { phase: "running" });
    void this.persist(); // a crash from here on is detected at the next start
    const stack = e.stack;
    const done = runPass(stack, {
      engine: this.o.engine,
      clock: this.o.clock,
      signal: controller.signal,
      redact: this.o.redact,
      checkPolicies: this.o.checkPolicies,
    })
      .then(async (record) => this.finish(e, record, record.outcome === "busy" ? await this.examineLock(e) : undefined))
      .catch((err: Error) => this.o.log.error({ stack: stack.name, err: this.o.redact(err.message) }, "pass crashed"))
      .finally(() => {
        this.o.clock.clearTimeout(timeout);
        e.running = undefined;
        this.inFlight--;
        if (e.rerun && !this.stopping && !PARKED.has(e.status.phase)) {
          e.rerun = false;
          this.enqueue(e);
        }
        void this.persist();
        this.pump();
        this.reschedule();
      });
    e.running = { controller, done };
  }

  private finish(e: Entry, record: PassRecord, lock?: LockExamination): void {
    const now = this.o.clock.now();
    if (record.outcome !== "busy" && e.status.busySince !== undefined) {
      this.setStatus(e, { busySince: undefined, lockOwner: undefined });
    }
    const at = new Date(now).toISOString();
    const intervalMs = (e.stack.settings?.intervalSeconds ?? e.status.intervalSeconds) * 1000;
    const nextInterval = () => now + Math.round(intervalMs * (1 + this.o.random() * this.o.jitter));
    const log = { stack: record.stack, outcome: record.outcome, durationMs: record.durationMs };
    const drift = record.drift.length > 0 ? { lastDrift: record, lastDriftAt: at } : {};
    switch (record.outcome) {
      case "in-sync":
      case "corrected":
      case "drifted":
      case "blocked":
        e.nextRunAt = nextInterval();
        this.setStatus(e, {
          phase: record.outcome === "in-sync" || record.outcome === "corrected" ? "in-sync" : "drifted",
          consecutiveFailures: 0,
          lastSuccessAt: at,
          message: record.outcome === "blocked" ? `up blocked: ${record.error}` : undefined,
          ...drift,
        });
        if (record.outcome === "in-sync") this.o.log.debug(log, "in sync");
        else this.o.log.info({ ...log, drift: record.drift.map((d) => `${d.op} ${d.urn}`) }, `drift ${record.outcome}`);
        break;
      case "busy": {
        const since = e.status.busySince ?? at;
        const busyMs = now - Date.parse(since);
        if (lock?.cleared) {
          // The lock's owner on this host is dead: the lock was removed, so run again at once.
          e.nextRunAt = now;
          this.setStatus(e, { phase: "pending", message: "a dead process's backend lock was cleared: retrying now" });
          break;
        }
        e.nextRunAt = now + this.o.busyRetryMs;
        const owner = lock?.holder;
        const held = owner ? `the backend lock is held by pid ${owner.pid} on ${owner.host || "an unknown host"}` : "";
        const stuck = busyMs >= this.o.busyStuckAfterMs;
        const message = stuck
          ? `busy for ${Math.round(busyMs / 1000)} s: ${held || "locked"}${
              owner?.owner === "other-host" ? " (another host: g8s cannot tell whether it still runs)" : ""
            }; retrying`
          : `busy: ${record.error ?? "locked"}; retrying`;
        this.setStatus(e, {
          phase: "pending",
          message,
          busySince: since,
          lockOwner: owner ? { pid: owner.pid, host: owner.host, since: owner.since, owner: owner.owner } : undefined,
        });
        if (stuck) this.o.log.warn({ ...log, busySince: since, lockOwner: owner }, "stack stuck on a backend lock");
        else this.o.log.info(log, "stack busy: retrying soon");
        break;
      }
      case "aborted":
        e.nextRunAt = undefined;
        this.setStatus(e, { phase: "pending", message: "aborted by shutdown" });
        this.o.log.info(log, "aborted");
        break;
      case "destroyed":
        this.park(e, "destroyed", "decommissioned: stack resources destroyed");
        this.o.log.warn(log, "decommissioned stack destroyed");
        break;
      case "skipped":
        this.park(e, "off", "g8s:reconcile.mode is off");
        break;
      case "invalid":
        this.park(e, "invalid", record.error ?? "invalid stack file");
        break;
      case "failed": {
        const failures = e.status.consecutiveFailures + 1;
        if (failures >= this.o.stallAfter) {
          this.park(
            e,
            "stalled",
            `stalled after ${failures} consecutive failures: change the stack file or request a run`,
          );
          this.setStatus(e, { consecutiveFailures: failures });
          this.o.log.error({ ...log, failures, err: record.error }, "stack stalled");
        } else {
          const delay = backoffDelay(failures, this.o.backoffBaseMs, this.o.backoffMaxMs);
          e.nextRunAt = now + delay;
          this.setStatus(e, { phase: "backoff", consecutiveFailures: failures, message: record.error });
          this.o.log.warn({ ...log, failures, retryInMs: delay, err: record.error }, "pass failed: backing off");
        }
        break;
      }
    }
    this.setStatus(e, {
      lastPass: record,
      nextRunAt: e.nextRunAt === undefined ? undefined : new Date(e.nextRunAt).toISOString(),
    });
    this.o.onPass?.(record);
    for (const listener of this.passListeners) listener(record);
  }

  // ---- backend locks ----

  /**
   * Removes locks whose owner on this host is dead (one stack's, or all at start), logs each
   * once (the dead owner as ownerPid: `pid` is this daemon's own), and ends the engine
   * processes the dead run left behind. Returns how many locks were cleared.
   */
  private async clearStaleLocks(stack?: string): Promise<number> {
    let cleared: Awaited<ReturnType<Engine["clearStaleLocks"]>> = [];
    try {
      cleared = await this.o.engine.clearStaleLocks(stack);
    } catch (err) {
      this.o.log.warn({ stack, err: this.o.redact((err as Error).message) }, "could not examine backend locks");
    }
    for (const lock of cleared) {
      this.o.log.warn(
        { stack: lock.stack, ownerPid: lock.pid, ownerHost: lock.host, ownerState: lock.owner, file: lock.file },
        "cleared a stale backend lock",
      );
    }
    if (stack === undefined || cleared.length > 0) {
      try {
        const ended = await this.o.engine.endOrphanedProcesses();
        if (ended.length > 0) this.o.log.warn({ pids: ended }, "ended engine processes left by a dead run");
      } catch (err) {
        this.o.log.warn({ err: this.o.redact((err as Error).message) }, "could not look for orphaned engine processes");
      }
    }
    return cleared.length;
  }

  /** After a busy pass: clear the lock if its owner is dead, else say who holds it. */
  private async examineLock(e: Entry): Promise<LockExamination> {
    if ((await this.clearStaleLocks(e.stack.name)) > 0) return { cleared: true };
    try {
      return { cleared: false, holder: await this.o.engine.lockHolder(e.stack.name) };
    } catch {
      return { cleared: false };
    }
  }

  // ---- timers and bookkeeping ----

  private reschedule(): void {
    if (this.stopping || this.oneShot) return;
    let next: number | undefined;
    for (const e of this.entries.values()) {
      if (e.nextRunAt !== undefined && !e.queued && !e.running && (next === undefined || e.nextRunAt < next)) {
        next = e.nextRunAt;
      }
    }
    if (next === this.wakeAt && this.wakeTimer !== undefined) return;
    this.clearTimer("wake");
    if (next === undefined) return;
    this.wakeAt = next;
    this.wakeTimer = this.o.clock.setTimeout(() => this.wake(), Math.max(0, next - this.o.clock.now()));
  }

  private wake(): void {
    this.wakeTimer = undefined;
    this.wakeAt = undefined;
    const now = this.o.clock.now();
    const due = [...this.entries.values()]
      .filter((e) => e.nextRunAt !== undefined && e.nextRunAt <= now && !e.queued && !e.running)
      .sort((a, b) => (a.nextRunAt as number) - (b.nextRunAt as number));
    for (const e of due) this.enqueue(e);
    this.pump();
    this.reschedule();
  }

  private clearTimer(which: "wake" | "discover"): void {
    const handle = which === "wake" ? this.wakeTimer : this.discoverTimer;
    if (handle !== undefined) this.o.clock.clearTimeout(handle);
    if (which === "wake") {
      this.wakeTimer = undefined;
      this.wakeAt = undefined;
    } else this.discoverTimer = undefined;
  }

  private setStatus(e: Entry, change: Partial<StackStatus>): void {
    const nextRunAt =
      "nextRunAt" in change
        ? change.nextRunAt
        : e.nextRunAt !== undefined
          ? new Date(e.nextRunAt).toISOString()
          : undefined;
    e.status = { ...e.status, ...change, nextRunAt };
    this.o.onStatus?.(e.status);
  }

  private reportLoad(): void {
    this.o.onLoad?.(this.inFlight, this.queue.length);
  }

  private drained(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private async persist(): Promise<void> {
    try {
      await this.o.store.save(this.list());
    } catch (err) {
      this.o.log.error({ err: this.o.redact((err as Error).message) }, "could not persist status");
    }
  }
}
