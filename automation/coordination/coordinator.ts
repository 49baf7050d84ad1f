/**
 * Replicas that share the stacks: each holds a lease it renews; stacks are divided among the
 * live leases by rendezvous hashing, so each has exactly one owner in every replica's view that
 * sees the same replicas. Where views differ (a replica joining, one dying) three rules keep two
 * replicas from running one stack at once:
 *
 * 1. **Publish before start.** A replica writes a stack into its lease's `busy` list and starts
 *    the operation only once that write succeeded; it takes it out when the operation ended.
 * 2. **Settle.** A replica starts a stack only when it owned it in every view of the last
 *    `settleMs` (two renew intervals) up to its last listing, and no other replica's lease lists
 *    it busy. A replica that has not yet seen a newcomer lists within `freshMs` (1.5 intervals)
 *    before it starts anything, so by then it sees the newcomer and no longer owns the stack.
 * 3. **Fence.** A replica whose own lease was not renewed for `leaseDuration - renewInterval`
 *    stops starting and aborts what runs (`onFence`), before any other replica can see its
 *    lease expire (others count from when they observed its last renewal, never from its clock).
 *    The stacks its lease listed busy wait `fenceGraceMs` more (the time an abort may take).
 *
 * The backend lock of each stack stays the second guard. Time is the injected clock's; a lease
 * store is anything that lists leases and writes one with optimistic concurrency (Kubernetes
 * `coordination.k8s.io` Leases, kubernetesLeases.ts; an in-memory one in tests).
 */
import { hostname } from "node:os";
import type { Clock, TimerHandle } from "../reconciler/clock";
import type { Log } from "../reconciler/scheduler";
import { ownerOf } from "./rendezvous";

/** A replica's lease as the store holds it. */
export interface LeaseRecord {
  readonly replica: string;
  /** The holder's clock at its last renewal (shown, never trusted: expiry counts on ours). */
  readonly renewTime: string;
  readonly durationMs: number;
  /** Stacks whose operation the holder runs or is about to start. */
  readonly busy: readonly string[];
  /** The host the replica runs on (a backend lock records its taker's host), when it said. */
  readonly host?: string;
  /** Changes with every write (Kubernetes: resourceVersion). */
  readonly version: string;
}

export type OwnLease = Omit<LeaseRecord, "version">;

export interface LeaseStore {
  list(): Promise<LeaseRecord[]>;
  /**
   * Writes this replica's lease: creates it when `version` is undefined, else replaces exactly
   * that version. "conflict" when it exists already (create) or changed meanwhile (replace).
   */
  write(lease: OwnLease, version: string | undefined): Promise<{ version: string } | "conflict">;
  /** Deletes this replica's lease (a clean stop: its stacks move at once). */
  release(replica: string, version: string): Promise<void>;
}

export interface CoordinatorOptions {
  readonly replica: string;
  /** The host this replica runs on, published in its lease. Default: os.hostname(). */
  readonly host?: string;
  readonly store: LeaseStore;
  readonly clock: Clock;
  readonly log: Log;
  /** Default 15 s. */
  readonly leaseDurationMs?: number;
  /** Default a third of the lease duration. */
  readonly renewIntervalMs?: number;
  /** How long an aborted operation may take to stop (the daemon's shutdown grace). Default 30 s. */
  readonly fenceGraceMs?: number;
  /** This replica's lease was not renewed in time: abort every operation now. */
  readonly onFence?: () => void;
  /** The set of live replicas changed (a pass may now be this replica's to run). */
  readonly onMembership?: (replicas: readonly string[]) => void;
  /** After every renew-and-list round: views settle with time, so answers may change. */
  readonly onTick?: () => void;
}

export type Verdict =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly reason: "no-lease" | "stale-view" | "not-owner" | "settling" | "busy-elsewhere";
      /** The replica that owns the stack (not-owner) or runs it (busy-elsewhere). */
      readonly replica?: string;
    };

/** One replica as this one sees it (status, `/api/replicas`). */
export interface ReplicaView {
  readonly replica: string;
  readonly live: boolean;
  /** When this replica last saw the lease change (ms on its clock). */
  readonly observedAt: number;
  readonly busy: readonly string[];
}

interface Observation {
  readonly version: string;
  readonly host?: string;
  readonly observedAt: number;
  readonly durationMs: number;
  readonly busy: readonly string[];
}

export const COORDINATION_DEFAULTS = { leaseDurationMs: 15_000, fenceGraceMs: 30_000 } as const;

