/** The scheduler behind a gate: replicas sharing the stacks run each only where the gate says. */
import * as assert from "node:assert/strict";
import type { Gate } from "../../automation/reconciler/scheduler";
import { setup } from "./fakes";

const SECOND = 1000;

/** A gate whose owners the test sets; it may refuse a claim the way a lost race does. */
class FakeGate implements Gate {
  readonly owners = new Map<string, string>();
  readonly begun: string[] = [];
  readonly ended: string[] = [];
  refuseNextClaim = false;
  constructor(readonly replica: string) {}
  owner(stack: string) {
    return this.owners.get(stack);
  }
  mayStart(stack: string) {
    const owner = this.owner(stack);
    return owner === this.replica ? { ok: true } : { ok: false, reason: "not-owner", replica: owner };
  }
  async begin(stack: string) {
    if (this.refuseNextClaim) {
      this.refuseNextClaim = false;
      return { ok: false, reason: "busy-elsewhere", replica: "r2" };
    }
    const verdict = this.mayStart(stack);
    if (verdict.ok) this.begun.push(stack);
    return verdict;
  }
  end(stack: string) {
    this.ended.push(stack);
  }
}

describe("Scheduler behind a gate (replicas sharing the stacks)", () => {
  function make(owners: Record<string, string>) {
    const gate = new FakeGate("r1");
    for (const [stack, owner] of Object.entries(owners)) gate.owners.set(stack, owner);
    const t = setup({ gate, concurrency: 4 });
    for (const name of Object.keys(owners)) t.source.add(name, { intervalSeconds: 60 });
    return { ...t, gate, s: t.make() };
  }

  it("runs only the stacks this replica owns, claiming each before and releasing it after, and shows every owner", async () => {
    const t = make({ a: "r1", b: "r2", c: "r1", d: "r3" });
    await t.s.start();
    await t.clock.advance(5 * 60 * SECOND);
    assert.ok(t.engine.previews("a").length >= 4 && t.engine.previews("c").length >= 4);
    assert.equal(t.engine.calls.filter((c) => c.stack === "b" || c.stack === "d").length, 0, "never another's");
    assert.ok(t.gate.begun.length >= 8);
    assert.deepEqual(
      t.gate.begun.filter((s) => s === "b" || s === "d"),
      [],
    );
    assert.equal(t.gate.ended.length, t.gate.begun.length, "every claim released");
    assert.deepEqual(
      t.s.list().map((st) => [st.name, st.owner]),
      [
        ["a", "r1"],
        ["b", "r2"],
        ["c", "r1"],
        ["d", "r3"],
      ],
    );
    await t.s.stop();
  });

  it("takes a stack over at once when the gate gives it to this replica, and lets one go that moved away", async () => {
    const t = make({ a: "r1", b: "r2" });
    await t.s.start();
    await t.clock.advance(10 * SECOND);
    assert.equal(t.engine.previews("b").length, 0);
    const at = t.clock.now();
    t.gate.owners.set("b", "r1"); // r2's lease expired
    t.gate.owners.set("a", "r3"); // a newcomer's share
    t.s.gateChanged();
    await t.clock.advance(2 * SECOND);
    assert.equal(t.engine.previews("b")[0]?.start, at, "b runs at once");
    const before = t.engine.previews("a").length;
    await t.clock.advance(5 * 60 * SECOND);
    assert.equal(t.engine.previews("a").length, before, "a no longer runs here");
    assert.equal(t.s.get("a")?.owner, "r3");
    await t.s.stop();
  });

  it("takes a queued stack whose owner changed out of the queue, saying who runs it", async () => {
    const t = make({ a: "r1", b: "r1", c: "r1" });
    t.engine.durationMs = 60 * SECOND;
    const s = t.make({ concurrency: 1 });
    await s.start();
    await t.clock.advance(0);
    assert.equal(s.load().queueDepth, 2);
    t.gate.owners.set("c", "r2");
    s.gateChanged();
    assert.equal(s.load().queueDepth, 1);
    assert.equal(s.get("c")?.phase, "pending");
    assert.equal(s.get("c")?.message, "run by replica r2");
    await s.stop();
  });

  it("records no failure when a claim is refused (another replica got there first), and asks again after the busy retry", async () => {
    const t = make({ a: "r1" });
    t.gate.refuseNextClaim = true;
    await t.s.start();
    await t.clock.advance(SECOND);
    assert.equal(t.engine.previews("a").length, 0);
    assert.equal(t.s.get("a")?.consecutiveFailures, 0);
    assert.equal(t.s.get("a")?.message, "run by replica r1");
    await t.clock.advance(10 * SECOND);
    assert.equal(t.engine.previews("a").length, 0, "not asked again in a loop");
    await t.clock.advance(5 * SECOND);
    assert.equal(t.engine.previews("a").length, 1, "again after the busy retry (15 s)");
    await t.s.stop();
  });

  it("aborts every running operation when told its lease is lost, and releases the claims", async () => {
    const t = make({ a: "r1", b: "r1" });
    t.engine.durationMs = 10 * 60 * SECOND;
    await t.s.start();
    await t.clock.advance(SECOND);
    assert.equal(t.s.load().inFlight, 2);
    t.s.abortRunning("lease lost");
    await t.clock.advance(SECOND);
    assert.equal(t.s.load().inFlight, 0);
    assert.deepEqual([...t.gate.ended].sort(), ["a", "b"]);
    t.gate.owners.clear(); // nobody starts anything while fenced
    t.s.gateChanged();
    await t.clock.advance(30 * 60 * SECOND);
    assert.equal(t.engine.previews().length, 2, "nothing started after the fence");
    await t.s.stop();
  });
});

describe("g8s status with replicas", () => {
  it("adds an OWNER column only when the daemon reports owners", async () => {
    const { statusTable } = await import("../../automation/cli/status");
    const base = { phase: "in-sync", mode: "correct", intervalSeconds: 60, consecutiveFailures: 0 } as const;
    const alone = statusTable([{ name: "a", ...base }], 0);
    assert.doesNotMatch(alone, /OWNER/);
    const shared = statusTable([{ name: "a", ...base, owner: "r2" }], 0).split("\n");
    assert.match(shared[0], /^STACK\s+OWNER\s+PHASE/);
    assert.match(shared[1], /^a\s+r2\s+in-sync/);
  });
});
