/**
 * Stack status every replica can read. Each replica publishes the status of every stack it
 * tracks on a board shared by all (a compressed ConfigMap per replica on Kubernetes:
 * kubernetesStatus.ts), throttled; each reads the others' and shows, per stack, the newest
 * one: the owner's last pass, whichever replica is asked. A replica that starts on an empty
 * disk (a new pod) restores the stacks' history from the board.
 */
import type { Clock, TimerHandle } from "../reconciler/clock";
import type { StatusStore } from "../reconciler/status";
import type { StackPhase, StackStatus } from "../reconciler/types";

/** What one replica published: the status of every stack it tracks. */
export interface PublishedStatus {
  readonly replica: string;
  readonly savedAt: string;
  readonly stacks: readonly StackStatus[];
}

/** Where replicas publish their status and read everyone's. */
export interface StatusBoard {
  publish(doc: PublishedStatus): Promise<void>;
  /** Every replica's latest publication (its own included); unreadable ones are skipped. */
  read(): Promise<PublishedStatus[]>;
  /** Deletes a replica's publication (one that is gone and whose every status is superseded). */
  remove(replica: string): Promise<void>;
}

/** Phases only the replica that has them can vouch for: another's are shown as pending. */
const OWN_PHASES: ReadonlySet<StackPhase> = new Set(["running", "queued"]);

const lastPassAt = (s: StackStatus): number => Date.parse(s.lastPass?.startedAt ?? "") || -Infinity;

/** Another replica's view of a stack, as this one may show it: nothing it runs or queues now. */
function asSeenFromHere(s: StackStatus): StackStatus {
  return OWN_PHASES.has(s.phase) ? { ...s, phase: "pending", nextRunAt: undefined } : s;
}

/**
 * Per stack this replica tracks, the newest status: the one with the latest pass, this replica's
 * own on a tie (and when none passed). Another replica's running or queued phase reads pending
 * unless that replica is the stack's owner now (it may be dead).
 */
export function mergeStatuses(
  own: readonly StackStatus[],
  published: readonly PublishedStatus[],
  self: string,
): StackStatus[] {
  const others = new Map<string, Array<{ replica: string; status: StackStatus }>>();
  for (const doc of published) {
    if (doc.replica === self) continue;
    for (const status of doc.stacks) {
      const list = others.get(status.name) ?? [];
      list.push({ replica: doc.replica, status });
      others.set(status.name, list);
    }
  }
  return own.map((mine) => {
    let best = mine;
    let from = self;
    for (const o of others.get(mine.name) ?? []) {
      if (lastPassAt(o.status) > lastPassAt(best)) {
        best = o.status;
        from = o.replica;
      }
    }
    if (from === self) return mine;
    // Who owns the stack is this replica's view (the Leases), not what the other published.
    return { ...(from === mine.owner ? best : asSeenFromHere(best)), owner: mine.owner };
  });
}

/**
 * The newest published status of each stack, for a replica that starts with no status of its
 * own: history survives a pod that is replaced, on a disk that is not.
 */
export function restoredStatuses(published: readonly PublishedStatus[]): Map<string, StackStatus> {
  const newest = new Map<string, StackStatus>();
  for (const doc of published) {
    for (const s of doc.stacks) {
      const known = newest.get(s.name);
      if (known === undefined || lastPassAt(s) > lastPassAt(known)) newest.set(s.name, s);
    }
  }
  // Whatever another replica ran or queued is not running here: the stack starts pending, and a
  // lock or pending operation a dead run left is found by the pass as on any start.
  return new Map([...newest].map(([name, s]) => [name, { ...asSeenFromHere(s), owner: undefined }]));
}

/**
 * The publications of replicas that are gone and hold nothing newer than what the live ones
 * published: safe to delete (each pod of a Deployment is a new replica, so without this every
 * rollout leaves a ConfigMap of up to 1 MiB that every replica reads every few seconds). Only
 * when every live replica has published (the live view is whole), only publications older than
 * `afterMs`, and only when each of their stacks has, in some live publication, a pass at least as
 * recent, or no live replica tracks it any more (a removed stack).
 */
