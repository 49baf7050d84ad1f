import * as assert from "node:assert/strict";
import { afterPreview, hasChanges, passStart, runPass } from "../../automation/reconciler/pass";
import type { DiscoveredStack } from "../../automation/reconciler/discovery";
import { EngineFailure } from "../../automation/reconciler/types";
import { FakeClock, FakeEngine } from "./fakes";

const stack = (settings: Partial<NonNullable<DiscoveredStack["settings"]>> = {}): DiscoveredStack => ({
  name: "s",
  file: "/p/stacks/Pulumi.s.yaml",
  fileHash: "h",
  settings: { mode: "correct", intervalSeconds: 60, decommission: false, ...settings },
});

describe("one pass", () => {
  let clock: FakeClock;
  let engine: FakeEngine;
  const ctx = () => ({
    engine,
    clock,
    signal: new AbortController().signal,
    redact: (t: string) => t.replace("s3cr3t", "[redacted]"),
  });
  beforeEach(() => {
    clock = new FakeClock();
    engine = new FakeEngine(clock);
  });

  async function run(s: DiscoveredStack) {
    const pending = runPass(s, ctx());
    await clock.advance(10_000);
    return pending;
  }

  it("calls anything but same a change", () => {
    assert.equal(hasChanges({ same: 4 }), false);
    assert.equal(hasChanges({ same: 4, update: 0 }), false);
    assert.equal(hasChanges({ same: 4, delete: 1 }), true);
    assert.equal(hasChanges({}), false);
  });

  it("records detection and correction times", async () => {
    engine.plan("s", "drift");
    const record = await run(stack());
    assert.equal(record.outcome, "corrected");
    assert.equal(record.detectMs, 1000);
    assert.equal(record.correctMs, 1000);
    assert.equal(record.durationMs, 2000);
  });

  it("refuses a kubernetes.version the running cluster cannot take, before any preview, naming the file's field", async () => {
    const cluster = (version: string, nodeImage = true): DiscoveredStack => ({
      ...stack(),
      kubernetes: { version, field: "stacks/Pulumi.s.yaml: kubernetes.version", nodeImage },
    });
    engine.outputs.set("s", { kubernetesVersion: "1.32.4" });
    engine.plan("s", "drift");
    const skip = await run(cluster("1.34.1"));
    assert.equal(skip.outcome, "invalid");
    assert.match(
      skip.error ?? "",
      /^stacks\/Pulumi\.s\.yaml: kubernetes\.version: 1\.34\.1 skips minor 1\.33 from the 1\.32\.4 the cluster runs: .*set 1\.33\.x first$/,
    );
    const down = await run(cluster("1.32.2"));
    assert.equal(down.outcome, "invalid");
    assert.match(
      down.error ?? "",
      /1\.32\.2 is older than the 1\.32\.4 the cluster runs: Kubernetes does not downgrade/,
    );
    assert.equal(engine.previews("s").length + engine.ups("s").length, 0, "neither previewed nor applied");
    // One minor up, a patch up, the same: the pass goes on. A stack without state yet: too.
    for (const ok of ["1.33.0", "1.32.9", "1.32.4"]) {
      engine.plan("s", "drift");
      assert.equal((await run(cluster(ok))).outcome, "corrected", ok);
    }
    // Nodes from apt: no version change of a running cluster at all; the same version is fine.
    const apt = await run(cluster("1.32.9", false));
    assert.equal(apt.outcome, "invalid");
    assert.match(
      apt.error ?? "",
      /kubernetes\.version: 1\.32\.9 changes the version of a running cluster whose nodes install Kubernetes from apt/,
    );
    engine.plan("s", "drift");
    assert.equal((await run(cluster("1.32.4", false))).outcome, "corrected");
    engine.outputs.delete("s");
    engine.plan("s", "drift");
    assert.equal((await run(cluster("1.34.1"))).outcome, "corrected", "nothing runs yet");
  });

  it("drains a node pool the update removes before the update, and keeps the pool when it cannot", async () => {
    const preview = engine.previewRefresh.bind(engine);
    engine.previewRefresh = async (name, options) => {
      const p = await preview(name, options);
      const pool = {
        urn: "urn:pulumi:s::g8s::g8s:kvm:NodePool::c1-pool-extra",
        type: "g8s:kvm:NodePool",
        name: "c1-pool-extra",
        op: "delete",
        keys: [],
      };
      return { ...p, drift: [...p.drift, pool] };
    };
    const calls: string[] = [];
    let fail = false;
    const drainPools = async (_s: DiscoveredStack, components: readonly string[]) => {
      calls.push(`drain ${components.join(",")} (ups so far: ${engine.ups("s").length})`);
      if (fail) throw new Error("cannot drain c1-pool-extra before the update removes it: pods left");
      return {
        record: { pools: { extra: ["pool-extra-0"] }, evicted: 3, ms: 1200 },
        finish: async () => void calls.push(`finish (ups so far: ${engine.ups("s").length})`),
      };
    };
    engine.plan("s", "drift");
    const pending = runPass(stack(), { ...ctx(), drainPools });
    await clock.advance(10_000);
    const done = await pending;
    assert.equal(done.outcome, "corrected");
    assert.deepEqual(done.drained, { pools: { extra: ["pool-extra-0"] }, evicted: 3, ms: 1200 });
    assert.deepEqual(calls, ["drain c1-pool-extra (ups so far: 0)", "finish (ups so far: 1)"]);

    fail = true;
    engine.plan("s", "drift");
    const refused = runPass(stack(), { ...ctx(), drainPools });
    await clock.advance(10_000);
    const kept = await refused;
    assert.equal(kept.outcome, "failed");
    assert.equal(kept.error, "drain: cannot drain c1-pool-extra before the update removes it: pods left");
    assert.equal(engine.ups("s").length, 1, "no update without the drain");
  });

  it("rolls the cluster to the file's version after the update, in mode correct only, and fails the pass when a node does", async () => {
    const calls: string[] = [];
    let result: "none" | "rolled" | "fail" = "rolled";
    const said: string[] = [];
    const upgrade = async (s: DiscoveredStack, _signal: AbortSignal, progress: (line: string) => void) => {
      calls.push(`upgrade ${s.name} (ups so far: ${engine.ups("s").length})`);
      progress("master-0: cordon and drain");
      if (result === "fail") throw new Error("master-1: g8s-upgrade-v1-35-4 failed (the node stays cordoned): …");
      return result === "none"
        ? undefined
        : { from: "v1.34.12", to: "v1.35.4", nodes: [{ node: "master-0", seconds: 61.2 }], seconds: 70 };
    };
    const go = async (s: DiscoveredStack) => {
      const pending = runPass(s, { ...ctx(), upgrade, progress: (line: string) => void said.push(line) });
      await clock.advance(10_000);
      return pending;
    };
    engine.plan("s", "drift");
    const rolled = await go(stack());
    assert.equal(rolled.outcome, "corrected");
    assert.deepEqual(rolled.upgrade?.nodes, [{ node: "master-0", seconds: 61.2 }]);
    assert.deepEqual(calls, ["upgrade s (ups so far: 1)"], "after the update");
    assert.deepEqual(said, ["upgrade: master-0: cordon and drain"], "the status message while it runs");
    // In sync, but the nodes run another version: the rollout is the correction.
    const inSync = await go(stack());
    assert.equal(inSync.outcome, "corrected");
    assert.equal(inSync.upgrade?.to, "v1.35.4");
    result = "none";
    assert.equal((await go(stack())).outcome, "in-sync");
    assert.equal((await go(stack())).upgrade, undefined);
    result = "fail";
    const failed = await go(stack());
    assert.equal(failed.outcome, "failed");
    assert.match(failed.error ?? "", /^upgrade: master-1: g8s-upgrade-v1-35-4 failed/);
    calls.length = 0;
    result = "rolled";
    assert.equal((await go(stack({ mode: "detect" }))).outcome, "in-sync");
    engine.plan("s", "drift");
    assert.equal((await go(stack({ mode: "detect" }))).outcome, "drifted");
    assert.deepEqual(calls, [], "detect never touches the nodes");
  });

  it("restarts KVM nodes behind their template before the upgrade, records them, and fails the pass (phase roll) when a node does", async () => {
    const calls: string[] = [];
    let roll: "none" | "rolled" | "fail" = "rolled";
    const said: string[] = [];
    const ctxWith = () => ({
      ...ctx(),
      roll: async (s: DiscoveredStack, _signal: AbortSignal, progress: (line: string) => void) => {
        calls.push(`roll ${s.name} (ups so far: ${engine.ups("s").length})`);
        progress("pool-a-0: cordon and drain");
        if (roll === "fail") throw new Error("pool-a-0: not back on the new template 900 s after its pod was deleted");
        return roll === "none" ? undefined : { nodes: [{ node: "pool-a-0", seconds: 48.5 }], seconds: 50 };
      },
      upgrade: async () => {
        calls.push("upgrade");
        return undefined;
      },
      progress: (line: string) => void said.push(line),
    });
    const go = async (s: DiscoveredStack) => {
      const pending = runPass(s, ctxWith());
      await clock.advance(10_000);
      return pending;
    };
    engine.plan("s", "drift");
    const rolled = await go(stack());
    assert.equal(rolled.outcome, "corrected");
    assert.deepEqual(rolled.rolled?.nodes, [{ node: "pool-a-0", seconds: 48.5 }]);
    assert.deepEqual(calls, ["roll s (ups so far: 1)", "upgrade"], "after the update, before the upgrade");
    assert.deepEqual(said, ["roll: pool-a-0: cordon and drain"]);
    // In sync, a node still behind (an earlier roll stopped): the restart is the correction.
    assert.equal((await go(stack())).outcome, "corrected");
    roll = "none";
    const quiet = await go(stack());
    assert.equal(quiet.outcome, "in-sync");
    assert.equal(quiet.rolled, undefined);
    roll = "fail";
    calls.length = 0;
    const failed = await go(stack());
    assert.equal(failed.outcome, "failed");
    assert.match(failed.error ?? "", /^roll: pool-a-0: not back on the new template/);
    assert.deepEqual(calls, ["roll s (ups so far: 1)"], "no upgrade after a failed roll");
    calls.length = 0;
    roll = "rolled";
    assert.equal((await go(stack({ mode: "detect" }))).outcome, "in-sync");
    assert.deepEqual(calls, [], "detect never touches the nodes");
  });

  it("redacts the error text of a failed pass", async () => {
    engine.previewRefresh = async () => {
      throw new Error("bad passphrase s3cr3t");
    };
    const record = await run(stack());
    assert.equal(record.outcome, "failed");
    assert.equal(record.error, "detect: bad passphrase [redacted]");
  });

  it("records an engine failure as one line with its cause, and the engine's output apart, both redacted", async () => {
    engine.previewRefresh = async () => {
      throw new EngineFailure(
        "pulumi preview failed: disk full",
        "Previewing update (s):\n  error: disk full (s3cr3t)",
      );
    };
    const record = await run(stack());
    assert.equal(record.outcome, "failed");
    assert.equal(record.error, "detect: pulumi preview failed: disk full");
    assert.equal(record.output, "Previewing update (s):\n  error: disk full ([redacted])");
  });

  it("blocks the up when the desired state violates a mandatory policy", async () => {
    engine.plan("s", "drift");
    const original = engine.previewRefresh.bind(engine);
    engine.previewRefresh = async (name, options) => ({
      ...(await original(name, options)),
      resources: [
        {
          urn: "urn:pulumi:s::p::aws:ebs/volume:Volume::etcd-0",
          type: "aws:ebs/volume:Volume",
          name: "etcd-0",
          props: {},
          protect: false,
        },
      ],
    });
    const pending = runPass(stack(), {
      ...ctx(),
      checkPolicies: async (_s, resources) =>
        resources.map((r) => ({
          policy: "etcd-volumes-protected",
          enforcementLevel: "mandatory",
          message: "not protected",
          urn: r.urn,
        })),
    });
    await clock.advance(10_000);
    const record = await pending;
    assert.equal(record.outcome, "blocked");
    assert.equal(engine.ups().length, 0, "no up");
    assert.equal(record.error, "policy: [mandatory] etcd-volumes-protected: not protected (etcd-0)");
  });

  it("corrects despite advisory violations and records them", async () => {
    engine.plan("s", "drift");
    const original = engine.previewRefresh.bind(engine);
    engine.previewRefresh = async (name, options) => ({ ...(await original(name, options)), resources: [] });
    const pending = runPass(stack(), {
      ...ctx(),
      checkPolicies: async () => [{ policy: "p", enforcementLevel: "advisory", message: "consider" }],
    });
    await clock.advance(10_000);
    const record = await pending;
    assert.equal(record.outcome, "corrected");
    assert.deepEqual(
      record.violations?.map((v) => v.policy),
      ["p"],
    );
  });

  it("runs nothing for an invalid file", async () => {
    const record = await run({ name: "s", file: "/f", fileHash: "h", error: "stacks/Pulumi.s.yaml: id: is required" });
    assert.equal(record.outcome, "invalid");
    assert.equal(engine.calls.length, 0);
  });

  it("decides from the stack file what a pass starts with: invalid, skip (off wins over decommission), destroy, detect", () => {
    assert.deepEqual(passStart({ name: "s", file: "/f", fileHash: "h", error: "bad" }), {
      kind: "invalid",
      error: "bad",
    });
    assert.deepEqual(passStart({ name: "s" }), { kind: "invalid", error: "no stack file" });
    assert.deepEqual(passStart(stack({ mode: "off", decommission: true })), { kind: "skip" });
    assert.deepEqual(passStart(stack({ decommission: true })), { kind: "destroy" });
    assert.deepEqual(passStart(stack({ mode: "detect", decommission: true })), { kind: "destroy" });
    assert.deepEqual(passStart(stack({ mode: "detect" })), { kind: "detect", mode: "detect" });
  });

  it("checks the policies after a preview only when an up would follow", async () => {
    const advisory = { policy: "p", enforcementLevel: "advisory", message: "m" };
    const blocking = { ...advisory, enforcementLevel: "mandatory" };
    const cases = [
      { mode: "correct", summary: { same: 3 }, found: [blocking], verdict: "in-sync", checked: false },
      { mode: "detect", summary: { update: 1 }, found: [blocking], verdict: "drifted", checked: false },
      { mode: "correct", summary: { update: 1 }, found: [advisory], verdict: "correct", checked: true },
      { mode: "correct", summary: { create: 1 }, found: [advisory, blocking], verdict: "blocked", checked: true },
    ] as const;
    for (const c of cases) {
      let checked = false;
      const d = await afterPreview(c.mode, { changeSummary: c.summary }, async () => ((checked = true), c.found));
      assert.deepEqual([d.verdict, checked], [c.verdict, c.checked], JSON.stringify(c));
    }
  });
});
