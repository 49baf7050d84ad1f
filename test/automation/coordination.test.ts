/** Replicas sharing the stacks: rendezvous ownership and the lease protocol, on a fake clock. */
import * as assert from "node:assert/strict";
import {
  Coordinator,
  type LeaseRecord,
  type LeaseStore,
  type OwnLease,
} from "../../automation/coordination/coordinator";
import { ownerOf } from "../../automation/coordination/rendezvous";
import type { Log } from "../../automation/reconciler/scheduler";
import { FakeClock } from "./fakes";

const silent: Log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Leases in memory with optimistic concurrency; a replica cut off from it fails every call. */
class MemoryLeases {
  readonly leases = new Map<string, LeaseRecord>();
  readonly cutOff = new Set<string>();
  /** Replicas whose lists fail while their writes still go through (a half-broken watch or cache). */
  readonly blind = new Set<string>();
  private seq = 0;

  for(replica: string): LeaseStore {
    const reach = () => {
      if (this.cutOff.has(replica)) throw new Error(`${replica}: connection refused`);
    };
    return {
      list: async () => {
        reach();
        if (this.blind.has(replica)) throw new Error(`${replica}: list timed out`);
        return [...this.leases.values()];
      },
      write: async (lease: OwnLease, version: string | undefined) => {
        reach();
        const there = this.leases.get(lease.replica);
        if (there?.version !== version) return "conflict";
        const written = { ...lease, version: String(++this.seq) };
        this.leases.set(lease.replica, written);
        return { version: written.version };
      },
      release: async (name: string, version: string) => {
        reach();
        if (this.leases.get(name)?.version === version) this.leases.delete(name);
      },
    };
  }
}

const STACKS = Array.from({ length: 60 }, (_, i) => `s${i}`);
const LEASE = { leaseDurationMs: 15_000, renewIntervalMs: 5_000, fenceGraceMs: 30_000 };

function replica(name: string, store: MemoryLeases, clock: FakeClock, onFence?: () => void): Coordinator {
  return new Coordinator({ replica: name, store: store.for(name), clock, log: silent, ...LEASE, onFence });
}

/** Which replicas may start each stack now. */
function starters(replicas: readonly Coordinator[], stacks = STACKS): Map<string, string[]> {
  return new Map(stacks.map((s) => [s, replicas.filter((r) => r.mayStart(s).ok).map((r) => r.replica)]));
}

describe("rendezvous ownership", () => {
  it("gives every stack one owner, the same whatever the order the replicas are listed in", () => {
    for (const stack of STACKS) {
      assert.equal(ownerOf(stack, ["a", "b", "c"]), ownerOf(stack, ["c", "a", "b"]));
    }
    assert.equal(ownerOf("s1", []), undefined);
  });

  it("spreads 3000 stacks over 3 replicas evenly (each within 10 % of a third)", () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const owner = ownerOf(`stack-${i}`, ["r0", "r1", "r2"]) as string;
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    for (const [owner, n] of counts) assert.ok(n > 900 && n < 1100, `${owner}: ${n}`);
  });

  it("moves only the stacks of a replica that leaves, and to a replica that joins only the stacks it takes", () => {
    const stacks = Array.from({ length: 1000 }, (_, i) => `stack-${i}`);
    const before = new Map(stacks.map((s) => [s, ownerOf(s, ["r0", "r1", "r2"])]));
    for (const s of stacks) {
      const after = ownerOf(s, ["r0", "r2"]);
      if (before.get(s) !== "r1") assert.equal(after, before.get(s), `${s} moved though its owner stayed`);
      const joined = ownerOf(s, ["r0", "r1", "r2", "r3"]);
      assert.ok(joined === before.get(s) || joined === "r3", `${s} moved to ${joined}, not to the newcomer`);
    }
  });
});

