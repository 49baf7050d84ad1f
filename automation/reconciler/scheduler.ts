/**
 * The reconciler's scheduler: every stack on its own interval with jitter, a bounded worker
 * pool, never two operations on one stack, exponential backoff and stall on failures, an
 * immediate run when a stack file changes, status persisted across restarts, and a shutdown
 * that aborts running operations and waits for them. What each event does to a stack's phase
 * is decided by the pure transitions of lifecycle.ts; this class sequences the I/O around them.
 */
import { SCHEDULER_DEFAULTS } from "../config";
import type { Clock, TimerHandle } from "./clock";
import { sleep } from "./clock";
import type { DiscoveredStack, StackSource } from "./discovery";
import {
  ACTIVE,
  changedWhileRenewing,
  discovered,
  enqueued,
  interrupted,
  isDue,
  nextRunAt,
  NOTHING_TO_RUN,
  ownedElsewhere,
  passEnded,
  progressed,
  runRequested,
  changeNoticed,
  started,
  stopped,
  type LockExamination,
  type StackState,
} from "./lifecycle";
import { correctsAtOnce, runPass, type PassContext } from "./pass";
import { renewalDueAt, renewalEnded, runRenewal } from "./renewal";
import type { StatusStore } from "./status";
import { PassTimeoutError, type Engine, type PassRecord, type RenewalRecord, type StackStatus } from "./types";

/** The part of a pino logger the scheduler uses. */
export interface Log {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

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
  readonly renewalRetryBaseMs?: number;
  readonly renewalRetryMaxMs?: number;
  readonly discoverIntervalMs?: number;
  readonly backendDiscoverIntervalMs?: number;
  /** Policy check before every up (see pass.ts). */
  readonly checkPolicies?: PassContext["checkPolicies"];
  /** Drains the node pools an update removes, before it (see pass.ts). */
  readonly drainPools?: PassContext["drainPools"];
  /** Restarts KVM nodes behind their pod template after the update, each drained first (see pass.ts). */
  readonly roll?: PassContext["roll"];
  /** Rolls a guest cluster to its file's Kubernetes version after the update (see pass.ts). */
  readonly upgrade?: PassContext["upgrade"];
  /** Drop pending operations left by a crash instead of stopping at needs-attention. */
  readonly clearPendingOperations?: boolean;
  /** Called after every pass and every status change (metrics). */
  readonly onPass?: (record: PassRecord) => void;
  /** Called after every renewal, its own or a pass's (metrics). */
  readonly onRenewal?: (record: RenewalRecord) => void;
  readonly onStatus?: (status: StackStatus) => void;
  readonly onLoad?: (inFlight: number, queueDepth: number) => void;
  /** A stack is gone from files and backend (its metrics series should go too). */
  readonly onForget?: (name: string) => void;
  /**
   * Replicas sharing the stacks (automation/coordination): a stack runs here only when the gate
   * lets this replica start it, claimed with `begin` before the operation and released with `end`.
   * Call `gateChanged()` when its answers may have changed. Default: every stack runs here.
   */
  readonly gate?: Gate;
}

/** What the scheduler asks of a coordinator (automation/coordination/coordinator.ts). */
export interface Gate {
  readonly replica: string;
  mayStart(stack: string): { readonly ok: boolean; readonly reason?: string; readonly replica?: string };
  begin(stack: string): Promise<{ readonly ok: boolean; readonly reason?: string; readonly replica?: string }>;
  end(stack: string): void;
  owner(stack: string): string | undefined;
}

type Hooks =
  | "onPass"
  | "onRenewal"
  | "onStatus"
  | "onLoad"
  | "onForget"
  | "checkPolicies"
  | "drainPools"
  | "roll"
  | "upgrade"
  | "gate";
type ResolvedOptions = Required<Omit<SchedulerOptions, Hooks>> &
  Pick<SchedulerOptions, Hooks> & { readonly shutdownGraceMs: number };

interface Entry {
  state: StackState;
  /** The operation running now (a pass, or a renewal alone): its abort handle and its end. */
  operation?: { controller: AbortController; done: Promise<void>; kind: "pass" | "renewal" };
  /** When its last operation ended (epoch ms): changes seen just after are still its own. */
  lastOperationEndAt?: number;
}

