/** Fakes for scheduler tests: a clock that never sleeps, a scripted engine, an in-memory stack source. */
import type { Clock, TimerHandle } from "../../automation/reconciler/clock";
import { sleep } from "../../automation/reconciler/clock";
import type { DiscoveredStack, StackSource } from "../../automation/reconciler/discovery";
import { Scheduler, type Log, type SchedulerOptions } from "../../automation/reconciler/scheduler";
import { MemoryStatusStore } from "../../automation/reconciler/status";
import {
  OperationAbortedError,
  StackBusyError,
  type Engine,
  type OperationOptions,
  type PendingOperation,
  type PreviewResource,
  type PreviewResult,
  type RenewalTargets,
  type BackendLock,
  type StaleLock,
  type StateResource,
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
  op: "preview" | "up" | "destroy" | "renew";
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
  /** Stacks whose last preview found changes: the up that follows applies them. */
  private readonly previewed = new Set<string>();
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
  /** Per stack, its certificates as the backend has them (giveCertificates). */
  readonly pki = new Map<string, FakePki>();
  /** What stackResources answers per stack (secrets in plain text, as the real engine reveals them). */
  readonly states = new Map<string, StateResource[]>();
  /** The targets of every renewal update, in order. */
  readonly renewTargets: Array<{ stack: string; targets: RenewalTargets }> = [];
  /** Renewal updates that fail, per stack (counted down). */
  failRenewals = new Map<string, number>();

  constructor(private readonly clock: FakeClock) {}

  /**
   * The stack gets certificates of `ttlMs`, issued at `issuedAt` (default now), each renewed at
   * half its life by any update that includes it, like the local backend; a CA if `ca`.
   */
  giveCertificates(stack: string, keys: readonly string[], ttlMs: number, issuedAt = this.clock.now()): void {
    const certs = new Map<string, FakeCertificate>();
    for (const key of keys) certs.set(key, { key, issuedAt, ttlMs, serial: 1 });
    this.pki.set(stack, { certs, carriers: [`urn:pulumi:${stack}::g8s::kubernetes:core/v1:Secret::node-secrets`] });
  }

  /** The backend's own judgement: less than half left at `now` (the engine's clock). */
  private due(stack: string): FakeCertificate[] {
    const now = this.clock.now();
    return [...(this.pki.get(stack)?.certs.values() ?? [])].filter((c) => now >= c.issuedAt + c.ttlMs / 2);
  }

  private reissue(stack: string, urns: ReadonlySet<string> | "all"): void {
    for (const c of this.due(stack)) {
      if (urns !== "all" && !urns.has(certUrn(stack, c.key))) continue;
      c.issuedAt = this.clock.now();
      c.serial++;
    }
  }

  serial(stack: string, key: string): number | undefined {
    return this.pki.get(stack)?.certs.get(key)?.serial;
  }

  async stackResources(stack: string): Promise<StateResource[] | undefined> {
    return this.states.get(stack);
  }

  /** Plain stack outputs other than pki, per stack (pki comes from the certificates above). */
  readonly outputs = new Map<string, Record<string, unknown>>();

  async plainOutput(stack: string, key: string): Promise<unknown> {
    return key === "pki" ? this.pkiOutput(stack) : this.outputs.get(stack)?.[key];
  }

  async pkiOutput(stack: string): Promise<unknown> {
    const pki = this.pki.get(stack);
    if (!pki) return undefined;
    const iso = (ms: number) => new Date(ms).toISOString();
    return {
      certificates: Object.fromEntries(
        [...pki.certs.values()].map((c) => [
          c.key,
          {
            notBefore: iso(c.issuedAt),
            notAfter: iso(c.issuedAt + c.ttlMs),
            renewAt: iso(c.issuedAt + c.ttlMs / 2),
            urns: [certUrn(stack, c.key)],
          },
        ]),
      ),
      carriers: [...pki.carriers],
    };
  }

  upTargets(stack: string, targets: RenewalTargets, options: OperationOptions): Promise<UpResult> {
    this.renewTargets.push({ stack, targets });
    const step = this.next(stack, "renew");
    return this.run("renew", stack, options, () => {
      const failing = this.failRenewals.get(stack) ?? 0;
      if (failing > 0) {
        this.failRenewals.set(stack, failing - 1);
        throw new Error(`renewal update failed for ${stack}`);
      }
      if (step === "busy") throw new StackBusyError(stack);
      const before = this.due(stack).length;
      this.reissue(stack, new Set([...targets.update, ...targets.replace]));
      return { resourceChanges: { update: before - this.due(stack).length + 1 } };
    });
  }

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

  private next(stack: string, op: "preview" | "renew" = "preview"): Step {
    const steps = this.script.get(stack);
    // A scripted step is for a preview; a renewal takes only a scripted "busy" that is first.
    if (op === "renew") return steps?.[0] === "busy" ? (steps.shift() as Step) : "in-sync";
    return steps && steps.length > 0 ? (steps.shift() as Step) : "in-sync";
  }

  async listStacks(): Promise<string[]> {
    return [...this.backendStacks];
  }

  previewRefresh(stack: string, options: OperationOptions): Promise<PreviewResult> {
    const step = this.next(stack);
    this.previewed.delete(stack);
    return this.run("preview", stack, options, (): PreviewResult => {
      const found = (result: PreviewResult) => (this.previewed.add(stack), result);
      if (step === "fail") throw new Error(`preview failed for ${stack}`);
      if (step === "busy") throw new StackBusyError(stack);
      // What the backend would reissue shows in a preview, as a real one does.
      const renewals = this.due(stack).map((c) => ({
        urn: certUrn(stack, c.key),
        type: "pulumi-nodejs:dynamic/g8s-pki:LocalCertificate",
        name: c.key,
        op: "update",
        keys: ["certPem"],
      }));
      if (step === "drift") {
        return found({
          changeSummary: { same: 2, update: 1 + renewals.length },
          drift: [
            { urn: `urn:pulumi:${stack}::p::t::r`, type: "t", name: "r", op: "update", keys: ["content"] },
            ...renewals,
          ],
          resources: this.resources.get(stack) ?? [],
        });
      }
      if (renewals.length > 0) return found({ changeSummary: { same: 3, update: renewals.length }, drift: renewals });
      return { changeSummary: { same: 3 }, drift: [] };
    });
  }

  /**
   * After a preview it applies what the preview found; without one (a change corrected at once)
   * it takes the next scripted step itself: drift is updated, in-sync changes nothing.
   */
  upRefresh(stack: string, options: OperationOptions): Promise<UpResult> {
    const step = this.previewed.delete(stack) ? "drift" : this.next(stack);
    return this.run("up", stack, options, (): UpResult => {
      if (step === "fail") throw new Error(`up failed for ${stack}`);
      if (step === "busy") throw new StackBusyError(stack);
      this.reissue(stack, "all");
      if (step === "in-sync") return { resourceChanges: { same: 3 }, drift: [] };
      const drift = [{ urn: `urn:pulumi:${stack}::p::t::r`, type: "t", name: "r", op: "update", keys: ["content"] }];
      return { resourceChanges: { same: 2, update: 1 }, drift };
    });
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

  renewals(stack?: string): Call[] {
    return this.calls.filter((c) => c.op === "renew" && (stack === undefined || c.stack === stack));
  }
}

interface FakeCertificate {
  readonly key: string;
  issuedAt: number;
  readonly ttlMs: number;
  serial: number;
}

interface FakePki {
  readonly certs: Map<string, FakeCertificate>;
  readonly carriers: readonly string[];
}

export function certUrn(stack: string, key: string): string {
  return `urn:pulumi:${stack}::g8s::g8s:pki:ClusterPki$pulumi-nodejs:dynamic/g8s-pki:LocalCertificate::cert-${key}`;
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

/** A scheduler over fakes; `make` builds one (again, for a restart) with these options. */
export function setup(options: Partial<SchedulerOptions> = {}) {
  const clock = new FakeClock();
  const engine = new FakeEngine(clock);
  const source = new FakeSource(engine);
  const store = new MemoryStatusStore();
  const log = new MemoryLog();
  const make = (extra: Partial<SchedulerOptions> = {}) =>
    new Scheduler({ engine, source, store, clock, log, random: () => 0, ...options, ...extra });
  return { clock, engine, source, store, log, make };
}
