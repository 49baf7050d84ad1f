/** Fakes for scheduler tests: a clock that never sleeps, a scripted engine, an in-memory stack source. */
import type { Clock, TimerHandle } from "../../automation/reconciler/clock";
import { sleep } from "../../automation/reconciler/clock";
import type { DiscoveredStack, StackSource } from "../../automation/reconciler/discovery";
import type { Log } from "../../automation/reconciler/scheduler";
import {
  OperationAbortedError,
  StackBusyError,
  type Engine,
  type OperationOptions,
  type PendingOperation,
  type PreviewResource,
  type PreviewResult,
  type BackendLock,
  type StaleLock,
  type UpResult,
} from "../../automation/reconciler/types";

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/** Fake timers: `advance` runs due callbacks in time order and lets promises settle between them. */
export class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers: Timer[] = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.push({ id, at: this.t + Math.max(0, ms), fn });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== (handle as unknown as number));
  }

  get pending(): number {
    return this.timers.length;
  }

  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    await settle();
    for (;;) {
      const next = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!next) break;
      this.t = next.at;
      this.timers = this.timers.filter((t) => t !== next);
      next.fn();
      await settle();
    }
    this.t = target;
    await settle();
  }
}

/** Moves fake time on, a second at a time, until the promise settles (for code that also waits on real I/O). */
export async function whileAdvancing<T>(clock: FakeClock, promise: Promise<T>): Promise<T> {
  let settled = false;
  void promise.finally(() => (settled = true)).catch(() => undefined);
  while (!settled) await clock.advance(1000);
  return promise;
}

/** Lets every pending promise chain run (real macrotask turns, no time passes). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

export type Step = "in-sync" | "drift" | "fail" | "busy";

export interface Call {
  op: "preview" | "up" | "destroy";
  stack: string;
  start: number;
  end?: number;
  outcome?: string;
}

/**
 * A scripted engine: each stack has a queue of behaviours (default in-sync); every operation
 * takes `durationMs` of fake time and honours its abort signal.
 */
export class FakeEngine implements Engine {
  readonly calls: Call[] = [];
  readonly script = new Map<string, Step[]>();
  backendStacks: string[] = [];
  pending = new Map<string, PendingOperation[]>();
  staleLocks: StaleLock[] = [];
  /** Locks a busy stack's holder reports (a live or foreign owner). */
  heldLocks = new Map<string, BackendLock>();
  orphans: number[] = [];
  orphanSweeps = 0;
  /** What a drifted preview says the update would leave (for policy checks). */
  resources = new Map<string, PreviewResource[]>();
  cleared: string[] = [];
  durationMs = 1000;
  inFlight = 0;
  maxInFlight = 0;
  private perStack = new Map<string, number>();
  maxPerStack = 0;

  constructor(private readonly clock: FakeClock) {}

  plan(stack: string, ...steps: Step[]): void {
    this.script.set(stack, [...(this.script.get(stack) ?? []), ...steps]);
  }

  private async run<T>(op: Call["op"], stack: string, options: OperationOptions, result: () => T): Promise<T> {
    const call: Call = { op, stack, start: this.clock.now() };
    this.calls.push(call);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const mine = (this.perStack.get(stack) ?? 0) + 1;
    this.perStack.set(stack, mine);
    this.maxPerStack = Math.max(this.maxPerStack, mine);
    try {
      await sleep(this.clock, this.durationMs, options.signal).catch(() => {
        throw new OperationAbortedError(stack);
      });
      const value = result();
      call.outcome = "ok";
      return value;
    } catch (err) {
      call.outcome = (err as Error).name;
      throw err;
    } finally {
      call.end = this.clock.now();
      this.inFlight--;
      this.perStack.set(stack, (this.perStack.get(stack) ?? 1) - 1);
    }
  }

  private next(stack: string): Step {
    const steps = this.script.get(stack);
    return steps && steps.length > 0 ? (steps.shift() as Step) : "in-sync";
  }

  async listStacks(): Promise<string[]> {
    return [...this.backendStacks];
  }

