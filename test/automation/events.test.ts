import * as assert from "node:assert/strict";
import pino from "pino";
import { classify, HostWatch, type HostChange } from "../../automation/events/hostWatch";
import type { KubeApi } from "../../automation/host/https";
import { ChangeTrigger } from "../../automation/events/trigger";
import { OWN_CHANGE_WINDOW_MS } from "../../automation/reconciler/scheduler";
import { FakeClock, setup } from "./fakes";

const SECOND = 1000;

/** What the watch keeps of an object: its stack, content fingerprint and managed-field entries. */
function known(fingerprint: string, managers: Record<string, string>) {
  return {
    stack: "it7",
    fingerprint,
    managers: new Map(Object.entries(managers)),
    label: "StatefulSet g8s-it7/master",
  };
}

const APPLIED = { "pulumi-kubernetes-3e4f|Apply|": "2026-12-02T10:00:00Z" };
const STATUS = { "kube-controller-manager|Update|status": "2026-12-02T10:00:01Z" };

describe("events: changes g8s did not make", () => {
  describe("classify: a watched object's change, attributed by its managed fields", () => {
    const cases: Array<{
      name: string;
      before?: ReturnType<typeof known>;
      now: ReturnType<typeof known>;
      expect: unknown;
    }> = [
      {
        name: "a change to status only is no change",
        before: known("f1", { ...APPLIED, ...STATUS }),
        now: known("f1", { ...APPLIED, "kube-controller-manager|Update|status": "2026-12-02T10:05:00Z" }),
        expect: undefined,
      },
      {
        name: "the provider's own apply is g8s's change: not reported",
        before: known("f1", APPLIED),
        now: known("f2", { "pulumi-kubernetes-3e4f|Apply|": "2026-12-02T10:09:00Z" }),
        expect: undefined,
      },
      {
        name: "an object the provider created is not reported",
        now: known("f1", APPLIED),
        expect: undefined,
      },
      {
        name: "kubectl scale (the scale subresource) is someone else's change",
        before: known("f1", APPLIED),
        now: known("f2", { ...APPLIED, "kubectl|Update|scale": "2026-12-02T10:09:00Z" }),
        expect: { stack: "it7", attributed: true, what: "StatefulSet g8s-it7/master changed by kubectl" },
      },
      {
        name: "a second edit by the same manager in a later second is seen by its time",
        before: known("f1", { ...APPLIED, "kubectl-edit|Update|": "2026-12-02T10:01:00Z" }),
        now: known("f2", { ...APPLIED, "kubectl-edit|Update|": "2026-12-02T10:02:00Z" }),
        expect: { stack: "it7", attributed: true, what: "StatefulSet g8s-it7/master changed by kubectl-edit" },
      },
      {
        name: "a content change no entry explains (same second) is unattributed",
        before: known("f1", { ...APPLIED, "kubectl-edit|Update|": "2026-12-02T10:01:00Z" }),
        now: known("f2", { ...APPLIED, "kubectl-edit|Update|": "2026-12-02T10:01:00Z" }),
        expect: { stack: "it7", attributed: false, what: "StatefulSet g8s-it7/master changed" },
      },
      {
        name: "a content change in the same second on an object only the provider wrote is its own",
        before: known("f1", { ...APPLIED, ...STATUS }),
        now: known("f2", { ...APPLIED, ...STATUS }),
        expect: undefined,
      },
      {
        name: "an object someone else created is reported",
        now: known("f1", { "kubectl-create|Update|": "2026-12-02T10:01:00Z" }),
        expect: { stack: "it7", attributed: true, what: "StatefulSet g8s-it7/master created by kubectl-create" },
      },
    ];
    for (const c of cases) {
      it(c.name, () => assert.deepEqual(classify(c.before, c.now), c.expect));
    }
  });

  describe("ChangeTrigger: a burst of changes becomes one pass", () => {
    function trigger() {
      const clock = new FakeClock();
      const fired: Array<[number, string, boolean, readonly string[]]> = [];
      const t = new ChangeTrigger({
        clock,
        quietMs: 500,
        maxWaitMs: 2000,
        fire: (stack, attributed, what) => fired.push([clock.now(), stack, attributed, what]),
      });
      return { clock, fired, t };
    }

    it("fires once the stack has been quiet for 500 ms, with every change, attributed if one was", async () => {
      const { clock, fired, t } = trigger();
      t.notice("a", false, "Service g8s-a/api deleted");
      await clock.advance(300);
      t.notice("a", true, "StatefulSet g8s-a/master changed by kubectl");
      await clock.advance(499);
      assert.deepEqual(fired, []);
      await clock.advance(1);
      assert.deepEqual(fired, [
        [800, "a", true, ["Service g8s-a/api deleted", "StatefulSet g8s-a/master changed by kubectl"]],
      ]);
    });

    it("fires at most 2 s after the first change while changes keep coming", async () => {
      const { clock, fired, t } = trigger();
      for (let i = 0; i < 10; i++) {
        t.notice("a", true, `change ${i}`);
        await clock.advance(400);
      }
      assert.equal(fired[0][0], 2000);
      assert.equal(fired[0][3].length, 5);
    });

    it("keeps stacks apart, and fires nothing after stop", async () => {
      const { clock, fired, t } = trigger();
      t.notice("a", true, "x");
      t.notice("b", false, "y");
      await clock.advance(SECOND);
      assert.deepEqual(
        fired.map((f) => [f[1], f[2]]),
        [
          ["a", true],
          ["b", false],
        ],
      );
      t.notice("a", true, "z");
      t.stop();
      await clock.advance(5 * SECOND);
      assert.equal(fired.length, 2);
    });
  });

  describe("Scheduler.noticeChange: a pass now, ahead of routine checks", () => {
    /** Stack "a" on a 1 h interval, its passes taking `passMs`, the daemon `ms` into its first pass. */
    async function started(passMs: number, ms: number) {
      const t = setup();
      t.source.add("a", { intervalSeconds: 3600 });
      t.engine.durationMs = passMs;
      const s = t.make();
      await s.start();
      await t.clock.advance(ms);
      return { t, s };
    }

    /** When each pass over "a" began (its first engine operation: a preview, or an up at once). */
    const passStarts = (t: ReturnType<typeof setup>) =>
      t.engine.calls
        .filter((c) => c.stack === "a" && (c.op === "preview" || c.op === "up"))
        .map((c) => `${c.op}@${c.start}`);

    it("runs an idle stack at once instead of at its interval, correcting at once what a pass found in sync", async () => {
      const { t, s } = await started(SECOND, 10 * SECOND);
      t.engine.plan("a", "drift");
      assert.equal(s.noticeChange("a", true, ["StatefulSet g8s-a/master changed by kubectl"]), "run");
      await t.clock.advance(0);
      // The first pass previewed the stack and found it in sync: the change goes straight to an up.
      assert.deepEqual(passStarts(t), ["preview@0", `up@${10 * SECOND}`]);
      assert.ok(t.log.messages("info").includes("change noticed: reconciling now"));
      await t.clock.advance(SECOND);
      const pass = s.get("a")?.lastPass;
      assert.equal(pass?.outcome, "corrected");
      assert.equal(pass?.direct, true);
      assert.equal(pass?.detectMs, undefined);
      assert.equal(pass?.correctMs, SECOND);
      assert.deepEqual(
        pass?.drift.map((d) => d.urn),
        ["urn:pulumi:a::p::t::r"],
      );
      assert.equal(s.get("a")?.lastDrift?.startedAt, pass?.startedAt);
      await s.stop();
    });

    it("records an update at once that changed nothing as in sync", async () => {
      const { t, s } = await started(SECOND, 10 * SECOND);
      s.noticeChange("a", true, ["x"]);
      await t.clock.advance(SECOND);
      const pass = s.get("a")?.lastPass;
      assert.deepEqual([pass?.outcome, pass?.direct, pass?.drift], ["in-sync", true, []]);
      assert.equal(s.get("a")?.lastDrift, undefined);
      await s.stop();
    });

    it("previews first when no pass has judged the desired state: a new file, a failure, a new checkout, mode detect", async () => {
      // The first pass failed: nothing judged the file yet.
      const t = setup();
      t.source.add("a", { intervalSeconds: 3600 });
      t.engine.plan("a", "fail");
      const s = t.make();
      await s.start();
      await t.clock.advance(10 * SECOND);
      s.noticeChange("a", true, ["x"]);
      await t.clock.advance(10 * SECOND);
      assert.deepEqual(passStarts(t), ["preview@0", `preview@${10 * SECOND}`]);
      // Judged in sync by that preview; then a new checkout: preview again.
      await s.refresh();
      s.noticeChange("a", true, ["x"]);
      await t.clock.advance(10 * SECOND);
      assert.deepEqual(passStarts(t).slice(2), [`preview@${20 * SECOND}`]);
      // Judged again: at once.
      s.noticeChange("a", true, ["x"]);
      await t.clock.advance(10 * SECOND);
      assert.deepEqual(passStarts(t).slice(3), [`up@${30 * SECOND}`]);
      // A new stack file: its first pass previews, even for a change noticed before it ran.
      t.source.add("a", { intervalSeconds: 3600 }, "h2");
      s.noticeChange("a", true, ["x"]);
      await s.refresh();
      await t.clock.advance(10 * SECOND);
      assert.deepEqual(passStarts(t).slice(4), [`preview@${40 * SECOND}`]);
      // Mode detect only reports.
      t.source.add("a", { intervalSeconds: 3600, mode: "detect" }, "h3");
      await s.refresh();
      await t.clock.advance(10 * SECOND);
      s.noticeChange("a", true, ["x"]);
      await t.clock.advance(10 * SECOND);
      assert.deepEqual(passStarts(t).slice(5), [`preview@${50 * SECOND}`, `preview@${60 * SECOND}`]);
      await s.stop();
    });

    it("runs again after the running pass for someone else's change made during it", async () => {
      const { t, s } = await started(4 * SECOND, SECOND);
      assert.equal(s.noticeChange("a", true, ["x"]), "runs-again");
      await t.clock.advance(10 * SECOND);
      assert.deepEqual(passStarts(t), ["preview@0", `up@${4 * SECOND}`]);
      await s.stop();
    });

    it("takes an unattributed change (a deletion) during or just after its own operation as its own", async () => {
      const { t, s } = await started(4 * SECOND, SECOND);
      assert.equal(s.noticeChange("a", false, ["Service g8s-a/api deleted"]), "own-operation");
      await t.clock.advance(3 * SECOND + OWN_CHANGE_WINDOW_MS - 1); // the pass ended at 4 s
      assert.equal(s.noticeChange("a", false, ["Service g8s-a/api deleted"]), "own-operation");
      await t.clock.advance(1);
      assert.equal(s.noticeChange("a", false, ["Service g8s-a/api deleted"]), "run");
      await t.clock.advance(10 * SECOND);
      assert.equal(passStarts(t).length, 2);
      await s.stop();
    });

    it("leaves a stalled stack stalled and ignores a stack it does not know", async () => {
      const t = setup({ stallAfter: 1 });
      t.source.add("a");
      t.engine.plan("a", "fail");
      const s = t.make();
      await s.start();
      await t.clock.advance(10 * SECOND);
      assert.equal(s.get("a")?.phase, "stalled");
      assert.equal(s.noticeChange("a", true, ["x"]), "parked");
      assert.equal(s.noticeChange("nope", true, ["x"]), "unknown-stack");
      await t.clock.advance(10 * SECOND);
      assert.equal(t.engine.previews("a").length, 1);
      await s.stop();
    });
  });
});

