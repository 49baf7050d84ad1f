import * as assert from "node:assert/strict";
import { backoffDelay } from "../../automation/reconciler/lifecycle";
import type { SchedulerOptions } from "../../automation/reconciler/scheduler";
import type { PendingOperation } from "../../automation/reconciler/types";
import { settle, setup } from "./fakes";

const SECOND = 1000;
const MINUTE = 60 * SECOND;

/** The previous daemon died during an update of stack "a" that left these pending operations. */
function interruptedUpdate(options: Partial<SchedulerOptions>, ...pending: PendingOperation[]) {
  const t = setup(options);
  t.source.add("a");
  t.store.saved = [
    { name: "a", phase: "running", mode: "correct", intervalSeconds: 60, consecutiveFailures: 0, fileHash: "h1" },
  ];
  t.engine.pending.set("a", pending);
  return t;
}

describe("Scheduler", () => {
  describe("schedule and jitter", () => {
    it("runs each stack again between interval and interval × (1 + jitter)", async () => {
      for (const r of [0, 0.5, 0.999]) {
        const t = setup({ random: () => r, jitter: 0.1 });
        t.source.add("a", { intervalSeconds: 100 });
        const s = t.make();
        await s.start();
        await t.clock.advance(30 * MINUTE);
        const starts = t.engine.previews("a").map((c) => c.start);
        assert.ok(starts.length > 10, `ran ${starts.length} times`);
        for (let i = 1; i < starts.length; i++) {
          const gap = starts[i] - starts[i - 1] - t.engine.durationMs; // the pass itself takes 1 s
          assert.ok(gap >= 100 * SECOND && gap < 110 * SECOND, `gap ${gap} ms with random ${r}`);
          assert.equal(gap, Math.round(100 * SECOND * (1 + r * 0.1)));
        }
        await s.stop();
      }
    });

    it("spreads first runs over the first jitter window instead of starting all at once", async () => {
      const randoms = [0.1, 0.9, 0.5];
      const t = setup({ random: () => randoms.shift() ?? 0, jitter: 0.2, concurrency: 5 });
      for (const name of ["a", "b", "c"]) t.source.add(name, { intervalSeconds: 100 });
      const s = t.make();
      await s.start();
      await t.clock.advance(25 * SECOND);
      const firsts = ["a", "b", "c"].map((n) => t.engine.previews(n)[0].start);
      assert.deepEqual(firsts, [2 * SECOND, 18 * SECOND, 10 * SECOND]);
      await s.stop();
    });
  });

  describe("progress of a long pass", () => {
    it("shows the upgrade's progress as the running stack's message, gone when the pass ends", async () => {
      const seen: (string | undefined)[] = [];
      const made: { s?: ReturnType<ReturnType<typeof setup>["make"]> } = {};
      const t = setup({
        upgrade: async (_stack, _signal, progress) => {
          progress("master-1: cordon and drain");
          seen.push(made.s?.get("a")?.message);
          return { from: "v1.34.12", to: "v1.35.4", nodes: [{ node: "master-1", seconds: 1 }], seconds: 1 };
        },
      });
      t.source.add("a");
      const s = t.make();
      made.s = s;
      await s.start();
      await t.clock.advance(5 * SECOND);
      assert.deepEqual(seen, ["upgrade: master-1: cordon and drain"]);
      assert.equal(s.get("a")?.phase, "in-sync");
      assert.equal(s.get("a")?.message, undefined);
      assert.equal(s.get("a")?.lastPass?.upgrade?.to, "v1.35.4");
      await s.stop();
    });
  });

  describe("concurrency", () => {
    it("never runs more operations than the concurrency bound", async () => {
      const t = setup({ concurrency: 2 });
      for (const name of ["a", "b", "c", "d", "e", "f"]) t.source.add(name);
      const s = t.make();
      await s.start();
      await t.clock.advance(10 * SECOND);
      assert.equal(t.engine.maxInFlight, 2);
      assert.deepEqual(
        ["a", "b", "c", "d", "e", "f"].map((n) => t.engine.previews(n).length),
        [1, 1, 1, 1, 1, 1],
      );
      await s.stop();
    });

    it("defaults to two at a time", async () => {
      const t = setup();
      for (const name of ["a", "b", "c", "d"]) t.source.add(name);
      const s = t.make();
      await s.start();
      await t.clock.advance(0);
      assert.equal(s.load().inFlight, 2);
      assert.equal(s.load().queueDepth, 2);
      await s.stop();
    });

    it("never runs two operations on one stack, even when a run is requested during one", async () => {
      const t = setup({ concurrency: 4 });
      t.source.add("a", { intervalSeconds: 10 });
      t.engine.plan("a", "drift", "drift", "drift");
      const s = t.make();
      await s.start();
      await t.clock.advance(0);
      assert.equal(s.get("a")?.phase, "running");
      assert.equal(s.requestRun("a").accepted, true);
      assert.equal(s.requestRun("a").accepted, true);
      await t.clock.advance(2 * MINUTE);
      assert.equal(t.engine.maxPerStack, 1);
      // The requested run happened right after the first pass (preview + up = 2 s), not in parallel.
      assert.equal(t.engine.previews("a")[1].start, 2 * SECOND);
    });

    it("rejects a concurrency below 1", () => {
      const t = setup();
      assert.throws(() => t.make({ concurrency: 0 }), /concurrency must be a whole number ≥ 1 \(got 0\)/);
    });
  });

  describe("detect and correct", () => {
    it("corrects drift with up in mode correct and records what drifted", async () => {
      const t = setup();
      t.source.add("a");
      t.engine.plan("a", "drift");
      const s = t.make();
      await s.start();
      await t.clock.advance(5 * SECOND);
      assert.equal(t.engine.ups("a").length, 1);
      const status = s.get("a");
      assert.equal(status?.phase, "in-sync");
      assert.equal(status?.lastDrift?.outcome, "corrected");
      assert.deepEqual(
        status?.lastDrift?.drift.map((d) => [d.op, d.keys]),
        [["update", ["content"]]],
      );
      assert.deepEqual(status?.lastDrift?.resourceChanges, { same: 2, update: 1 });
      await s.stop();
    });

    it("only reports drift in mode detect", async () => {
      const t = setup();
      t.source.add("a", { mode: "detect" });
      t.engine.plan("a", "drift");
      const s = t.make();
      await s.start();
      await t.clock.advance(5 * SECOND);
      assert.equal(t.engine.ups().length, 0);
      assert.equal(s.get("a")?.phase, "drifted");
      await s.stop();
    });

    it("runs nothing in mode off", async () => {
      const t = setup();
      t.source.add("a", { mode: "off" });
      const s = t.make();
      await s.start();
      await t.clock.advance(10 * MINUTE);
      assert.equal(t.engine.calls.length, 0);
      assert.equal(s.get("a")?.phase, "off");
      await s.stop();
    });

    it("does not count a policy-blocked pass as a success: blocked, failures kept, no last success", async () => {
      const t = setup({ backoffBaseMs: 10 * SECOND });
      t.source.add("a", { intervalSeconds: 60 });
      t.engine.plan("a", "fail", "drift", "drift");
      const violation = { policy: "etcd-volumes-protected", enforcementLevel: "mandatory", message: "not protected" };
      const s = t.make({ checkPolicies: async () => [violation] });
      await s.start();
      await t.clock.advance(12 * SECOND); // a failure, then the retry finds drift that policy blocks
      const status = s.get("a");
      assert.equal(status?.lastPass?.outcome, "blocked");
      assert.equal(status?.phase, "blocked");
      assert.equal(status?.consecutiveFailures, 1, "not reset by a blocked pass");
      assert.equal(status?.lastSuccessAt, undefined);
      assert.equal(status?.message, "up blocked: policy: [mandatory] etcd-volumes-protected: not protected");
      assert.equal(status?.lastDrift?.outcome, "blocked");
      assert.equal(t.engine.ups().length, 0);
      // Not a failure either: the next pass comes on the interval, not after a backoff.
      assert.equal(status?.nextRunAt, new Date(12 * SECOND + 60 * SECOND).toISOString());
      await s.stop();
    });

    it("runs no up when nothing drifted", async () => {
      const t = setup();
      t.source.add("a");
      const s = t.make();
      await s.start();
      await t.clock.advance(5 * MINUTE);
      assert.ok(t.engine.previews("a").length >= 4);
      assert.equal(t.engine.ups().length, 0);
      await s.stop();
    });
  });

  describe("failures", () => {
    it("backs off 10 s, 20 s, 40 s, 80 s, then stalls after the fifth failure in a row", async () => {
      const t = setup();
      t.source.add("a", { intervalSeconds: 60 });
      t.engine.plan("a", "fail", "fail", "fail", "fail", "fail", "fail");
      const s = t.make();
      await s.start();
      await t.clock.advance(2 * 60 * MINUTE);
      const starts = t.engine.previews("a").map((c) => c.start);
      const gaps = starts.slice(1).map((x, i) => x - starts[i] - t.engine.durationMs);
      assert.deepEqual(gaps, [10 * SECOND, 20 * SECOND, 40 * SECOND, 80 * SECOND]);
      const status = s.get("a");
      assert.equal(status?.phase, "stalled");
      assert.equal(status?.consecutiveFailures, 5);
      assert.equal(status?.message, "stalled after 5 consecutive failures: change the stack file or request a run");
      await s.stop();
    });

    it("caps the backoff", () => {
      assert.deepEqual(
        [1, 2, 3, 9, 10, 20].map((n) => backoffDelay(n, 10 * SECOND, 60 * MINUTE)),
        [10_000, 20_000, 40_000, 2_560_000, 3_600_000, 3_600_000],
      );
    });

    it("un-stalls when the stack file changes, and runs at once", async () => {
      const t = setup({ stallAfter: 2 });
      t.source.add("a");
      t.engine.plan("a", "fail", "fail");
      const s = t.make();
      await s.start();
      await t.clock.advance(MINUTE);
      assert.equal(s.get("a")?.phase, "stalled");
      const before = t.engine.previews("a").length;
      t.source.add("a", {}, "h2");
      await t.clock.advance(7 * SECOND); // the next discovery (every 5 s) sees the new hash
      assert.equal(t.engine.previews("a").length, before + 1);
      assert.equal(s.get("a")?.phase, "in-sync");
      assert.equal(s.get("a")?.consecutiveFailures, 0);
      await s.stop();
    });

    it("runs a stack whose file changed during a pass again as soon as the pass ends", async () => {
      const t = setup();
      t.source.add("a", { intervalSeconds: 600 });
      t.engine.durationMs = 10 * SECOND;
      const s = t.make();
      await s.start();
      await t.clock.advance(3 * SECOND);
      assert.equal(s.get("a")?.phase, "running");
      t.source.add("a", { intervalSeconds: 600 }, "h2"); // seen by the discovery at 5 s, mid-pass
      await t.clock.advance(10 * SECOND);
      assert.deepEqual(
        t.engine.previews("a").map((c) => c.start),
        [0, 10 * SECOND],
      );
      assert.equal(t.engine.maxPerStack, 1);
      await s.stop();
    });

    it("un-stalls when a run is requested", async () => {
      const t = setup({ stallAfter: 1 });
      t.source.add("a");
      t.engine.plan("a", "fail");
      const s = t.make();
      await s.start();
      await t.clock.advance(MINUTE);
      assert.equal(s.get("a")?.phase, "stalled");
      await t.clock.advance(60 * MINUTE);
      assert.equal(t.engine.previews("a").length, 1, "a stalled stack is not retried on its own");
      assert.equal(s.requestRun("a").accepted, true);
      await t.clock.advance(2 * SECOND);
      assert.equal(t.engine.previews("a").length, 2);
      assert.equal(s.get("a")?.phase, "in-sync");
      await s.stop();
    });

    it("forgets the failures of a stalled stack when a run is requested: one more failure backs off", async () => {
      const t = setup({ stallAfter: 2 });
      t.source.add("a", { intervalSeconds: 600 });
      t.engine.plan("a", "fail", "fail", "fail");
      const s = t.make();
      await s.start();
      await t.clock.advance(MINUTE);
      assert.equal(s.get("a")?.phase, "stalled");
      assert.equal(s.requestRun("a").accepted, true);
      assert.equal(s.get("a")?.consecutiveFailures, 0);
      await t.clock.advance(2 * SECOND);
      assert.equal(t.engine.previews("a").length, 3);
      assert.equal(s.get("a")?.phase, "backoff");
      assert.equal(s.get("a")?.consecutiveFailures, 1);
      await s.stop();
    });

    it("treats a locked stack as busy: retried soon, not counted as a failure", async () => {
      const t = setup({ busyRetryMs: 15 * SECOND });
      t.source.add("a", { intervalSeconds: 600 });
      t.engine.plan("a", "busy", "busy");
      const s = t.make();
      await s.start();
      await t.clock.advance(1 * SECOND);
      assert.equal(s.get("a")?.lastPass?.outcome, "busy");
      assert.equal(s.get("a")?.consecutiveFailures, 0);
      await t.clock.advance(40 * SECOND);
      const starts = t.engine.previews("a").map((c) => c.start);
      assert.deepEqual(starts, [0, 16 * SECOND, 32 * SECOND]);
      assert.equal(s.get("a")?.phase, "in-sync");
      await s.stop();
    });

    it("keeps reconciling the other stacks when one stack file is broken", async () => {
      const t = setup();
      t.source.add("a");
      t.source.add("c");
      t.source.stacks.push({
        name: "b",
        file: "/p/stacks/Pulumi.b.yaml",
        fileHash: "x",
        error: "stacks/Pulumi.b.yaml: nodePools[0].max: must be ≥ min (3)",
      });
      const s = t.make();
      await s.start();
      await t.clock.advance(5 * MINUTE);
      assert.ok(t.engine.previews("a").length >= 4);
      assert.ok(t.engine.previews("c").length >= 4);
      assert.equal(t.engine.previews("b").length, 0);
      assert.equal(s.get("b")?.phase, "invalid");
      assert.equal(s.get("b")?.message, "stacks/Pulumi.b.yaml: nodePools[0].max: must be ≥ min (3)");
      assert.deepEqual(s.requestRun("b"), { accepted: false, reason: "not-runnable", status: s.get("b") });
      await s.stop();
    });
  });

  describe("orphans and decommissioning", () => {
    it("reports a backend stack without a file as orphaned and never destroys it", async () => {
      const t = setup();
      t.source.add("a");
      t.engine.backendStacks = ["a", "ghost"];
      const s = t.make();
      await s.start();
      await t.clock.advance(10 * MINUTE);
      assert.equal(s.get("ghost")?.phase, "orphaned");
      assert.equal(t.engine.calls.filter((c) => c.stack === "ghost").length, 0);
      assert.equal(t.engine.calls.filter((c) => c.op === "destroy").length, 0);
      await s.stop();
    });

    it("destroys only a stack whose file says g8s:decommission: true, once", async () => {
      const t = setup();
      t.source.add("a", { decommission: true });
      const s = t.make();
      await s.start();
      await t.clock.advance(10 * MINUTE);
      assert.deepEqual(
        t.engine.calls.map((c) => [c.op, c.stack]),
        [["destroy", "a"]],
      );
      assert.equal(s.get("a")?.phase, "destroyed");
      await s.stop();
    });
  });

  describe("shutdown", () => {
    it("aborts running operations through their signal, waits for them, and starts nothing new", async () => {
      const t = setup();
      t.engine.durationMs = 10 * MINUTE;
      t.source.add("a");
      t.source.add("b");
      t.source.add("c");
      const s = t.make();
      await s.start();
      await t.clock.advance(0);
      assert.equal(t.engine.inFlight, 2);
      const stopped = s.stop(30 * SECOND);
      await settle();
      await stopped;
      assert.equal(t.engine.inFlight, 0);
      assert.deepEqual(
        t.engine.calls.map((c) => [c.stack, c.outcome, c.end]),
        [
          ["a", "OperationAbortedError", 0],
          ["b", "OperationAbortedError", 0],
        ],
      );
      assert.equal(s.get("a")?.lastPass?.outcome, "aborted");
      await t.clock.advance(60 * MINUTE);
      assert.equal(t.engine.calls.length, 2, "nothing runs after stop");
      assert.equal(t.clock.pending, 0, "no timers left behind");
      assert.deepEqual(s.requestRun("a"), { accepted: false, reason: "shutting-down", status: s.get("a") });
    });

    it("persists status when it stops", async () => {
      const t = setup();
      t.source.add("a");
      const s = t.make();
      await s.start();
      await t.clock.advance(2 * SECOND);
      await s.stop();
      assert.equal(t.store.saved.find((x) => x.name === "a")?.phase, "in-sync");
    });

    it("saves what changed since the last pass when it stops", async () => {
      const t = setup();
      t.source.add("a");
      const s = t.make();
      await s.start();
      await t.clock.advance(2 * SECOND);
      assert.equal(t.store.saved.find((x) => x.name === "a")?.phase, "in-sync");
      // Discovery sees the file broken: a phase change no pass has saved yet.
      t.source.stacks = [{ ...t.source.stacks[0], fileHash: "h2", settings: undefined, error: "broken" }];
      await t.clock.advance(5 * SECOND);
      assert.equal(s.get("a")?.phase, "invalid");
      await s.stop();
      assert.equal(t.store.saved.find((x) => x.name === "a")?.phase, "invalid");
    });

    it("is idempotent: a second start starts nothing more, a second stop does nothing", async () => {
      const t = setup();
      t.source.add("a", { intervalSeconds: 100 });
      const s = t.make();
      await Promise.all([s.start(), s.start()]);
      await s.start();
      assert.equal(t.engine.orphanSweeps, 1, "start-up (lock sweep, discovery) ran once");
      await t.clock.advance(150 * SECOND);
      assert.deepEqual(
        t.engine.previews("a").map((c) => c.start),
        [0, 101 * SECOND],
        "one schedule, not two",
      );
      await s.stop();
      const saves = t.store.saves;
      const lines = t.log.lines.length;
      await s.stop();
      assert.equal(t.store.saves, saves, "the second stop saved nothing");
      assert.equal(t.log.lines.length, lines);
      assert.equal(t.clock.pending, 0);
    });
  });

  describe("restart", () => {
    it("keeps status across a restart: last success, failures, stall", async () => {
      const t = setup({ stallAfter: 2 });
      t.source.add("a");
      t.source.add("b");
      t.engine.plan("b", "fail", "fail");
      const first = t.make();
      await first.start();
      await t.clock.advance(MINUTE);
      await first.stop();
      const lastSuccess = first.get("a")?.lastSuccessAt;
      assert.ok(lastSuccess);

      const second = t.make();
      await second.start();
      assert.equal(second.get("a")?.lastSuccessAt, lastSuccess);
      assert.equal(second.get("b")?.phase, "stalled");
      assert.equal(second.get("b")?.consecutiveFailures, 2);
      const previews = t.engine.previews("b").length;
      await t.clock.advance(30 * MINUTE);
      assert.equal(t.engine.previews("b").length, previews, "still stalled after the restart");
      await second.stop();
    });

    it("keeps needs-attention across a restart: the stack is not run over its pending creates", async () => {
      const t = interruptedUpdate({}, { urn: "urn:pulumi:a::p::t::r", type: "t", op: "creating" });
      const first = t.make();
      await first.start();
      await first.stop();
      assert.equal(t.store.saved.find((x) => x.name === "a")?.phase, "needs-attention");

      const second = t.make();
      await second.start();
      await t.clock.advance(30 * MINUTE);
      assert.equal(second.get("a")?.phase, "needs-attention");
      assert.equal(second.get("a")?.message, "interrupted update left 1 pending create(s): urn:pulumi:a::p::t::r");
      assert.equal(t.engine.calls.length, 0);
      await second.stop();
    });

    it("marks a stack whose update was interrupted with pending creates as needs-attention", async () => {
      const t = interruptedUpdate(
        {},
        { urn: "urn:pulumi:a::p::t::r", type: "t", op: "creating" },
        { urn: "urn:pulumi:a::p::t::q", type: "t", op: "updating" },
      );
      const s = t.make();
      await s.start();
      await t.clock.advance(10 * MINUTE);
      assert.equal(s.get("a")?.phase, "needs-attention");
      assert.equal(s.get("a")?.message, "interrupted update left 1 pending create(s): urn:pulumi:a::p::t::r");
      assert.equal(t.engine.calls.length, 0);
      assert.deepEqual(t.engine.cleared, [], "pending operations are kept unless configured");
      await s.stop();
    });

    it("clears pending operations only when configured, then reconciles at once", async () => {
      const t = interruptedUpdate(
        { clearPendingOperations: true },
        { urn: "urn:pulumi:a::p::t::r", type: "t", op: "creating" },
      );
      const s = t.make();
      await s.start();
      await t.clock.advance(2 * SECOND);
      assert.deepEqual(t.engine.cleared, ["a"]);
      assert.equal(t.engine.previews("a")[0].start, 0);
      await s.stop();
    });

    it("reconciles at once after an interrupted update that left only pending updates", async () => {
      const t = interruptedUpdate({}, { urn: "urn:pulumi:a::p::t::r", type: "t", op: "updating" });
      const s = t.make();
      await s.start();
      await t.clock.advance(2 * SECOND);
      assert.equal(t.engine.previews("a")[0].start, 0);
      assert.deepEqual(t.engine.cleared, []);
      assert.equal(s.get("a")?.phase, "in-sync");
      await s.stop();
    });

    it("logs every stale lock it cleared at start", async () => {
      const t = setup();
      t.engine.staleLocks = [
        { stack: "a", pid: 4242, host: "here", file: "/b/.pulumi/locks/a/x.json", owner: "zombie" },
      ];
      t.engine.orphans = [5151];
      const s = t.make();
      await s.start();
      const entry = t.log.lines.find((l) => l.msg === "cleared a stale backend lock");
      assert.deepEqual(entry?.obj, {
        stack: "a",
        ownerPid: 4242,
        ownerHost: "here",
        ownerState: "zombie",
        file: "/b/.pulumi/locks/a/x.json",
      });
      assert.equal(t.engine.orphanSweeps, 1, "engine processes of the dead run are looked for at start");
      assert.ok(t.log.messages("warn").includes("ended engine processes left by a dead run"));
      await s.stop();
    });
  });

  describe("urgent runs: changes, requests and repairs go ahead of routine checks", () => {
    const inSync = (name: string, fileHash = "h1") => ({
      name,
      phase: "in-sync" as const,
      mode: "correct" as const,
      intervalSeconds: 60,
      consecutiveFailures: 0,
      fileHash,
    });
    /** Stacks a, b, c in sync before a restart, and one worker: routine first checks all fall due at 0. */
    function restartedWithRoutine(extra: string) {
      const t = setup({ concurrency: 1, random: () => 0 });
      for (const name of ["a", "b", "c", extra]) t.source.add(name);
      t.store.saved = ["a", "b", "c"].map((n) => inSync(n));
      return t;
    }
    const order = (t: ReturnType<typeof setup>) =>
      t.engine.calls
        .filter((c) => c.op === "preview")
        .sort((x, y) => x.start - y.start)
        .map((c) => c.stack);

    it("runs a stack whose update a crash interrupted before the routine checks due with it", async () => {
      const t = restartedWithRoutine("x");
      t.store.saved.push({ ...inSync("x"), phase: "running" });
      t.engine.pending.set("x", [{ urn: "urn:pulumi:x::p::t::r", type: "t", op: "updating" }]);
      const s = t.make();
      await s.start();
      await t.clock.advance(10 * SECOND);
      assert.deepEqual(order(t), ["x", "a", "b", "c"]);
      await s.stop();
    });

    it("runs a stack whose file changed while the daemon was down first, its failures forgotten", async () => {
      const t = restartedWithRoutine("x");
      t.store.saved.push({ ...inSync("x", "h0"), phase: "backoff", consecutiveFailures: 2 });
      const s = t.make();
      await s.start();
      assert.equal(s.get("x")?.consecutiveFailures, 0);
      await t.clock.advance(10 * SECOND);
      assert.deepEqual(order(t), ["x", "a", "b", "c"]);
      await s.stop();
    });

    it("moves a queued stack ahead when a run is requested or its file changes", async () => {
      const t = setup({ concurrency: 1, random: () => 0 });
      for (const name of ["a", "b", "c", "d", "e"]) t.source.add(name, { intervalSeconds: 600 });
      t.engine.durationMs = 4 * SECOND;
      const s = t.make();
      await s.start();
      await t.clock.advance(0);
      assert.deepEqual(
        ["a", "b", "c", "d", "e"].map((n) => s.get(n)?.phase),
        ["running", "queued", "queued", "queued", "queued"],
      );
      assert.equal(s.requestRun("e").accepted, true);
      t.source.add("d", { intervalSeconds: 600 }, "h2"); // seen by the discovery at 5 s
      await t.clock.advance(30 * SECOND);
      // e asked for at 0 runs after a; d changed at 5 s, after e; the routine b and c last.
      assert.deepEqual(order(t), ["a", "e", "d", "b", "c"]);
      await s.stop();
    });
  });

  describe("pass timeout", () => {
    it("aborts a pass that runs longer than the timeout and counts it as a failure, then backs off", async () => {
      const t = setup({ passTimeoutMs: 5 * SECOND, backoffBaseMs: 10 * SECOND });
      t.source.add("a", { intervalSeconds: 600 });
      t.engine.durationMs = 60 * SECOND; // an engine waiting on an API that is gone
      const s = t.make();
      await s.start();
      await t.clock.advance(6 * SECOND);
      const status = s.get("a");
      assert.equal(status?.lastPass?.outcome, "failed");
      assert.equal(status?.lastPass?.error, "detect: timed out after 5 s");
      assert.equal(status?.phase, "backoff");
      assert.equal(status?.consecutiveFailures, 1);
      assert.equal(t.engine.inFlight, 0, "the engine operation was aborted");
      t.engine.durationMs = SECOND;
      await t.clock.advance(12 * SECOND);
      assert.equal(s.get("a")?.phase, "in-sync", "recovers once the engine answers again");
      await s.stop();
    });
  });

  describe("backend locks", () => {
    it("re-examines the lock when a pass ends busy: a dead owner's lock is cleared and the pass rerun at once", async () => {
      const t = setup({ busyRetryMs: 15 * SECOND });
      t.source.add("a", { intervalSeconds: 600 });
      t.engine.plan("a", "busy");
      const s = t.make();
      await s.start();
      // The owner died after start's sweep (it was still a zombie then): only the busy pass sees it.
      t.engine.staleLocks = [{ stack: "a", pid: 77, host: "here", file: "/l/a/1.json", owner: "exited" }];
      await t.clock.advance(3 * SECOND);
      const starts = t.engine.previews("a").map((c) => c.start);
      assert.deepEqual(starts, [0, SECOND], "retried as soon as the busy pass ended, not after 15 s");
      assert.equal(s.get("a")?.phase, "in-sync");
      assert.equal(t.log.messages("warn").filter((m) => m === "cleared a stale backend lock").length, 1);
      assert.equal(s.get("a")?.busySince, undefined);
      await s.stop();
    });

    it("leaves a live owner's lock alone and retries after the busy interval", async () => {
      const t = setup({ busyRetryMs: 15 * SECOND });
      t.source.add("a", { intervalSeconds: 600 });
      t.engine.plan("a", "busy");
      t.engine.heldLocks.set("a", { stack: "a", pid: 88, host: "here", file: "/l/a/2.json", owner: "alive" });
      t.engine.staleLocks = [{ stack: "b", pid: 99, host: "here", file: "/l/b/3.json", owner: "exited" }];
      const s = t.make();
      await s.start();
      t.engine.staleLocks = [{ stack: "b", pid: 99, host: "here", file: "/l/b/3.json", owner: "exited" }];
      await t.clock.advance(3 * SECOND);
      assert.equal(s.get("a")?.lockOwner?.pid, 88);
      assert.equal(t.engine.staleLocks.length, 1, "another stack's lock is not touched by a's busy pass");
      await t.clock.advance(15 * SECOND);
      assert.deepEqual(
        t.engine.previews("a").map((c) => c.start),
        [0, 16 * SECOND],
      );
      await s.stop();
    });

    it("shows a stack busy longer than the bound as stuck, with the lock's owner, until a pass succeeds", async () => {
      const t = setup({ busyRetryMs: 15 * SECOND, busyStuckAfterMs: 150 * SECOND });
      t.source.add("a", { intervalSeconds: 600 });
      t.engine.plan("a", ...Array<"busy">(12).fill("busy"));
      t.engine.heldLocks.set("a", {
        stack: "a",
        pid: 31337,
        host: "ci-runner-7",
        since: "2026-01-01T00:00:00Z",
        file: "/l/a/4.json",
        owner: "other-host",
      });
      const s = t.make();
      await s.start();
      await t.clock.advance(100 * SECOND);
      assert.match(s.get("a")?.message ?? "", /^busy: /, "not stuck yet after 100 s");
      assert.equal(s.get("a")?.busySince, new Date(SECOND).toISOString());
      await t.clock.advance(80 * SECOND);
      const status = s.get("a");
      assert.match(
        status?.message ?? "",
        /^busy for 1\d\d s: the backend lock is held by pid 31337 on ci-runner-7 \(another host: g8s cannot tell whether it still runs\); retrying$/,
      );
      assert.deepEqual(status?.lockOwner, {
        pid: 31337,
        host: "ci-runner-7",
        since: "2026-01-01T00:00:00Z",
        owner: "other-host",
      });
      assert.ok(t.log.messages("warn").includes("stack stuck on a backend lock"));
      t.engine.heldLocks.delete("a");
      await t.clock.advance(60 * SECOND);
      assert.equal(s.get("a")?.phase, "in-sync");
      assert.equal(s.get("a")?.busySince, undefined);
      assert.equal(s.get("a")?.lockOwner, undefined);
      await s.stop();
    });
  });

  describe("runOnce", () => {
    it("runs each named stack once and returns their records", async () => {
      const t = setup();
      t.source.add("a");
      t.source.add("b");
      t.engine.plan("b", "drift");
      const s = t.make();
      const done = s.runOnce(["a", "b"]);
      await t.clock.advance(10 * SECOND);
      const records = await done;
      assert.deepEqual(
        records.map((r) => [r.stack, r.outcome]),
        [
          ["a", "in-sync"],
          ["b", "corrected"],
        ],
      );
      assert.equal(t.clock.pending, 0);
    });

    it("refuses stacks without a file", async () => {
      const t = setup();
      const s = t.make();
      await assert.rejects(s.runOnce(["nope"]), /no stack file for nope in stacks\//);
    });
  });
});
