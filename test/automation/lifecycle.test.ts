import * as assert from "node:assert/strict";
import type { DiscoveredStack } from "../../automation/reconciler/discovery";
import {
  discovered,
  enqueued,
  interrupted,
  isDue,
  NOT_REQUESTABLE,
  passEnded,
  progressed,
  runRequested,
  changeNoticed,
  started,
  stopped,
  type PassEndContext,
  type RetryPolicy,
  type StackState,
} from "../../automation/reconciler/lifecycle";
import {
  PASS_OUTCOMES,
  STACK_PHASES,
  type PassOutcome,
  type PassRecord,
  type StackPhase,
  type StackStatus,
} from "../../automation/reconciler/types";

const NOW = 1_000_000;
const at = (ms: number) => new Date(ms).toISOString();
const EARLIER = at(NOW - 60_000);

function stack(extra: Partial<DiscoveredStack> = {}): DiscoveredStack {
  return {
    name: "a",
    file: "/p/stacks/Pulumi.a.yaml",
    fileHash: "h1",
    settings: { mode: "correct", intervalSeconds: 100, decommission: false },
    ...extra,
  };
}

function state(status: Partial<StackStatus> = {}, extra: Partial<StackState> = {}): StackState {
  return {
    stack: stack(),
    runAgain: false,
    urgent: false,
    status: {
      name: "a",
      phase: "pending",
      mode: "correct",
      intervalSeconds: 100,
      consecutiveFailures: 0,
      file: "/p/stacks/Pulumi.a.yaml",
      fileHash: "h1",
      ...status,
    },
    ...extra,
  };
}

/** The fields a transition decides, for compact expectations. */
function decided(s: StackState) {
  const { phase, nextRunAt, consecutiveFailures, message, lastSuccessAt } = s.status;
  return { phase, nextRunAt, consecutiveFailures, message, lastSuccessAt, runAgain: s.runAgain, urgent: s.urgent };
}

const POLICY: RetryPolicy = {
  backoffBaseMs: 10_000,
  backoffMaxMs: 3_600_000,
  stallAfter: 3,
  busyRetryMs: 15_000,
  busyStuckAfterMs: 150_000,
};