describe("HostWatch: after a failed watch, listing again reports what changed meanwhile", () => {
  const obj = (uid: string, name: string, content: string, managers: Record<string, string>) => ({
    metadata: {
      uid,
      name,
      namespace: "g8s-it7",
      labels: { "g8s.io/cluster": "it7" },
      managedFields: Object.entries(managers).map(([manager, time]) => ({ manager, operation: "Update", time })),
    },
    data: { content },
  });

  it("reports a change by someone else and a deletion, and nothing from the first list", async () => {
    const clock = new FakeClock();
    const lists = [
      [obj("u1", "master-secrets", "a", { "pulumi-kubernetes-1": "T1" }), obj("u2", "worker-secrets", "b", {})],
      [obj("u1", "master-secrets", "forged", { "pulumi-kubernetes-1": "T1", "kubectl-patch": "T2" })],
    ];
    let listed = 0;
    const api = {
      get: async () => ({ metadata: { resourceVersion: String(++listed) }, items: lists[Math.min(listed - 1, 1)] }),
    } as unknown as KubeApi;
    const changes: HostChange[] = [];
    const watch = new HostWatch({
      api,
      server: "https://127.0.0.1:1", // nothing listens: every watch fails at once
      tls: { ca: "" },
      clock,
      log: pino({ level: "silent" }),
      onChange: (c) => changes.push(c),
      kinds: [{ kind: "Secret", path: "/api/v1/secrets" }],
    });
    await watch.start();
    await watch.start(); // idempotent: no second set of loops
    assert.equal(listed, 1);
    assert.deepEqual(changes, [], "the first list only learns what is there");
    for (let i = 0; i < 100 && changes.length < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20)); // the failed watch, on real time
      await clock.advance(SECOND); // its retry delay, on the fake clock
    }
    await watch.stop();
    assert.deepEqual(changes, [
      { stack: "it7", attributed: true, what: "Secret g8s-it7/master-secrets changed by kubectl-patch" },
      { stack: "it7", attributed: false, what: "Secret g8s-it7/worker-secrets deleted" },
    ]);
  });
});