export function supersededReplicas(
  published: readonly PublishedStatus[],
  live: ReadonlySet<string>,
  nowMs: number,
  afterMs: number,
): string[] {
  const liveDocs = published.filter((d) => live.has(d.replica));
  if (live.size === 0 || liveDocs.length < live.size) return [];
  const newestLive = new Map<string, number>();
  for (const doc of liveDocs) {
    for (const s of doc.stacks) newestLive.set(s.name, Math.max(newestLive.get(s.name) ?? -Infinity, lastPassAt(s)));
  }
  return published
    .filter((doc) => !live.has(doc.replica))
    .filter((doc) => nowMs - (Date.parse(doc.savedAt) || nowMs) >= afterMs)
    .filter((doc) =>
      doc.stacks.every((s) => {
        const newest = newestLive.get(s.name);
        return newest === undefined || newest >= lastPassAt(s);
      }),
    )
    .map((doc) => doc.replica)
    .sort();
}

export interface SharedStatusStoreOptions {
  readonly local: StatusStore;
  readonly board: StatusBoard;
  readonly replica: string;
  readonly clock: Clock;
  /** At most one publication per this many ms; the latest status is published at the end of it. */
  readonly minIntervalMs: number;
  readonly onError: (err: Error) => void;
}

/**
 * The scheduler's status store with replicas: the local file as before (every save), and the
 * board (throttled: a burst of saves is one publication of the latest status). Loading prefers
 * the local file's status of a stack and takes the board's newest for the others.
 */
export class SharedStatusStore implements StatusStore {
  private latest: readonly StackStatus[] | undefined;
  private timer: TimerHandle | undefined;
  private lastPublishAt = -Infinity;
  private publishing: Promise<void> = Promise.resolve();

  constructor(private readonly options: SharedStatusStoreOptions) {}

  async load(): Promise<Map<string, StackStatus>> {
    const local = await this.options.local.load();
    let published: PublishedStatus[] = [];
    try {
      published = await this.options.board.read();
    } catch (err) {
      this.options.onError(err as Error);
    }
    const restored = restoredStatuses(published);
    for (const [name, s] of local) restored.set(name, s);
    return restored;
  }

  async save(statuses: readonly StackStatus[]): Promise<void> {
    this.latest = statuses;
    await this.options.local.save(statuses);
    if (this.timer !== undefined) return;
    const wait = this.lastPublishAt + this.options.minIntervalMs - this.options.clock.now();
    if (wait <= 0) {
      this.publishLatest();
      return;
    }
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      this.publishLatest();
    }, wait);
  }

  /** Publishes what was last saved now, if anything waits, and resolves when it is written. */
  async flush(): Promise<void> {
    if (this.timer !== undefined) {
      this.options.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.publishLatest();
    }
    await this.publishing;
  }

  private publishLatest(): void {
    const stacks = this.latest;
    if (stacks === undefined) return;
    this.latest = undefined;
    this.lastPublishAt = this.options.clock.now();
    const doc = { replica: this.options.replica, savedAt: new Date(this.lastPublishAt).toISOString(), stacks };
    this.publishing = this.publishing
      .then(() => this.options.board.publish(doc))
      .catch((err: Error) => this.options.onError(err));
  }
}

/**
 * The other replicas' publications as the API shows them, read again every `intervalMs` in the
 * background (the API answers from what was read last, never waiting on the board).
 */
export class SharedStatusView {
  private published: readonly PublishedStatus[] = [];
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(
    private readonly board: StatusBoard,
    private readonly self: string,
    private readonly clock: Clock,
    private readonly intervalMs: number,
    private readonly onError: (err: Error) => void,
    /** Deletes the publications of gone replicas (supersededReplicas) with the live replicas as the leases say. */
    private readonly cleanup?: { readonly live: () => readonly string[]; readonly afterMs: number },
  ) {}

  /** Reads once now, then every interval until stop. */
  async start(): Promise<void> {
    await this.refresh();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
  }

  async refresh(): Promise<void> {
    try {
      this.published = await this.board.read();
    } catch (err) {
      this.onError(err as Error);
      return;
    }
    if (this.cleanup === undefined) return;
    const gone = supersededReplicas(
      this.published,
      new Set(this.cleanup.live()),
      this.clock.now(),
      this.cleanup.afterMs,
    );
    for (const replica of gone) {
      try {
        await this.board.remove(replica);
        this.published = this.published.filter((d) => d.replica !== replica);
      } catch (err) {
        this.onError(err as Error);
      }
    }
  }

  merge(own: readonly StackStatus[]): StackStatus[] {
    return mergeStatuses(own, this.published, this.self);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimeout(() => {
      void this.refresh().finally(() => this.schedule());
    }, this.intervalMs);
  }
}