describe("the stack state machine", () => {
  describe("discovered: what a discovered stack becomes", () => {
    const ctx = (extra: { restored?: StackStatus; inFlight?: boolean } = {}) => ({
      now: NOW,
      jitter: () => 0.05,
      inFlight: false,
      ...extra,
    });
    const fresh = { consecutiveFailures: 0, message: undefined, lastSuccessAt: undefined, runAgain: false };
    const changed = { ...fresh, phase: "pending" as const, nextRunAt: at(NOW), urgent: true };
    const firstRun = at(NOW + 5_000); // 0.05 of the 100 s interval
    const cases: Array<{
      name: string;
      from?: StackState;
      restored?: StackStatus;
      inFlight?: boolean;
      found: DiscoveredStack;
      expect: Partial<ReturnType<typeof decided>>;
    }> = [
      {
        name: "a new stack is pending, first run spread over the jitter window, not urgent",
        found: stack(),
        expect: { ...fresh, phase: "pending", nextRunAt: firstRun, urgent: false },
      },
      {
        name: "a stack in sync before a restart is scheduled over the jitter window, not urgent",
        restored: state({ phase: "in-sync", lastSuccessAt: EARLIER, nextRunAt: EARLIER }).status,
        found: stack(),
        expect: { phase: "pending", nextRunAt: firstRun, lastSuccessAt: EARLIER, urgent: false },
      },
      {
        name: "a stack whose file changed while the daemon was down runs at once, urgent",
        restored: state({ phase: "in-sync", fileHash: "h0", nextRunAt: EARLIER }).status,
        found: stack(),
        expect: changed,
      },
      {
        name: "a stack stalled before a restart stays stalled while its file is the same",
        restored: state({ phase: "stalled", consecutiveFailures: 3, message: "stalled" }).status,
        found: stack(),
        expect: { phase: "stalled", nextRunAt: undefined, consecutiveFailures: 3, message: "stalled" },
      },
      {
        name: "a stack that needed attention before a restart still does while its file is the same",
        restored: state({ phase: "needs-attention", message: "pending creates" }).status,
        found: stack(),
        expect: { phase: "needs-attention", nextRunAt: undefined, message: "pending creates" },
      },
      {
        name: "a stack stalled before a restart whose file changed meanwhile runs at once, failures forgotten",
        restored: state({ phase: "stalled", consecutiveFailures: 3, fileHash: "h0" }).status,
        found: stack(),
        expect: changed,
      },
      {
        name: "a stack restored as running waits for its pending operations to be read",
        restored: state({ phase: "running", nextRunAt: EARLIER }).status,
        found: stack(),
        expect: { phase: "running", nextRunAt: undefined },
      },
      {
        name: "a stack restored as running whose file changed meanwhile still waits for them",
        restored: state({ phase: "running", fileHash: "h0" }).status,
        found: stack(),
        expect: { phase: "running", nextRunAt: undefined, urgent: false },
      },
      {
        name: "a backend stack without a file is orphaned",
        from: state({ phase: "in-sync", nextRunAt: at(NOW + 1) }),
        found: { name: "a", inBackend: true },
        expect: {
          phase: "orphaned",
          nextRunAt: undefined,
          message:
            "in the backend without a stack file: nothing is destroyed; a file with g8s:decommission: a removes it",
        },
      },
      {
        name: "a broken file is invalid",
        from: state({ phase: "queued" }),
        found: stack({ fileHash: "h2", settings: undefined, error: "stacks/Pulumi.a.yaml: id: required" }),
        expect: { phase: "invalid", nextRunAt: undefined, message: "stacks/Pulumi.a.yaml: id: required" },
      },
      {
        name: "mode off is off",
        found: stack({ settings: { mode: "off", intervalSeconds: 100, decommission: false } }),
        expect: { phase: "off", nextRunAt: undefined, message: "g8s:reconcile.mode is off" },
      },
      {
        name: "mode off is off even with g8s:decommission (off runs nothing)",
        found: stack({ settings: { mode: "off", intervalSeconds: 100, decommission: true } }),
        expect: { phase: "off", nextRunAt: undefined },
      },
      {
        name: "a changed file runs at once, failures and message forgotten",
        from: state({ phase: "backoff", consecutiveFailures: 2, message: "boom", nextRunAt: at(NOW + 40_000) }),
        found: stack({ fileHash: "h2" }),
        expect: changed,
      },
      {
        name: "a changed file un-stalls a stalled stack",
        from: state({ phase: "stalled", consecutiveFailures: 5, message: "stalled" }),
        found: stack({ fileHash: "h2" }),
        expect: changed,
      },
      {
        name: "a changed file during a pass runs again as soon as the pass ends",
        from: state({ phase: "running", consecutiveFailures: 1 }),
        inFlight: true,
        found: stack({ fileHash: "h2" }),
        expect: { phase: "running", nextRunAt: undefined, consecutiveFailures: 0, runAgain: true, urgent: true },
      },
      {
        name: "a changed file of a queued stack stays queued, now urgent",
        from: state({ phase: "queued", consecutiveFailures: 1 }),
        found: stack({ fileHash: "h2" }),
        expect: { phase: "queued", nextRunAt: undefined, consecutiveFailures: 0, urgent: true },
      },
      {
        name: "an invalid file that parses again is pending and scheduled",
        from: state({ phase: "invalid", message: "broken" }),
        found: stack(),
        expect: { ...fresh, phase: "pending", nextRunAt: firstRun },
      },
      {
        name: "an unchanged stalled stack stays stalled",
        from: state({ phase: "stalled", consecutiveFailures: 5 }),
        found: stack(),
        expect: { phase: "stalled", nextRunAt: undefined, consecutiveFailures: 5 },
      },
      {
        name: "an unchanged destroyed stack stays destroyed",
        from: state({ phase: "destroyed" }),
        found: stack({ settings: { mode: "correct", intervalSeconds: 100, decommission: true } }),
        expect: { phase: "destroyed", nextRunAt: undefined },
      },
      {
        name: "an unchanged scheduled stack keeps its next run",
        from: state({ phase: "in-sync", nextRunAt: at(NOW + 42_000) }),
        found: stack(),
        expect: { phase: "in-sync", nextRunAt: at(NOW + 42_000), urgent: false },
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const next = discovered(c.from, c.found, ctx({ restored: c.restored, inFlight: c.inFlight ?? false }));
        const got = decided(next);
        assert.deepEqual(
          Object.fromEntries(Object.keys(c.expect).map((k) => [k, got[k as keyof typeof got]])),
          c.expect,
        );
        assert.equal(next.stack, c.found);
      });
    }

    it("draws the jitter only for a stack it schedules afresh", () => {
      let draws = 0;
      const jitter = () => (draws++, 0);
      discovered(state({ phase: "in-sync", nextRunAt: at(NOW) }), stack(), { now: NOW, jitter, inFlight: false });
      discovered(state({ phase: "stalled" }), stack(), { now: NOW, jitter, inFlight: false });
      assert.equal(draws, 0);
      discovered(undefined, stack(), { now: NOW, jitter, inFlight: false });
      assert.equal(draws, 1);
    });
  });

  describe("interrupted: a stack restored as running", () => {
    const creating = { urn: "urn:pulumi:a::p::t::r", type: "t", op: "creating" };
    const updating = { urn: "urn:pulumi:a::p::t::q", type: "t", op: "updating" };
    const cases = [
      {
        name: "pending creates need a person",
        pending: [creating, updating],
        clear: false,
        expect: {
          phase: "needs-attention",
          nextRunAt: undefined,
          message: "interrupted update left 1 pending create(s): urn:pulumi:a::p::t::r",
        },
        clearPending: false,
        urgent: false,
      },
      {
        name: "pending creates are dropped when configured, and the stack runs at once",
        pending: [creating],
        clear: true,
        expect: { phase: "pending", nextRunAt: at(NOW), message: "previous run was interrupted: reconciling now" },
        clearPending: true,
        urgent: true,
      },
      {
        name: "pending updates are settled by the next update: the stack runs at once",
        pending: [updating],
        clear: false,
        expect: { phase: "pending", nextRunAt: at(NOW), message: "previous run was interrupted: reconciling now" },
        clearPending: false,
        urgent: true,
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const d = interrupted(state({ phase: "running" }), c.pending, { now: NOW, clearPendingOperations: c.clear });
        const { phase, nextRunAt, message } = d.state.status;
        assert.deepEqual({ phase, nextRunAt, message }, c.expect);
        assert.equal(d.clearPending, c.clearPending);
        assert.equal(d.state.urgent, c.urgent, "a repair goes ahead of routine checks");
      });
    }
  });

  describe("queue and worker", () => {
    it("enqueued: queued, no next run", () => {
      const s = enqueued(state({ phase: "pending", nextRunAt: at(NOW) }));
      assert.deepEqual([s.status.phase, s.status.nextRunAt], ["queued", undefined]);
    });

    it("started: running, no next run, no longer urgent", () => {
      const s = started(state({ phase: "queued" }, { urgent: true }));
      assert.equal(s.status.phase, "running");
      assert.equal(s.status.nextRunAt, undefined);
      assert.equal(s.urgent, false);
    });

    it("stopped: a queued stack goes back to pending; any other phase is left alone", () => {
      for (const phase of STACK_PHASES) {
        assert.equal(stopped(state({ phase })).status.phase, phase === "queued" ? "pending" : phase, phase);
      }
    });

    it("is due when its next run has come and it holds no place in the queue or a worker", () => {
      assert.equal(isDue(state({ phase: "in-sync", nextRunAt: at(NOW) }).status, NOW), true);
      assert.equal(isDue(state({ phase: "in-sync", nextRunAt: at(NOW + 1) }).status, NOW), false);
      assert.equal(isDue(state({ phase: "stalled" }).status, NOW), false);
      assert.equal(isDue(state({ phase: "queued", nextRunAt: at(NOW) }).status, NOW), false);
      assert.equal(isDue(state({ phase: "running", nextRunAt: at(NOW) }).status, NOW), false);
    });
  });

  describe("changeNoticed: someone else changed what the stack manages", () => {
    const expectations: Record<StackPhase, string> = {
      pending: "now",
      queued: "stays queued, urgent",
      running: "runs again",
      "in-sync": "now",
      drifted: "now",
      blocked: "now",
      backoff: "now",
      stalled: "parked",
      invalid: "parked",
      orphaned: "parked",
      "needs-attention": "parked",
      off: "parked",
      destroyed: "parked",
    };
    for (const phase of STACK_PHASES) {
      it(`${phase}: ${expectations[phase]}`, () => {
        const next = changeNoticed(state({ phase, consecutiveFailures: 2, nextRunAt: at(NOW + 9) }), NOW);
        const got =
          next === undefined
            ? "parked"
            : next.runAgain
              ? "runs again"
              : next.status.phase === "queued"
                ? "stays queued, urgent"
                : "now";
        assert.equal(got, expectations[phase]);
        if (got === "now") {
          assert.deepEqual([next?.status.phase, next?.status.nextRunAt, next?.urgent], ["pending", at(NOW), true]);
        }
        if (got === "stays queued, urgent") assert.equal(next?.urgent, true);
        // An event forgets no failure: it is not a person's answer to a stall or a backoff.
        if (next) assert.equal(next.status.consecutiveFailures, 2);
      });
    }
  });

  describe("runRequested: a run asked for through the API", () => {
    const expectations: Record<StackPhase, string> = {
      pending: "queued",
      queued: "queued",
      running: "runs again",
      "in-sync": "queued",
      drifted: "queued",
      blocked: "queued",
      backoff: "queued",
      stalled: "queued",
      invalid: "refused",
      orphaned: "refused",
      "needs-attention": "queued",
      off: "refused",
      destroyed: "refused",
    };
    for (const phase of STACK_PHASES) {
      it(`${phase}: ${expectations[phase]}`, () => {
        const answer = runRequested(state({ phase, consecutiveFailures: 4, nextRunAt: at(NOW + 9) }));
        if (!answer.accepted) {
          assert.equal(expectations[phase], "refused");
          assert.ok(NOT_REQUESTABLE.has(phase));
          return;
        }
        const s = answer.state;
        if (expectations[phase] === "runs again") {
          assert.deepEqual([s.status.phase, s.runAgain], ["running", true]);
        } else {
          // A person waits for it: ahead of routine checks.
          assert.deepEqual([s.status.phase, s.runAgain, s.urgent], ["queued", false, true]);
        }
        // Only a stalled stack starts afresh: elsewhere the count tells how long it has been failing.
        assert.equal(s.status.consecutiveFailures, phase === "stalled" ? 0 : 4);
      });
    }
  });

  describe("passEnded: what an outcome does to phase, next run, failures and message", () => {
    const drift = [{ urn: "urn:pulumi:a::p::t::r", type: "t", name: "r", op: "update", keys: ["content"] }];
    const record = (outcome: PassOutcome, extra: Partial<PassRecord> = {}): PassRecord => ({
      stack: "a",
      outcome,
      mode: "correct",
      startedAt: at(NOW - 1000),
      durationMs: 1000,
      drift: [],
      ...extra,
    });
    const ctx = (extra: Partial<PassEndContext> = {}): PassEndContext => ({
      now: NOW,
      policy: POLICY,
      jitter: () => 0.05,
      ...extra,
    });
    const onInterval = at(NOW + 105_000); // 100 s × (1 + 0.05)
    const failing = { consecutiveFailures: 1, lastSuccessAt: EARLIER, message: "boom" };
    const success = { consecutiveFailures: 0, lastSuccessAt: at(NOW), message: undefined };
    const cases: Array<{
      name: string;
      from?: Partial<StackStatus>;
      runAgain?: boolean;
      record: PassRecord;
      ctx?: Partial<PassEndContext>;
      expect: Partial<ReturnType<typeof decided>>;
    }> = [
      {
        name: "in-sync: in-sync, a success, next run on the interval",
        from: failing,
        record: record("in-sync"),
        expect: { phase: "in-sync", ...success, nextRunAt: onInterval, urgent: false },
      },
      {
        name: "corrected: in-sync, a success",
        from: failing,
        record: record("corrected", { drift }),
        expect: { phase: "in-sync", ...success, nextRunAt: onInterval },
      },
      {
        name: "drifted (mode detect): drifted, a success (the pass did what the mode asks)",
        from: failing,
        record: record("drifted", { drift }),
        expect: { phase: "drifted", ...success, nextRunAt: onInterval },
      },
      {
        name: "blocked: blocked, neither a success nor a failure; the next run on the interval",
        from: failing,
        record: record("blocked", { drift, error: "policy: [mandatory] x: y" }),
        expect: {
          phase: "blocked",
          consecutiveFailures: 1,
          lastSuccessAt: EARLIER,
          message: "up blocked: policy: [mandatory] x: y",
          nextRunAt: onInterval,
        },
      },
      {
        name: "busy: pending, retried after the busy interval, not a failure",
        from: failing,
        record: record("busy", { error: "locked" }),
        expect: {
          phase: "pending",
          consecutiveFailures: 1,
          lastSuccessAt: EARLIER,
          message: "busy: locked; retrying",
          nextRunAt: at(NOW + 15_000),
        },
      },
      {
        name: "busy with a dead owner's lock cleared: pending, at once, urgent (a crash's repair)",
        record: record("busy"),
        ctx: { lock: { cleared: true } },
        expect: {
          phase: "pending",
          message: "a dead process's backend lock was cleared: retrying now",
          nextRunAt: at(NOW),
          urgent: true,
        },
      },
      {
        name: "busy for longer than the bound: the lock's owner in the message",
        from: { busySince: at(NOW - 160_000) },
        record: record("busy"),
        ctx: { lock: { cleared: false, holder: { stack: "a", pid: 7, host: "h", file: "/l", owner: "alive" } } },
        expect: {
          phase: "pending",
          message: "busy for 160 s: the backend lock is held by pid 7 on h; retrying",
          urgent: false,
        },
      },
      {
        name: "aborted (shutdown): pending, not scheduled",
        from: { nextRunAt: at(NOW + 1) },
        record: record("aborted"),
        expect: { phase: "pending", message: "aborted by shutdown", nextRunAt: undefined },
      },
      {
        name: "destroyed: destroyed, parked",
        record: record("destroyed"),
        expect: { phase: "destroyed", message: "decommissioned: stack resources destroyed", nextRunAt: undefined },
      },
      {
        name: "skipped: off, parked",
        record: record("skipped"),
        expect: { phase: "off", message: "g8s:reconcile.mode is off", nextRunAt: undefined },
      },
      {
        name: "invalid: invalid, parked, with the file's problems",
        record: record("invalid", { error: "stacks/Pulumi.a.yaml: id: required" }),
        expect: { phase: "invalid", message: "stacks/Pulumi.a.yaml: id: required", nextRunAt: undefined },
      },
      {
        name: "failed: backoff, one more failure, retried after the backoff",
        from: failing,
        record: record("failed", { error: "detect: engine failed" }),
        expect: {
          phase: "backoff",
          consecutiveFailures: 2,
          lastSuccessAt: EARLIER,
          message: "detect: engine failed",
          nextRunAt: at(NOW + 20_000),
        },
      },
      {
        name: "failed for the stallAfter-th time in a row: stalled, parked",
        from: { consecutiveFailures: 2 },
        record: record("failed", { error: "boom" }),
        expect: {
          phase: "stalled",
          consecutiveFailures: 3,
          message: "stalled after 3 consecutive failures: change the stack file or request a run",
          nextRunAt: undefined,
        },
      },
      {
        name: "a run asked for during the pass follows at once, urgent",
        runAgain: true,
        record: record("in-sync"),
        expect: { phase: "in-sync", nextRunAt: at(NOW), runAgain: false, urgent: true },
      },
      {
        name: "a run asked for during the pass follows at once even after a failure",
        runAgain: true,
        record: record("failed", { error: "boom" }),
        expect: { phase: "backoff", consecutiveFailures: 1, nextRunAt: at(NOW), runAgain: false },
      },
      {
        name: "a run asked for during the pass does not lift a stall",
        from: { consecutiveFailures: 2 },
        runAgain: true,
        record: record("failed", { error: "boom" }),
        expect: { phase: "stalled", nextRunAt: undefined, runAgain: false },
      },
      {
        name: "a run asked for during the pass is dropped by a shutdown",
        runAgain: true,
        record: record("aborted"),
        expect: { phase: "pending", nextRunAt: undefined, runAgain: false, urgent: false },
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const from = state({ phase: "running", ...c.from }, { runAgain: c.runAgain ?? false });
        const next = passEnded(from, c.record, ctx(c.ctx));
        const got = decided(next);
        assert.deepEqual(
          Object.fromEntries(Object.keys(c.expect).map((k) => [k, got[k as keyof typeof got]])),
          c.expect,
        );
        assert.equal(next.status.lastPass, c.record);
      });
    }

    it("covers every outcome", () => {
      const covered = new Set(cases.map((c) => c.record.outcome));
      assert.deepEqual(
        PASS_OUTCOMES.filter((o) => !covered.has(o)),
        [],
      );
    });

    it("records the drift of every pass that found some, blocked ones included", () => {
      for (const outcome of ["corrected", "drifted", "blocked"] as const) {
        const next = passEnded(state({ phase: "running" }), record(outcome, { drift }), ctx());
        assert.equal(next.status.lastDriftAt, at(NOW), outcome);
        assert.equal(next.status.lastDrift?.outcome, outcome);
      }
    });

    it("keeps busySince across busy passes and clears it and the lock owner on any other outcome", () => {
      const busy = state({ phase: "running", busySince: EARLIER, lockOwner: { pid: 1, host: "h", owner: "alive" } });
      assert.equal(passEnded(busy, record("busy"), ctx()).status.busySince, EARLIER);
      const after = passEnded(busy, record("in-sync"), ctx()).status;
      assert.deepEqual([after.busySince, after.lockOwner], [undefined, undefined]);
    });

    it("judges the stack file a pass found in sync or corrected; a blocked or invalid one unjudges it, a failure keeps it", () => {
      const judged = (outcome: PassOutcome, before?: string) =>
        passEnded(state({ phase: "running" }, { judged: before }), record(outcome, { fileHash: "h2" }), ctx()).judged;
      for (const outcome of PASS_OUTCOMES) {
        const expected = {
          "in-sync": "h2",
          corrected: "h2",
          busy: "h1",
          failed: "h1",
          aborted: "h1",
        }[outcome as string];
        assert.equal(judged(outcome, "h1"), expected, outcome);
      }
    });
  });

  it("changeNoticed marks the change and started takes it into the pass", () => {
    const noticed = changeNoticed(state({ phase: "in-sync" }), NOW);
    assert.equal(noticed?.changed, true);
    assert.equal(changeNoticed(state({ phase: "running" }), NOW)?.changed, true);
    assert.equal(changeNoticed(state({ phase: "queued" }), NOW)?.changed, true);
    assert.equal(started(enqueued(noticed as StackState)).changed, false);
  });

  it("shows a running pass's progress as its message, which the pass's end replaces", () => {
    const running = progressed(started(state({ phase: "queued" })), "upgrade: master-1: cordon and drain");
    assert.equal(running.status.message, "upgrade: master-1: cordon and drain");
    assert.equal(progressed(state({ phase: "in-sync" }), "late").status.message, undefined, "only while running");
    const ended = passEnded(
      running,
      { stack: "a", outcome: "corrected", mode: "correct", startedAt: at(NOW - 1000), durationMs: 1000, drift: [] },
      { now: NOW, policy: POLICY, jitter: () => 0 },
    );
    assert.equal(ended.status.message, undefined);
  });
});