describe("Coordinator (fake clock, leases in memory)", () => {
  let clock: FakeClock;
  let store: MemoryLeases;
  let running: Coordinator[];

  beforeEach(() => {
    clock = new FakeClock();
    store = new MemoryLeases();
    running = [];
  });
  afterEach(async () => {
    for (const r of running) await r.stop().catch(() => undefined);
  });

  async function startAll(names: string[]): Promise<Coordinator[]> {
    const made = names.map((n) => replica(n, store, clock));
    for (const r of made) await r.start();
    running.push(...made);
    return made;
  }

  it("writes its lease at start and starts nothing until its view has settled (two renew intervals)", async () => {
    const [a] = await startAll(["a"]);
    assert.deepEqual([...store.leases.keys()], ["a"]);
    assert.deepEqual(a.mayStart("s1"), { ok: false, reason: "settling" });
    await clock.advance(5_000);
    assert.deepEqual(a.mayStart("s1"), { ok: false, reason: "settling" });
    await clock.advance(5_000);
    assert.deepEqual(a.mayStart("s1"), { ok: true });
  });

  it("divides the stacks among three replicas: each stack startable by exactly its owner", async () => {
    const replicas = await startAll(["a", "b", "c"]);
    await clock.advance(10_000);
    for (const [stack, who] of starters(replicas)) {
      assert.deepEqual(who, [ownerOf(stack, ["a", "b", "c"])], stack);
    }
    const verdict = replicas[0].mayStart(STACKS.find((s) => ownerOf(s, ["a", "b", "c"]) === "b") as string);
    assert.deepEqual(verdict, { ok: false, reason: "not-owner", replica: "b" });
  });

  it("publishes a stack as busy in its lease before the operation may start, and drops it after", async () => {
    const [a] = await startAll(["a"]);
    await clock.advance(10_000);
    assert.deepEqual(await a.begin("s7"), { ok: true });
    assert.deepEqual(store.leases.get("a")?.busy, ["s7"], "in the store when begin returns");
    a.end("s7");
    await clock.advance(5_000);
    assert.deepEqual(store.leases.get("a")?.busy, []);
  });

  it("moves a killed replica's stacks after its lease expired, and its busy stacks only after the fence grace too", async () => {
    const [a, b] = await startAll(["a", "b"]);
    await clock.advance(10_000);
    const ofB = STACKS.filter((s) => ownerOf(s, ["a", "b"]) === "b");
    assert.deepEqual(await b.begin(ofB[0]), { ok: true });
    // kill -9: nothing more from b; its lease stays as it was, busy stack and all.
    store.cutOff.add("b");
    await b.stop();
    running = [a];
    assert.deepEqual(store.leases.get("b")?.busy, [ofB[0]]);
    await clock.advance(5_000); // a observes b's last version now
    assert.equal(a.mayStart(ofB[1]).ok, false, "b is live until its lease expires");
    await clock.advance(15_000);
    assert.deepEqual(a.live(), ["a"]);
    await clock.advance(10_000); // settled on the view without b
    assert.deepEqual(a.mayStart(ofB[1]), { ok: true }, "an idle stack of b's moves once b's lease expired");
    assert.deepEqual(a.mayStart(ofB[0]), { ok: false, reason: "busy-elsewhere", replica: "b" });
    await clock.advance(20_000);
    assert.deepEqual(a.mayStart(ofB[0]), { ok: true }, "b's busy stack after expiry + fence grace");
  });

  it("tells a host gone only when every lease naming it expired and its fence grace passed", async () => {
    const a = new Coordinator({ replica: "a", host: "node-a", store: store.for("a"), clock, log: silent, ...LEASE });
    const b = new Coordinator({ replica: "b", host: "node-b", store: store.for("b"), clock, log: silent, ...LEASE });
    const b2 = new Coordinator({ replica: "b2", host: "node-b", store: store.for("b2"), clock, log: silent, ...LEASE });
    for (const r of [a, b, b2]) await r.start();
    running.push(a, b, b2);
    await clock.advance(10_000);
    assert.equal(store.leases.get("b")?.host, "node-b", "published in the lease");
    assert.equal(a.hostGone("node-b"), false, "its replicas are live");
    assert.equal(a.hostGone("node-x"), false, "no lease named it");
    assert.equal(a.hostGone("node-a"), false, "never its own host");
    // kill -9 of b: b2 still runs on node-b.
    store.cutOff.add("b");
    await b.stop();
    await clock.advance(60_000);
    assert.equal(a.hostGone("node-b"), false, "b2 still runs there");
    store.cutOff.add("b2");
    await b2.stop();
    running = [a];
    await clock.advance(5_000 + 15_000);
    assert.equal(a.hostGone("node-b"), false, "b2's lease expired, its fence grace not yet");
    await clock.advance(30_000);
    assert.equal(a.hostGone("node-b"), true);
  });

  it("hands a stopped replica's stacks over as soon as the others have settled without it (its lease is deleted)", async () => {
    const [a, b] = await startAll(["a", "b"]);
    await clock.advance(10_000);
    await b.stop();
    running = [a];
    assert.equal(store.leases.has("b"), false);
    await clock.advance(15_000);
    for (const [stack, who] of starters([a])) assert.deepEqual(who, ["a"], stack);
  });

  it("fences itself when it cannot renew: aborts, starts nothing, before any other replica sees its lease expire", async () => {
    let fencedAt: number | undefined;
    let bSawA: boolean | undefined;
    const b = replica("b", store, clock);
    const a = replica("a", store, clock, () => {
      fencedAt = clock.now();
      bSawA = b.live().includes("a");
    });
    await a.start();
    await b.start();
    running.push(a, b);
    await clock.advance(10_000);
    const cutAt = clock.now();
    store.cutOff.add("a");
    await clock.advance(15_000);
    assert.ok(
      fencedAt !== undefined && fencedAt - cutAt <= 10_000,
      `fenced ${fencedAt === undefined ? "never" : fencedAt - cutAt} ms after the cut`,
    );
    assert.equal(bSawA, true, "b still counted a as live when a fenced itself");
    assert.deepEqual(a.mayStart("s1"), { ok: false, reason: "no-lease" });
    assert.equal(b.live().includes("a"), false, "then a's lease expired for b");
    store.cutOff.delete("a");
    await clock.advance(5_000);
    assert.equal(a.holdsLease(), true, "renewed again: resumes");
  });

  it("settles afresh after being cut off: its stacks may have moved meanwhile", async () => {
    const a = replica("a", store, clock);
    await a.start();
    await clock.advance(1_000);
    const b = replica("b", store, clock);
    await b.start();
    running.push(a, b);
    await clock.advance(20_000);
    const stack = STACKS.find((s) => ownerOf(s, ["a", "b"]) === "a") as string;
    assert.deepEqual(a.mayStart(stack), { ok: true });
    store.cutOff.add("a");
    await clock.advance(40_000);
    assert.deepEqual(b.mayStart(stack), { ok: true }, "b took a's stack over");
    store.cutOff.delete("a");
    await clock.advance(4_500); // a renewed and listed (65 s); b has not listed since (66 s)
    assert.deepEqual(b.mayStart(stack), { ok: true }, "b has not seen a come back yet");
    assert.deepEqual(a.mayStart(stack), { ok: false, reason: "settling" });
    await clock.advance(10_000);
    assert.deepEqual(a.mayStart(stack), { ok: true });
    assert.deepEqual(b.mayStart(stack), { ok: false, reason: "not-owner", replica: "a" });
  });

  it("never lets two replicas run one stack while replicas join, crash, get cut off and stop (randomized, 30 runs)", async function () {
    this.timeout(120_000);
    for (let run = 0; run < 30; run++) {
      clock = new FakeClock();
      store = new MemoryLeases();
      let seed = run * 7919 + 1;
      const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
      const stacks = STACKS.slice(0, 12);
      /** Per stack, the replica running it and since when. */
      const holder = new Map<string, string>();
      const ops = new Map<string, Set<string>>(); // replica → stacks it runs
      const alive = new Map<string, Coordinator>();
      let violations = 0;
      let completed = 0;
      const endOp = (name: string, stack: string) => {
        if (!ops.get(name)?.delete(stack)) return;
        if (holder.get(stack) === name) holder.delete(stack);
        alive.get(name)?.end(stack);
      };
      const spawn = async (name: string) => {
        ops.set(name, new Set());
        // onFence aborts every operation; aborts take up to 20 s (under the 30 s grace).
        const c = replica(name, store, clock, () => {
          for (const stack of [...(ops.get(name) ?? [])]) clock.setTimeout(() => endOp(name, stack), random() * 20_000);
        });
        alive.set(name, c);
        await c.start();
      };
      for (const name of ["r0", "r1", "r2"]) await spawn(name);
      let next = 3;
      for (let step = 0; step < 400; step++) {
        await clock.advance(250 + Math.floor(random() * 500));
        const roll = random();
        const names = [...alive.keys()];
        if (roll < 0.01 && names.length > 1) {
          // crash: dead at once, its operations with it, its lease left behind
          const name = names[Math.floor(random() * names.length)];
          const c = alive.get(name) as Coordinator;
          alive.delete(name);
          store.cutOff.add(name);
          await c.stop();
          for (const stack of [...(ops.get(name) ?? [])]) endOp(name, stack);
        } else if (roll < 0.02) {
          await spawn(`r${next++}`);
        } else if (roll < 0.03 && names.length > 0) {
          const name = names[Math.floor(random() * names.length)];
          if (store.cutOff.has(name)) store.cutOff.delete(name);
          else store.cutOff.add(name);
        } else if (roll < 0.04 && names.length > 0) {
          const name = names[Math.floor(random() * names.length)];
          if (store.blind.has(name)) store.blind.delete(name);
          else store.blind.add(name);
        }
        for (const [name, c] of alive) {
          const stack = stacks[Math.floor(random() * stacks.length)];
          if (ops.get(name)?.has(stack)) continue;
          if (!(await c.begin(stack)).ok) continue;
          const other = holder.get(stack);
          if (other !== undefined && other !== name) violations++;
          holder.set(stack, name);
          ops.get(name)?.add(stack);
          clock.setTimeout(
            () => {
              completed++;
              endOp(name, stack);
            },
            500 + random() * 30_000,
          );
        }
      }
      for (const c of alive.values()) await c.stop();
      assert.equal(violations, 0, `run ${run}: two replicas ran one stack`);
      assert.ok(completed >= 5, `run ${run}: only ${completed} operations ran`);
    }
  });
});