export class Coordinator {
  readonly replica: string;
  readonly host: string;
  readonly leaseDurationMs: number;
  readonly renewIntervalMs: number;
  readonly settleMs: number;
  readonly freshMs: number;
  private readonly fenceGraceMs: number;
  private version: string | undefined;
  private lastRenewAt = -Infinity;
  private lastListAt = -Infinity;
  private readonly observed = new Map<string, Observation>();
  /** Live sets with the time each began, oldest first; the one before `lastListAt - settleMs` and after. */
  private views: Array<{ since: number; members: readonly string[] }> = [];
  private readonly busy = new Set<string>();
  private fenced = false;
  private timer?: TimerHandle;
  private stopped = false;
  private ticking?: Promise<void>;

  constructor(private readonly options: CoordinatorOptions) {
    this.replica = options.replica;
    this.host = options.host ?? hostname();
    this.leaseDurationMs = options.leaseDurationMs ?? COORDINATION_DEFAULTS.leaseDurationMs;
    this.renewIntervalMs = options.renewIntervalMs ?? Math.floor(this.leaseDurationMs / 3);
    this.fenceGraceMs = options.fenceGraceMs ?? COORDINATION_DEFAULTS.fenceGraceMs;
    this.settleMs = 2 * this.renewIntervalMs;
    this.freshMs = Math.floor(1.5 * this.renewIntervalMs);
    if (!(this.renewIntervalMs > 0) || 2 * this.renewIntervalMs >= this.leaseDurationMs) {
      throw new RangeError(
        `renew interval (${this.renewIntervalMs} ms) must be positive and under half the lease duration (${this.leaseDurationMs} ms)`,
      );
    }
  }

  /** Renews and lists now, then every renew interval until stop(). */
  async start(): Promise<void> {
    await this.tick();
    this.schedule();
  }

