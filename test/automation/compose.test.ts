/** The composition root wires the parts together: checked through what a built reconciler does. */
import * as assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Writable } from "node:stream";
import { buildReconciler } from "../../automation/compose";
import { loadSettings } from "../../automation/config";
import { PROJECT_ROOT } from "../../automation/engine";
import { FakeClock, FakeEngine, whileAdvancing } from "./fakes";

describe("the composition root", () => {
  let stateDir: string;
  beforeEach(() => (stateDir = mkdtempSync(path.join(tmpdir(), "g8s-compose-"))));
  afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

  it("checks the g8s policies before every up: a mandatory violation blocks it, shown as blocked", async () => {
    const clock = new FakeClock();
    const engine = new FakeEngine(clock);
    engine.plan("edge8", "drift");
    // The update would leave an etcd volume without `protect`: etcd-volumes-protected is mandatory.
    engine.resources.set("edge8", [
      {
        urn: "urn:pulumi:edge8::g8s::aws:ebs/volume:Volume::edge8-etcd-0",
        type: "aws:ebs/volume:Volume",
        name: "edge8-etcd-0",
        props: { tags: { Name: "edge8-etcd-0", "g8s.io/cluster": "edge8" } },
        protect: false,
      },
    ]);
    const settings = loadSettings({
      flags: { projectDir: PROJECT_ROOT, stateDir, stacks: "edge8" },
      env: {},
      cwd: PROJECT_ROOT,
      defaultProjectDir: PROJECT_ROOT,
    });
    const silent = new Writable({ write: (_chunk, _enc, cb) => cb() });
    const { scheduler, registry } = await buildReconciler(settings, { env: {}, engine, clock, logDestination: silent });
    const [record] = await whileAdvancing(clock, scheduler.runOnce(["edge8"]));
    assert.equal(record.outcome, "blocked");
    assert.deepEqual(
      record.violations?.map((v) => v.policy),
      ["etcd-volumes-protected"],
    );
    assert.equal(engine.ups().length, 0);
    // Not a success, in status and in metrics alike.
    assert.equal(scheduler.get("edge8")?.phase, "blocked");
    assert.equal(scheduler.get("edge8")?.lastSuccessAt, undefined);
    const metrics = await registry.metrics();
    assert.match(metrics, /^g8s_stack_phase\{stack="edge8",phase="blocked"\} 1$/m);
    assert.match(metrics, /^g8s_stacks\{phase="blocked"\} 1$/m);
    assert.match(metrics, /^g8s_reconcile_passes_total\{stack="edge8",outcome="blocked"\} 1$/m);
    assert.doesNotMatch(metrics, /^g8s_stack_last_success_timestamp_seconds\{stack="edge8"\}/m);
  });
});