/**
 * How long after an operation a change nobody can be named for (a deletion) is still taken as
 * the operation's own: watch events arrive a little after the change.
 */
export const OWN_CHANGE_WINDOW_MS = 3000;

/** What became of a noticed change. */
export type ChangeAnswer = "run" | "runs-again" | "queued" | "unknown-stack" | "parked" | "own-operation";

export type RunRequest =
  | { accepted: true; status: StackStatus }
  | { accepted: false; reason: "unknown-stack" | "not-runnable" | "shutting-down"; status?: StackStatus };

export class Scheduler {
  private readonly entries = new Map<string, Entry>();
  /** Stacks in phase `queued`, oldest first: kept in step with the phase by `commit`. */
  private readonly queue: Entry[] = [];
  /** Stacks whose renewal is due while no pass is: they go before the queue (expiry is an outage). */
  private readonly renewals: Entry[] = [];
  private readonly options: ResolvedOptions;
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
    this.options = {
      random: Math.random,
      redact: (t: string) => t,
      clearPendingOperations: false,
      ...SCHEDULER_DEFAULTS,
      ...given,
    };
    if (!Number.isInteger(this.options.concurrency) || this.options.concurrency < 1) {
      throw new RangeError(`concurrency must be a whole number ≥ 1 (got ${this.options.concurrency})`);
    }
  }

  // ---- queries (HTTP API, CLI) ----

  isReady(): boolean {
    return this.ready;
  }

  list(): StackStatus[] {
    return [...this.entries.values()].map((e) => this.shown(e)).sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): StackStatus | undefined {
    const e = this.entries.get(name);
    return e === undefined ? undefined : this.shown(e);
  }

  /** A stack's status, with its owner when replicas share the stacks. */
  private shown(e: Entry): StackStatus {
    const { gate } = this.options;
    if (gate === undefined) return e.state.status;
    const owner = gate.owner(e.state.stack.name);
    return owner === undefined ? e.state.status : { ...e.state.status, owner };
  }

  /** Whether this replica may start an operation on the stack now (always, without a gate). */
  private startableHere(e: Entry): boolean {
    return this.options.gate?.mayStart(e.state.stack.name).ok ?? true;
  }

  /**
   * The gate's answers may have changed (a replica joined or left, a view settled): stacks queued
   * here that another replica owns leave the queue, and stacks due here start.
   */
  gateChanged(): void {
    const { gate } = this.options;
    if (gate === undefined || this.stopping || !this.started) return;
    const now = this.options.clock.now();
    for (const e of [...this.queue]) {
      const owner = gate.owner(e.state.stack.name);
      if (!e.operation && owner !== gate.replica) this.commit(e, ownedElsewhere(e.state, elsewhere(owner), now));
    }
    for (const e of [...this.renewals]) {
      if (gate.owner(e.state.stack.name) !== gate.replica) this.renewals.splice(this.renewals.indexOf(e), 1);
    }
    this.wake();
  }

  /** Aborts every running operation (this replica lost its lease); the stacks stay tracked. */
  abortRunning(reason: string): void {
    const running = [...this.entries.values()].filter((e) => e.operation);
    for (const e of running) e.operation?.controller.abort(new Error(reason));
    if (running.length > 0)
      this.options.log.warn({ stacks: running.map((e) => e.state.stack.name), reason }, "aborting running operations");
  }

  load(): { inFlight: number; queueDepth: number } {
    return { inFlight: this.inFlight, queueDepth: this.queue.length };
  }

  // ---- lifecycle ----

  /** Restores status, clears stale locks, discovers stacks, and starts scheduling. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.persisted = await this.options.store.load();
    await this.clearStaleLocks();
    await this.discover(true);
    await this.recoverInterrupted();
    this.ready = true;
    this.scheduleDiscovery();
    this.reschedule();
    await this.persist();
  }

  /** Stops scheduling, aborts running operations, waits up to graceMs for them, persists. Idempotent. */
  async stop(graceMs: number = SCHEDULER_DEFAULTS.shutdownGraceMs): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.clearTimer("wake");
    this.clearTimer("discover");
    for (const e of [...this.queue]) this.commit(e, stopped(e.state));
    this.renewals.length = 0;
    const running = [...this.entries.values()].filter((e) => e.operation);
    for (const e of running) e.operation?.controller.abort(new Error("reconciler shutting down"));
    if (running.length > 0) {
      this.options.log.info({ stacks: running.map((e) => e.state.stack.name), graceMs }, "aborting running operations");
      const grace = new AbortController();
      await Promise.race([
        Promise.all(running.map((e) => e.operation?.done)),
        sleep(this.options.clock, graceMs, grace.signal).catch(() => undefined),
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
    this.persisted = await this.options.store.load();
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
      if (!NOTHING_TO_RUN.has(e.state.status.phase)) this.enqueue(e);
    }
    this.pump();
    await this.drained();
    this.passListeners.delete(collect);
    await this.persist();
    return records.sort((a, b) => a.stack.localeCompare(b.stack));
  }

  /** Re-reads stack files now (a new commit was checked out), outside the discovery timer. */
  async refresh(): Promise<void> {
    // New code may mean new desired state under the same stack files: preview before correcting.
    for (const e of this.entries.values()) this.commit(e, { ...e.state, judged: undefined });
    await this.discover(false);
    this.reschedule();
  }

  /** Queues an immediate run; un-stalls a stalled stack and clears needs-attention. */
  requestRun(name: string): RunRequest {
    const e = this.entries.get(name);
    if (!e) return { accepted: false, reason: "unknown-stack" };
    if (this.stopping) return { accepted: false, reason: "shutting-down", status: e.state.status };
    const answer = runRequested(e.state);
    if (!answer.accepted) return { accepted: false, reason: answer.reason, status: e.state.status };
    this.commit(e, answer.state);
    this.pump();
    this.reschedule();
    this.options.log.info({ stack: name }, "run requested");
    return { accepted: true, status: e.state.status };
  }

  /**
   * A change to what the stack manages was noticed (automation/events): runs a pass now, ahead
   * of routine checks. `attributed` says someone other than g8s made it; one that is not (a
   * deletion) is dropped while an operation of this daemon runs on the stack or just ended,
   * since that operation may well have made it.
   */
  noticeChange(name: string, attributed: boolean, what: readonly string[]): ChangeAnswer {
    const e = this.entries.get(name);
    if (!e || this.stopping) return "unknown-stack";
    const now = this.options.clock.now();
    if (!attributed && (e.operation || now - (e.lastOperationEndAt ?? -Infinity) < OWN_CHANGE_WINDOW_MS)) {
      this.options.log.debug({ stack: name, what }, "change during g8s's own operation: not a trigger");
      return "own-operation";
    }
    const before = e.state;
    const next = changeNoticed(before, now);
    if (next === undefined) return "parked";
    this.commit(e, next);
    this.pump();
    this.reschedule();
    this.options.log.info({ stack: name, what }, "change noticed: reconciling now");
    const { phase } = before.status;
    return phase === "running" ? "runs-again" : phase === "queued" ? "queued" : "run";
  }

  // ---- discovery ----

  private scheduleDiscovery(): void {
    this.clearTimer("discover");
    if (this.stopping) return;
    this.discoverTimer = this.options.clock.setTimeout(() => {
      this.discoverTimer = undefined;
      const withBackend =
        this.options.clock.now() - this.lastBackendDiscovery >= this.options.backendDiscoverIntervalMs;
      this.discover(withBackend)
        .catch((err: Error) => this.options.log.error({ err: this.options.redact(err.message) }, "discovery failed"))
        .finally(() => {
          this.scheduleDiscovery();
          this.reschedule();
        });
    }, this.options.discoverIntervalMs);
  }

  private async discover(includeBackend: boolean): Promise<void> {
    let found: DiscoveredStack[];
    try {
      found = await this.options.source.discover({ includeBackend });
      if (includeBackend) this.lastBackendDiscovery = this.options.clock.now();
    } catch (err) {
      if (!includeBackend) throw err;
      // The backend may be unreachable: carry on with the files, report orphans later.
      this.options.log.warn({ err: this.options.redact((err as Error).message) }, "could not list backend stacks");
      found = await this.options.source.discover({ includeBackend: false });
    }
    const seen = new Set<string>();
    for (const d of found) {
      seen.add(d.name);
      this.track(d);
    }
    for (const [name, e] of this.entries) {
      if (seen.has(name) || e.operation) continue;
      this.entries.delete(name);
      this.dequeue(e);
      if (this.renewals.includes(e)) this.renewals.splice(this.renewals.indexOf(e), 1);
      this.options.onForget?.(name);
      this.options.log.info({ stack: name }, "stack file and backend stack gone: forgetting the stack");
    }
  }

  /** Takes in what discovery found of one stack (see `discovered`), and says what changed. */
  private track(d: DiscoveredStack): void {
    let e = this.entries.get(d.name);
    const before = e?.state;
    const next = discovered(before, d, {
      now: this.options.clock.now(),
      restored: this.persisted.get(d.name),
      jitter: () => this.options.random() * this.options.jitter,
      inFlight: e?.operation !== undefined,
    });
    if (!e) {
      e = { state: next };
      this.entries.set(d.name, e);
      this.options.onStatus?.(next.status);
    } else this.commit(e, next);
    const was = before?.status.phase;
    const fileChanged = before !== undefined && before.stack.fileHash !== d.fileHash;
    const { phase } = next.status;
    if (phase === "orphaned" && was !== "orphaned") {
      this.options.log.warn(
        { stack: d.name },
        "orphaned: the backend holds the stack but it has no stack file (never destroyed)",
      );
    } else if (phase === "invalid" && (was !== "invalid" || fileChanged)) {
      this.options.log.warn({ stack: d.name, problems: d.error }, "invalid stack file");
    } else if (fileChanged && phase !== "off") {
      this.options.log.info({ stack: d.name }, "stack file changed: reconciling now");
    }
  }

  /** Stacks whose last recorded phase was running: the previous process died during an operation. */
  private async recoverInterrupted(): Promise<void> {
    for (const e of this.entries.values()) {
      if (e.state.status.phase !== "running" || e.operation) continue;
      const stack = e.state.stack.name;
      let pending: Awaited<ReturnType<Engine["pendingOperations"]>> = [];
      try {
        pending = await this.options.engine.pendingOperations(stack);
      } catch (err) {
        this.options.log.warn(
          { stack, err: this.options.redact((err as Error).message) },
          "could not read pending operations",
        );
      }
      const decision = interrupted(e.state, pending, {
        now: this.options.clock.now(),
        clearPendingOperations: this.options.clearPendingOperations,
      });
      if (decision.state.status.phase === "needs-attention") {
        const urns = pending.filter((p) => p.op === "creating").map((p) => p.urn);
        this.options.log.warn({ stack, pending: urns }, "interrupted update left pending creates: needs attention");
      }
      if (decision.clearPending) {
        await this.options.engine.clearPendingOperations(stack);
        this.options.log.warn({ stack, cleared: pending.length }, "cleared pending operations (as configured)");
      }
      this.commit(e, decision.state);
    }
  }

  // ---- running ----

  private enqueue(e: Entry): void {
    if (e.state.status.phase === "queued" || e.operation) return;
    this.commit(e, enqueued(e.state));
  }

  private pump(): void {
    while (!this.stopping && this.inFlight < this.options.concurrency) {
      const renewal = this.renewals.shift();
      if (renewal !== undefined) {
        // A pass queued meanwhile renews first itself; one running already did.
        if (!renewal.operation && renewal.state.status.phase !== "queued" && this.startableHere(renewal))
          this.startRenewal(renewal);
        continue;
      }
      // Never two operations on one stack: a stack still renewing keeps its place in the queue.
      const next = this.queue.find((e) => !e.operation && this.startableHere(e));
      if (next === undefined) break;
      this.startRun(next);
    }
    this.reportLoad();
    if (this.inFlight === 0 && this.queue.length === 0 && this.renewals.length === 0)
      for (const w of this.drainWaiters.splice(0)) w();
  }

  /** A stack's renewal alone, whatever its phase: the phase stays, only certificates and renewal change. */
  private startRenewal(e: Entry): void {
    const controller = new AbortController();
    const { clock, passTimeoutMs, gate } = this.options;
    const timeout = clock.setTimeout(() => controller.abort(new PassTimeoutError(passTimeoutMs)), passTimeoutMs);
    this.inFlight++;
    const stack = e.state.stack.name;
    let claimed = false;
    const renew = async () => {
      claimed = true;
      const record = await runRenewal(stack, {
        engine: this.options.engine,
        clock,
        signal: controller.signal,
        redact: this.options.redact,
      });
      this.renewalFinished(e, record);
    };
    // Without a gate the renewal starts in this very turn; with one, once claimed (else wake() asks again).
    const done = (gate === undefined ? renew() : this.claim(stack).then((ok) => (ok ? renew() : undefined)))
      .catch((err: Error) =>
        this.options.log.error({ stack, err: this.options.redact(err.message) }, "renewal crashed"),
      )
      .finally(() => {
        clock.clearTimeout(timeout);
        if (claimed) gate?.end(stack);
        e.operation = undefined;
        e.lastOperationEndAt = clock.now();
        this.inFlight--;
        // A stack file changed while it renewed: run now, as discovery would have had it been idle.
        if (e.state.runAgain) this.commit(e, changedWhileRenewing(e.state, clock.now()));
        void this.persist();
        this.pump();
        this.reschedule();
      });
    e.operation = { controller, done, kind: "renewal" };
  }

  /** Takes in a renewal's record: status, log line, metrics. */
  private renewalFinished(e: Entry, record: RenewalRecord): void {
    const now = this.options.clock.now();
    const retry = { baseMs: this.options.renewalRetryBaseMs, maxMs: this.options.renewalRetryMaxMs };
    this.commit(e, { ...e.state, status: renewalEnded(e.state.status, record, now, retry) });
    const log = { stack: record.stack, outcome: record.outcome, durationMs: record.durationMs };
    switch (record.outcome) {
      case "renewed":
        this.options.log.info({ ...log, certificates: record.renewed }, "certificates renewed");
        break;
      case "failed":
        this.options.log.error(
          {
            ...log,
            due: record.due,
            failures: e.state.status.renewal?.consecutiveFailures,
            retryAt: e.state.status.renewal?.nextAttemptAt,
            err: record.error,
          },
          "certificate renewal failed",
        );
        break;
      case "busy":
        this.options.log.info(log, "certificate renewal: stack busy, retrying soon");
        break;
      case "not-due":
      case "aborted":
        this.options.log.debug(log, `certificate renewal ${record.outcome}`);
    }
    this.options.onRenewal?.(record);
  }

  private startRun(e: Entry): void {
    const controller = new AbortController();
    const { clock, passTimeoutMs, gate } = this.options;
    // An engine that waits forever on an unreachable API must not hold the stack (and a worker)
    // forever: abort it, record a failure, back off.
    const timeout = clock.setTimeout(() => controller.abort(new PassTimeoutError(passTimeoutMs)), passTimeoutMs);
    this.inFlight++;
    const stack = e.state.stack;
    let claimed = false;
    const run = async () => {
      claimed = true;
      const atOnce = correctsAtOnce(stack, e.state);
      this.commit(e, started(e.state));
      void this.persist(); // a crash from here on is detected at the next start
      const record = await runPass(stack, {
        engine: this.options.engine,
        clock,
        signal: controller.signal,
        redact: this.options.redact,
        checkPolicies: this.options.checkPolicies,
        drainPools: this.options.drainPools,
        roll: this.options.roll,
        upgrade: this.options.upgrade,
        progress: (line) => this.commit(e, progressed(e.state, line)),
        atOnce,
      });
      this.finish(e, record, record.outcome === "busy" ? await this.examineLock(e) : undefined);
    };
    const notHere = () =>
      this.commit(
        e,
        ownedElsewhere(e.state, elsewhere(gate?.owner(stack.name)), clock.now() + this.options.busyRetryMs),
      );
    // Without a gate the pass starts in this very turn; with one, once this replica claimed it.
    const done = (gate === undefined ? run() : this.claim(stack.name).then((ok) => (ok ? run() : notHere())))
      .catch((err: Error) =>
        this.options.log.error({ stack: stack.name, err: this.options.redact(err.message) }, "pass crashed"),
      )
      .finally(() => {
        clock.clearTimeout(timeout);
        if (claimed) gate?.end(stack.name);
        e.operation = undefined;
        e.lastOperationEndAt = clock.now();
        this.inFlight--;
        void this.persist();
        this.pump();
        this.reschedule();
      });
    e.operation = { controller, done, kind: "pass" };
  }

  /**
   * Claims the stack for an operation here: at once without a gate; with one, once the replica's
   * lease says it runs the stack (false: another replica does, or this one may not start yet).
   */
  private async claim(stack: string): Promise<boolean> {
    const { gate } = this.options;
    if (gate === undefined) return true;
    const verdict = await gate.begin(stack);
    if (!verdict.ok)
      this.options.log.debug({ stack, reason: verdict.reason, replica: verdict.replica }, "not started here");
    return verdict.ok;
  }

  private finish(e: Entry, record: PassRecord, lock?: LockExamination): void {
    const now = this.options.clock.now();
    let next = passEnded(e.state, record, {
      now,
      policy: this.options,
      jitter: () => this.options.random() * this.options.jitter,
      lock,
    });
    if (record.certificates) next = { ...next, status: { ...next.status, certificates: record.certificates } };
    this.commit(e, next);
    if (record.renewal) this.renewalFinished(e, record.renewal);
    this.logPass(e.state.status, record, now, lock);
    this.options.onPass?.(record);
    for (const listener of this.passListeners) listener(record);
  }

  private logPass(status: StackStatus, record: PassRecord, now: number, lock?: LockExamination): void {
    const log = { stack: record.stack, outcome: record.outcome, durationMs: record.durationMs };
    const failures = status.consecutiveFailures;
    switch (record.outcome) {
      case "in-sync":
        return this.options.log.debug(log, "in sync");
      case "corrected":
      case "drifted":
      case "blocked":
        return this.options.log.info(
          { ...log, drift: record.drift.map((d) => `${d.op} ${d.urn}`) },
          `drift ${record.outcome}`,
        );
      case "busy":
        if (lock?.cleared) return; // logged as a cleared lock; the pass runs again at once
        if (now - Date.parse(status.busySince ?? "") >= this.options.busyStuckAfterMs) {
          return this.options.log.warn(
            { ...log, busySince: status.busySince, lockOwner: status.lockOwner },
            "stack stuck on a backend lock",
          );
        }
        return this.options.log.info(log, "stack busy: retrying soon");
      case "aborted":
        return this.options.log.info(log, "aborted");
      case "destroyed":
        return this.options.log.warn(log, "decommissioned stack destroyed");
      case "failed":
        if (status.phase === "stalled")
          return this.options.log.error({ ...log, failures, err: record.error }, "stack stalled");
        return this.options.log.warn(
          { ...log, failures, retryInMs: (nextRunAt(status) ?? now) - now, err: record.error },
          "pass failed: backing off",
        );
      case "skipped":
      case "invalid":
        return;
    }
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
      cleared = await this.options.engine.clearStaleLocks(stack);
    } catch (err) {
      this.options.log.warn(
        { stack, err: this.options.redact((err as Error).message) },
        "could not examine backend locks",
      );
    }
    for (const lock of cleared) {
      this.options.log.warn(
        { stack: lock.stack, ownerPid: lock.pid, ownerHost: lock.host, ownerState: lock.owner, file: lock.file },
        "cleared a stale backend lock",
      );
    }
    if (stack === undefined || cleared.length > 0) {
      try {
        const ended = await this.options.engine.endOrphanedProcesses();
        if (ended.length > 0) this.options.log.warn({ pids: ended }, "ended engine processes left by a dead run");
      } catch (err) {
        this.options.log.warn(
          { err: this.options.redact((err as Error).message) },
          "could not look for orphaned engine processes",
        );
      }
    }
    return cleared.length;
  }

  /** After a busy pass: clear the lock if its owner is dead, else say who holds it. */
  private async examineLock(e: Entry): Promise<LockExamination> {
    if ((await this.clearStaleLocks(e.state.stack.name)) > 0) return { cleared: true };
    try {
      return { cleared: false, holder: await this.options.engine.lockHolder(e.state.stack.name) };
    } catch {
      return { cleared: false };
    }
  }

  // ---- timers and bookkeeping ----

  private reschedule(): void {
    if (this.stopping || this.oneShot) return;
    let next: number | undefined;
    const now = this.options.clock.now();
    for (const e of this.entries.values()) {
      if (ACTIVE.has(e.state.status.phase) || e.operation || this.renewals.includes(e)) continue;
      // Another replica's (or not yet settled here): gateChanged() wakes it when that changes.
      if (!this.startableHere(e)) continue;
      for (const at of [nextRunAt(e.state.status), renewalDueAt(e.state.status, now)]) {
        if (at !== undefined && (next === undefined || at < next)) next = at;
      }
    }
    if (next === this.wakeAt && this.wakeTimer !== undefined) return;
    this.clearTimer("wake");
    if (next === undefined) return;
    this.wakeAt = next;
    this.wakeTimer = this.options.clock.setTimeout(() => this.wake(), Math.max(0, next - this.options.clock.now()));
  }

  private wake(): void {
    this.wakeTimer = undefined;
    this.wakeAt = undefined;
    const now = this.options.clock.now();
    const due = [...this.entries.values()]
      .filter((e) => isDue(e.state.status, now) && !e.operation && this.startableHere(e))
      .sort(
        (a, b) =>
          Number(b.state.urgent) - Number(a.state.urgent) ||
          (nextRunAt(a.state.status) as number) - (nextRunAt(b.state.status) as number),
      );
    for (const e of due) this.enqueue(e);
    // Renewal due where no pass is: whatever the phase (off, stalled, drifted, waiting out a backoff).
    for (const e of this.entries.values()) {
      if (e.operation || ACTIVE.has(e.state.status.phase) || this.renewals.includes(e)) continue;
      if (!this.startableHere(e)) continue;
      const at = renewalDueAt(e.state.status, now);
      if (at !== undefined && at <= now) this.renewals.push(e);
    }
    this.pump();
    this.reschedule();
  }

  private clearTimer(which: "wake" | "discover"): void {
    const handle = which === "wake" ? this.wakeTimer : this.discoverTimer;
    if (handle !== undefined) this.options.clock.clearTimeout(handle);
    if (which === "wake") {
      this.wakeTimer = undefined;
      this.wakeAt = undefined;
    } else this.discoverTimer = undefined;
  }

  /** Moves a stack to its next state; the queue follows the phase (in while queued, out otherwise). */
  private commit(e: Entry, next: StackState): void {
    const before = e.state;
    e.state = next;
    const queued = next.status.phase === "queued";
    if (queued && (!this.queue.includes(e) || (next.urgent && !before.urgent))) {
      this.dequeue(e);
      // Urgent runs go behind the urgent ones already waiting, ahead of every routine check.
      const routine = next.urgent ? this.queue.findIndex((q) => !q.state.urgent) : -1;
      this.queue.splice(routine < 0 ? this.queue.length : routine, 0, e);
      this.reportLoad();
    } else if (!queued) this.dequeue(e);
    if (next.status !== before.status) this.options.onStatus?.(next.status);
  }

  private dequeue(e: Entry): void {
    const i = this.queue.indexOf(e);
    if (i < 0) return;
    this.queue.splice(i, 1);
    this.reportLoad();
  }

  private reportLoad(): void {
    this.options.onLoad?.(this.inFlight, this.queue.length);
  }

  private drained(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private async persist(): Promise<void> {
    try {
      await this.options.store.save(this.list());
    } catch (err) {
      this.options.log.error({ err: this.options.redact((err as Error).message) }, "could not persist status");
    }
  }
}

/** The message of a stack that another replica runs (or none does). */
function elsewhere(owner: string | undefined): string {
  return owner === undefined ? "no live replica holds it" : `run by replica ${owner}`;
}