  /** Stops renewing and deletes the lease, so the others take its stacks at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    await this.ticking;
    if (this.version !== undefined) {
      await this.options.store
        .release(this.replica, this.version)
        .catch((err: Error) => this.options.log.warn({ err: err.message }, "could not delete the lease"));
      this.version = undefined;
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.options.clock.setTimeout(() => {
      this.ticking = this.tick().finally(() => this.schedule());
    }, this.renewIntervalMs);
  }

  /** One round: renew this replica's lease, then read every lease. Never throws. */
  async tick(): Promise<void> {
    await this.renew();
    try {
      const leases = await this.options.store.list();
      this.observe(leases, this.options.clock.now());
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, "could not list the leases");
    }
    this.checkFence();
    this.options.onTick?.();
  }

  private ownLease(): OwnLease {
    return {
      replica: this.replica,
      renewTime: new Date(this.options.clock.now()).toISOString(),
      durationMs: this.leaseDurationMs,
      busy: [...this.busy].sort(),
      host: this.host,
    };
  }

  /** Writes the lease with the current busy set; true when the store took it. */
  private async renew(): Promise<boolean> {
    const { store, clock, log } = this.options;
    const attemptAt = clock.now();
    try {
      let written = await store.write(this.ownLease(), this.version);
      if (written === "conflict") {
        // Created by an earlier run of this replica, or changed under us: take the version there is.
        const mine = (await store.list()).find((l) => l.replica === this.replica);
        written = await store.write(this.ownLease(), mine?.version);
      }
      if (written === "conflict") {
        log.warn({ replica: this.replica }, "lease changed while renewing it: retrying next round");
        this.version = undefined;
        return false;
      }
      this.version = written.version;
      // Counted from when the write was sent: the store may have taken it any time after.
      this.lastRenewAt = attemptAt;
      if (this.fenced) log.info({ replica: this.replica }, "lease renewed again: resuming");
      this.fenced = false;
      return true;
    } catch (err) {
      log.warn({ err: (err as Error).message }, "could not renew the lease");
      return false;
    }
  }

  private observe(leases: readonly LeaseRecord[], now: number): void {
    const seen = new Set<string>();
    for (const lease of leases) {
      if (lease.replica === this.replica) continue;
      seen.add(lease.replica);
      const before = this.observed.get(lease.replica);
      if (before?.version !== lease.version) {
        this.observed.set(lease.replica, {
          version: lease.version,
          observedAt: now,
          durationMs: lease.durationMs,
          busy: lease.busy,
          ...(lease.host !== undefined ? { host: lease.host } : {}),
        });
      }
    }
    for (const replica of [...this.observed.keys()]) if (!seen.has(replica)) this.observed.delete(replica);
    this.lastListAt = now;
    this.noteView(now);
  }

  private checkFence(): void {
    const now = this.options.clock.now();
    if (!this.fenced && now - this.lastRenewAt >= this.leaseDurationMs - this.renewIntervalMs) {
      this.fenced = true;
      // Others may take its stacks meanwhile: once renewed, it settles afresh like a newcomer.
      this.views = [];
      this.options.log.error(
        { replica: this.replica, lastRenewedMsAgo: Number.isFinite(this.lastRenewAt) ? now - this.lastRenewAt : null },
        "lease not renewed in time: aborting every operation and starting none until it is",
      );
      this.options.onFence?.();
    }
  }

  /** True while this replica's lease is valid as far as any other replica can tell. */
  holdsLease(now = this.options.clock.now()): boolean {
    return !this.fenced && now - this.lastRenewAt < this.leaseDurationMs - this.renewIntervalMs;
  }

  /** The live replicas now, sorted: this one while it holds its lease, others until their lease expires. */
  live(now = this.options.clock.now()): string[] {
    const members = [...this.observed.entries()]
      .filter(([, o]) => now - o.observedAt < o.durationMs)
      .map(([replica]) => replica);
    if (this.holdsLease(now)) members.push(this.replica);
    return members.sort();
  }

  private noteView(now: number): void {
    const members = this.live(now);
    const last = this.views.at(-1);
    if (last === undefined || last.members.join("\0") !== members.join("\0")) {
      this.views.push({ since: now, members });
      this.options.onMembership?.(members);
    }
    // Keep the view in force at the start of the settle window and every later one.
    const windowStart = this.lastListAt - this.settleMs;
    while (this.views.length > 1 && this.views[1].since <= windowStart) this.views.shift();
  }

  /** The owner of `stack` in this replica's current view. */
  owner(stack: string): string | undefined {
    return ownerOf(stack, this.live());
  }

  /** Whether this replica may start an operation on `stack` now, and if not, why. */
  mayStart(stack: string): Verdict {
    const now = this.options.clock.now();
    if (!this.holdsLease(now)) return { ok: false, reason: "no-lease" };
    if (now - this.lastListAt > this.freshMs) return { ok: false, reason: "stale-view" };
    this.noteView(now);
    const owner = this.owner(stack);
    if (owner !== this.replica) return { ok: false, reason: "not-owner", ...(owner ? { replica: owner } : {}) };
    const windowStart = this.lastListAt - this.settleMs;
    const settled =
      this.views.length > 0 &&
      this.views[0].since <= windowStart &&
      this.views.every((v) => ownerOf(stack, v.members) === this.replica);
    if (!settled) return { ok: false, reason: "settling" };
    for (const [replica, o] of this.observed) {
      // A dead replica's busy stacks wait until its fence has surely stopped them.
      if (o.busy.includes(stack) && now - o.observedAt < o.durationMs + this.fenceGraceMs) {
        return { ok: false, reason: "busy-elsewhere", replica };
      }
    }
    return { ok: true };
  }

  /**
   * Whether `host` ran only replicas that are surely stopped: each lease naming it expired, and
   * its fence grace passed, as this replica observed them. A backend lock taken on such a host
   * is a dead replica's (never this replica's own host, nor a host no lease named).
   */
  hostGone(host: string): boolean {
    if (host === this.host) return false;
    const now = this.options.clock.now();
    let named = false;
    for (const o of this.observed.values()) {
      if (o.host !== host) continue;
      if (now - o.observedAt < o.durationMs + this.fenceGraceMs) return false;
      named = true;
    }
    return named;
  }

  /**
   * Claims `stack` for an operation: checks mayStart, publishes it in the lease's busy list and
   * succeeds only once the store took that. Call end() when the operation is over.
   */
  async begin(stack: string): Promise<Verdict> {
    const verdict = this.mayStart(stack);
    if (!verdict.ok) return verdict;
    this.busy.add(stack);
    if (!(await this.renew())) {
      this.busy.delete(stack);
      return { ok: false, reason: "no-lease" };
    }
    // The write may have taken long: the view must still say so.
    const after = this.mayStart(stack);
    if (!after.ok) this.busy.delete(stack);
    return after;
  }

  /** The operation on `stack` ended: it leaves the busy list at the next renewal. */
  end(stack: string): void {
    this.busy.delete(stack);
  }

  /** Every replica this one knows of, itself first. */
  replicas(): ReplicaView[] {
    const now = this.options.clock.now();
    return [
      {
        replica: this.replica,
        live: this.holdsLease(now),
        observedAt: this.lastRenewAt,
        busy: [...this.busy].sort(),
      },
      ...[...this.observed.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([replica, o]) => ({
          replica,
          live: now - o.observedAt < o.durationMs,
          observedAt: o.observedAt,
          busy: o.busy,
        })),
    ];
  }
}
