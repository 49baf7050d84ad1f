/**
 * Coalesces the changes noticed on one stack: a person's `kubectl` session or a controller's
 * burst of writes becomes one pass, started once the stack has been quiet for `quietMs` (or
 * `maxWaitMs` after the first change, whichever comes first), not one pass per object.
 */
import type { Clock, TimerHandle } from "../reconciler/clock";

export interface ChangeTriggerOptions {
  readonly clock: Clock;
  /** Quiet time after the last change before the pass starts. Default 500 ms. */
  readonly quietMs?: number;
  /** The longest a first change waits. Default 2 s. */
  readonly maxWaitMs?: number;
  /** The coalesced changes of one stack: attributed if any of them was. */
  readonly fire: (stack: string, attributed: boolean, what: readonly string[]) => void;
}

interface Pending {
  readonly firstAt: number;
  attributed: boolean;
  readonly what: string[];
  timer?: TimerHandle;
}

/** At most this many change descriptions are kept per pass, for its log line. */
const MAX_WHAT = 10;

export class ChangeTrigger {
  private readonly pending = new Map<string, Pending>();
  private stopped = false;

  constructor(private readonly options: ChangeTriggerOptions) {}

  notice(stack: string, attributed: boolean, what: string): void {
    if (this.stopped) return;
    const { clock } = this.options;
    const quietMs = this.options.quietMs ?? 500;
    const maxWaitMs = this.options.maxWaitMs ?? 2000;
    const now = clock.now();
    let p = this.pending.get(stack);
    if (p === undefined) {
      p = { firstAt: now, attributed, what: [] };
      this.pending.set(stack, p);
    }
    p.attributed ||= attributed;
    if (p.what.length < MAX_WHAT) p.what.push(what);
    if (p.timer !== undefined) clock.clearTimeout(p.timer);
    const due = Math.min(now + quietMs, p.firstAt + maxWaitMs);
    p.timer = clock.setTimeout(() => this.flush(stack), Math.max(0, due - now));
  }

  /** Drops what is pending; nothing fires after. */
  stop(): void {
    this.stopped = true;
    for (const p of this.pending.values()) if (p.timer !== undefined) this.options.clock.clearTimeout(p.timer);
    this.pending.clear();
  }

  private flush(stack: string): void {
    const p = this.pending.get(stack);
    if (p === undefined) return;
    this.pending.delete(stack);
    this.options.fire(stack, p.attributed, p.what);
  }
}