  previewRefresh(stack: string, options: OperationOptions): Promise<PreviewResult> {
    const step = this.next(stack);
    return this.run("preview", stack, options, (): PreviewResult => {
      if (step === "fail") throw new Error(`preview failed for ${stack}`);
      if (step === "busy") throw new StackBusyError(stack);
      if (step === "drift") {
        return {
          changeSummary: { same: 2, update: 1 },
          drift: [{ urn: `urn:pulumi:${stack}::p::t::r`, type: "t", name: "r", op: "update", keys: ["content"] }],
          resources: this.resources.get(stack) ?? [],
        };
      }
      return { changeSummary: { same: 3 }, drift: [] };
    });
  }

  upRefresh(stack: string, options: OperationOptions): Promise<UpResult> {
    return this.run("up", stack, options, () => ({ resourceChanges: { same: 2, update: 1 } }));
  }

  destroy(stack: string, options: OperationOptions): Promise<UpResult> {
    return this.run("destroy", stack, options, () => ({ resourceChanges: { delete: 3 } }));
  }

  async pendingOperations(stack: string): Promise<PendingOperation[]> {
    return this.pending.get(stack) ?? [];
  }

  async clearPendingOperations(stack: string): Promise<void> {
    this.cleared.push(stack);
    this.pending.delete(stack);
  }

  async clearStaleLocks(stack?: string): Promise<StaleLock[]> {
    const cleared = this.staleLocks.filter((l) => stack === undefined || l.stack === stack);
    this.staleLocks = this.staleLocks.filter((l) => !cleared.includes(l));
    for (const l of cleared) this.heldLocks.delete(l.stack);
    return cleared;
  }

  async lockHolder(stack: string): Promise<BackendLock | undefined> {
    return this.heldLocks.get(stack);
  }

  async endOrphanedProcesses(): Promise<number[]> {
    this.orphanSweeps++;
    return this.orphans.splice(0);
  }

  previews(stack?: string): Call[] {
    return this.calls.filter((c) => c.op === "preview" && (stack === undefined || c.stack === stack));
  }

  ups(stack?: string): Call[] {
    return this.calls.filter((c) => c.op === "up" && (stack === undefined || c.stack === stack));
  }
}

/** Stacks as discovery reports them; tests edit the list. */
export class FakeSource implements StackSource {
  stacks: DiscoveredStack[] = [];
  constructor(private readonly engine: FakeEngine) {}

  add(name: string, settings: Partial<NonNullable<DiscoveredStack["settings"]>> = {}, hash = "h1"): void {
    this.stacks = this.stacks.filter((s) => s.name !== name);
    this.stacks.push({
      name,
      file: `/project/stacks/Pulumi.${name}.yaml`,
      fileHash: hash,
      settings: { mode: "correct", intervalSeconds: 60, decommission: false, ...settings },
    });
  }

  async discover(options: { includeBackend?: boolean } = {}): Promise<DiscoveredStack[]> {
    const backend = options.includeBackend ? new Set(await this.engine.listStacks()) : undefined;
    const result = this.stacks.map((s) => ({ ...s, inBackend: backend?.has(s.name) }));
    for (const name of backend ?? [])
      if (!this.stacks.some((s) => s.name === name)) result.push({ name, inBackend: true });
    return result;
  }
}

/** A logger that keeps its lines for assertions. */
export class MemoryLog implements Log {
  readonly lines: Array<{ level: string; msg: string; obj: object }> = [];
  debug(obj: object, msg: string): void {
    this.lines.push({ level: "debug", msg, obj });
  }
  info(obj: object, msg: string): void {
    this.lines.push({ level: "info", msg, obj });
  }
  warn(obj: object, msg: string): void {
    this.lines.push({ level: "warn", msg, obj });
  }
  error(obj: object, msg: string): void {
    this.lines.push({ level: "error", msg, obj });
  }
  messages(level?: string): string[] {
    return this.lines.filter((l) => level === undefined || l.level === level).map((l) => l.msg);
  }
}
