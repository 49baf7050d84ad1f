import * as assert from "node:assert/strict";
import { Registry, register as globalRegistry } from "prom-client";
import { ReconcilerMetrics } from "../../automation/reconciler/metrics";
import type { PassRecord, ResourceDrift, StackStatus } from "../../automation/reconciler/types";

function pass(overrides: Partial<PassRecord> & Pick<PassRecord, "stack" | "outcome">): PassRecord {
  return { mode: "correct", startedAt: "2026-01-01T00:00:00.000Z", durationMs: 1000, drift: [], ...overrides };
}

function status(overrides: Partial<StackStatus> & Pick<StackStatus, "name" | "phase">): StackStatus {
  return { mode: "correct", intervalSeconds: 300, consecutiveFailures: 0, ...overrides };
}

const drift = (name: string): ResourceDrift => ({
  urn: `urn:pulumi:eu1prod::g8s::aws:ec2/vpc:Vpc::${name}`,
  type: "aws:ec2/vpc:Vpc",
  name,
  op: "update",
  keys: ["tags"],
});

/** The exposition lines of one metric family (samples only, no HELP/TYPE). */
async function samples(registry: Registry, family: string): Promise<string[]> {
  const text = await registry.metrics();
  return text.split("\n").filter((line) => line.startsWith(`${family}{`) || line.startsWith(`${family} `));
}

describe("ReconcilerMetrics", () => {
  let registry: Registry;
  let metrics: ReconcilerMetrics;
  beforeEach(() => {
    registry = new Registry();
    metrics = new ReconcilerMetrics(registry);
  });

  it("registers on the injected registry only, with help and type lines", async () => {
    const text = await registry.metrics();
    assert.match(text, /^# TYPE g8s_reconcile_passes_total counter$/m);
    assert.match(text, /^# TYPE g8s_reconcile_duration_seconds histogram$/m);
    assert.match(text, /^# TYPE g8s_stack_phase gauge$/m);
    assert.equal(globalRegistry.getSingleMetric("g8s_reconcile_passes_total"), undefined);
    // A second instance on another registry does not collide with the first.
    assert.doesNotThrow(() => new ReconcilerMetrics(new Registry()));
  });

  it("counts passes by stack and outcome, starting a new stack's outcomes at 0", async () => {
    metrics.observePass(pass({ stack: "eu1prod", outcome: "in-sync" }));
    metrics.observePass(pass({ stack: "eu1prod", outcome: "in-sync" }));
    metrics.observePass(pass({ stack: "eu1prod", outcome: "failed", error: "boom" }));
    assert.deepEqual(await samples(registry, "g8s_reconcile_passes_total"), [
      'g8s_reconcile_passes_total{stack="eu1prod",outcome="in-sync"} 2',
      'g8s_reconcile_passes_total{stack="eu1prod",outcome="corrected"} 0',
      'g8s_reconcile_passes_total{stack="eu1prod",outcome="drifted"} 0',
      'g8s_reconcile_passes_total{stack="eu1prod",outcome="blocked"} 0',
      'g8s_reconcile_passes_total{stack="eu1prod",outcome="skipped"} 0',
      'g8s_reconcile_passes_total{stack="eu1prod",outcome="destroyed"} 0',
      'g8s_reconcile_passes_total{stack="eu1prod",outcome="busy"} 0',
      'g8s_reconcile_passes_total{stack="eu1prod",outcome="invalid"} 0',
      'g8s_reconcile_passes_total{stack="eu1prod",outcome="aborted"} 0',
      'g8s_reconcile_passes_total{stack="eu1prod",outcome="failed"} 1',
    ]);
  });

  it("observes pass durations in seconds in buckets from 1s to 30min", async () => {
    metrics.observePass(pass({ stack: "edge7", outcome: "corrected", durationMs: 4200, drift: [drift("a")] }));
    metrics.observePass(pass({ stack: "edge7", outcome: "corrected", durationMs: 1_900_000, drift: [drift("a")] }));
    assert.deepEqual(await samples(registry, "g8s_reconcile_duration_seconds_bucket"), [
      'g8s_reconcile_duration_seconds_bucket{le="1",stack="edge7",outcome="corrected"} 0',
      'g8s_reconcile_duration_seconds_bucket{le="2.5",stack="edge7",outcome="corrected"} 0',
      'g8s_reconcile_duration_seconds_bucket{le="5",stack="edge7",outcome="corrected"} 1',
      'g8s_reconcile_duration_seconds_bucket{le="10",stack="edge7",outcome="corrected"} 1',
      'g8s_reconcile_duration_seconds_bucket{le="30",stack="edge7",outcome="corrected"} 1',
      'g8s_reconcile_duration_seconds_bucket{le="60",stack="edge7",outcome="corrected"} 1',
      'g8s_reconcile_duration_seconds_bucket{le="120",stack="edge7",outcome="corrected"} 1',
      'g8s_reconcile_duration_seconds_bucket{le="300",stack="edge7",outcome="corrected"} 1',
      'g8s_reconcile_duration_seconds_bucket{le="600",stack="edge7",outcome="corrected"} 1',
      'g8s_reconcile_duration_seconds_bucket{le="1200",stack="edge7",outcome="corrected"} 1',
      'g8s_reconcile_duration_seconds_bucket{le="1800",stack="edge7",outcome="corrected"} 1',
      'g8s_reconcile_duration_seconds_bucket{le="+Inf",stack="edge7",outcome="corrected"} 2',
    ]);
    assert.deepEqual(await samples(registry, "g8s_reconcile_duration_seconds_sum"), [
      'g8s_reconcile_duration_seconds_sum{stack="edge7",outcome="corrected"} 1904.2',
    ]);
    assert.deepEqual(await samples(registry, "g8s_reconcile_duration_seconds_count"), [
      'g8s_reconcile_duration_seconds_count{stack="edge7",outcome="corrected"} 2',
    ]);
  });

  it("counts passes that found drift and the drifted resources, including a failed correction", async () => {
    metrics.observePass(pass({ stack: "eu1prod", outcome: "in-sync" }));
    metrics.observePass(
      pass({ stack: "eu1prod", outcome: "drifted", mode: "detect", drift: [drift("a"), drift("b")] }),
    );
    metrics.observePass(pass({ stack: "eu1prod", outcome: "failed", drift: [drift("c")], error: "up failed" }));
    metrics.observePass(pass({ stack: "edge7", outcome: "in-sync" }));
    assert.deepEqual(await samples(registry, "g8s_drift_detected_total"), [
      'g8s_drift_detected_total{stack="eu1prod"} 2',
      'g8s_drift_detected_total{stack="edge7"} 0',
    ]);
    assert.deepEqual(await samples(registry, "g8s_drifted_resources_total"), [
      'g8s_drifted_resources_total{stack="eu1prod"} 3',
      'g8s_drifted_resources_total{stack="edge7"} 0',
    ]);
  });

  it("sets a stack's failures, last success time and phase", async () => {
    metrics.updateStack(
      status({ name: "eu1prod", phase: "backoff", consecutiveFailures: 2, lastSuccessAt: "2026-01-01T00:00:04.500Z" }),
    );
    assert.deepEqual(await samples(registry, "g8s_stack_consecutive_failures"), [
      'g8s_stack_consecutive_failures{stack="eu1prod"} 2',
    ]);
    assert.deepEqual(await samples(registry, "g8s_stack_last_success_timestamp_seconds"), [
      'g8s_stack_last_success_timestamp_seconds{stack="eu1prod"} 1767225604.5',
    ]);
    assert.deepEqual(await samples(registry, "g8s_stack_phase"), [
      'g8s_stack_phase{stack="eu1prod",phase="pending"} 0',
      'g8s_stack_phase{stack="eu1prod",phase="queued"} 0',
      'g8s_stack_phase{stack="eu1prod",phase="running"} 0',
      'g8s_stack_phase{stack="eu1prod",phase="in-sync"} 0',
      'g8s_stack_phase{stack="eu1prod",phase="drifted"} 0',
      'g8s_stack_phase{stack="eu1prod",phase="blocked"} 0',
      'g8s_stack_phase{stack="eu1prod",phase="backoff"} 1',
      'g8s_stack_phase{stack="eu1prod",phase="stalled"} 0',
      'g8s_stack_phase{stack="eu1prod",phase="invalid"} 0',
      'g8s_stack_phase{stack="eu1prod",phase="orphaned"} 0',
      'g8s_stack_phase{stack="eu1prod",phase="needs-attention"} 0',
      'g8s_stack_phase{stack="eu1prod",phase="off"} 0',
      'g8s_stack_phase{stack="eu1prod",phase="destroyed"} 0',
    ]);
  });

  it("moves the phase to 1 on the new phase and 0 on the old one", async () => {
    metrics.updateStack(status({ name: "eu1prod", phase: "running" }));
    metrics.updateStack(status({ name: "eu1prod", phase: "stalled", consecutiveFailures: 5 }));
    const ones = (await samples(registry, "g8s_stack_phase")).filter((line) => line.endsWith(" 1"));
    assert.deepEqual(ones, ['g8s_stack_phase{stack="eu1prod",phase="stalled"} 1']);
    assert.ok(
      (await samples(registry, "g8s_stack_phase")).includes('g8s_stack_phase{stack="eu1prod",phase="running"} 0'),
    );
  });

  it("shows a busy stack's lock owner and busy-since time, and drops both when it is no longer busy", async () => {
    const lockOwner = { pid: 4711, host: "runner-2", owner: "other-host" as const };
    metrics.updateStack(
      status({ name: "eu1prod", phase: "pending", busySince: "2026-01-01T00:00:01.000Z", lockOwner }),
    );
    assert.deepEqual(await samples(registry, "g8s_stack_busy_since_timestamp_seconds"), [
      'g8s_stack_busy_since_timestamp_seconds{stack="eu1prod"} 1767225601',
    ]);
    assert.deepEqual(await samples(registry, "g8s_stack_lock_owner_info"), [
      'g8s_stack_lock_owner_info{stack="eu1prod",owner_pid="4711",owner_host="runner-2",owner_state="other-host"} 1',
    ]);
    metrics.updateStack(
      status({
        name: "eu1prod",
        phase: "pending",
        busySince: "2026-01-01T00:00:01.000Z",
        lockOwner: { ...lockOwner, pid: 4712 },
      }),
    );
    assert.deepEqual(await samples(registry, "g8s_stack_lock_owner_info"), [
      'g8s_stack_lock_owner_info{stack="eu1prod",owner_pid="4712",owner_host="runner-2",owner_state="other-host"} 1',
    ]);
    metrics.updateStack(status({ name: "eu1prod", phase: "in-sync" }));
    assert.deepEqual(await samples(registry, "g8s_stack_busy_since_timestamp_seconds"), []);
    assert.deepEqual(await samples(registry, "g8s_stack_lock_owner_info"), []);
  });

  it("has no last-success series before a first success", async () => {
    metrics.updateStack(status({ name: "edge7", phase: "pending" }));
    assert.deepEqual(await samples(registry, "g8s_stack_last_success_timestamp_seconds"), []);
  });

  it("drops every series of a removed stack and keeps the others", async () => {
    for (const name of ["eu1prod", "edge7"]) {
      metrics.updateStack(status({ name, phase: "in-sync", lastSuccessAt: "2026-01-01T00:00:00.000Z" }));
      metrics.observePass(pass({ stack: name, outcome: "corrected", drift: [drift("a")] }));
    }
    metrics.removeStack("eu1prod");
    const text = await registry.metrics();
    assert.doesNotMatch(text, /eu1prod/);
    assert.match(text, /^g8s_reconcile_passes_total\{stack="edge7",outcome="corrected"\} 1$/m);
    assert.match(text, /^g8s_reconcile_duration_seconds_count\{stack="edge7",outcome="corrected"\} 1$/m);
    assert.match(text, /^g8s_stack_phase\{stack="edge7",phase="in-sync"\} 1$/m);

    // A stack that comes back starts again from 0.
    metrics.observePass(pass({ stack: "eu1prod", outcome: "in-sync" }));
    assert.match(await registry.metrics(), /^g8s_reconcile_passes_total\{stack="eu1prod",outcome="corrected"\} 0$/m);
  });

  it("sets the in-flight and queue gauges", async () => {
    metrics.setInFlight(3);
    metrics.setQueueDepth(7);
    metrics.setInFlight(2);
    assert.deepEqual(await samples(registry, "g8s_reconcile_in_flight"), ["g8s_reconcile_in_flight 2"]);
    assert.deepEqual(await samples(registry, "g8s_reconcile_queue_depth"), ["g8s_reconcile_queue_depth 7"]);
  });

  it("counts stacks per phase, 0 for phases nobody is in", async () => {
    metrics.setPhaseCounts([
      status({ name: "a", phase: "in-sync" }),
      status({ name: "b", phase: "in-sync" }),
      status({ name: "c", phase: "stalled" }),
    ]);
    metrics.setPhaseCounts([
      status({ name: "a", phase: "in-sync" }),
      status({ name: "b", phase: "drifted" }),
      status({ name: "c", phase: "stalled" }),
    ]);
    assert.deepEqual(await samples(registry, "g8s_stacks"), [
      'g8s_stacks{phase="pending"} 0',
      'g8s_stacks{phase="queued"} 0',
      'g8s_stacks{phase="running"} 0',
      'g8s_stacks{phase="in-sync"} 1',
      'g8s_stacks{phase="drifted"} 1',
      'g8s_stacks{phase="blocked"} 0',
      'g8s_stacks{phase="backoff"} 0',
      'g8s_stacks{phase="stalled"} 1',
      'g8s_stacks{phase="invalid"} 0',
      'g8s_stacks{phase="orphaned"} 0',
      'g8s_stacks{phase="needs-attention"} 0',
      'g8s_stacks{phase="off"} 0',
      'g8s_stacks{phase="destroyed"} 0',
    ]);
  });

  it("exports each certificate's notBefore, expiry and renewal point; drops a certificate that went away; counts renewals apart from drift", async () => {
    const cert = (key: string, renewAt: string) => ({
      key,
      notBefore: "2026-01-01T00:00:00.000Z",
      notAfter: "2026-01-02T00:00:00.000Z",
      renewAt,
      urns: [`urn:${key}`],
    });
    metrics.updateStack(
      status({
        name: "edge7",
        phase: "off",
        certificates: [
          cert("apiserver", "2026-01-01T12:00:00.000Z"),
          cert("ca", ""),
          cert("user-jane", "2026-01-01T12:00:00.000Z"),
        ],
        renewal: { consecutiveFailures: 2 },
      }),
    );
    metrics.updateStack(
      status({
        name: "edge7",
        phase: "off",
        certificates: [cert("apiserver", "2026-01-01T12:00:00.000Z"), cert("ca", "")],
        renewal: { consecutiveFailures: 2 },
      }),
    );
    assert.deepEqual(await samples(registry, "g8s_certificate_expiry_timestamp_seconds"), [
      'g8s_certificate_expiry_timestamp_seconds{stack="edge7",certificate="apiserver"} 1767312000',
      'g8s_certificate_expiry_timestamp_seconds{stack="edge7",certificate="ca"} 1767312000',
    ]);
    assert.deepEqual(await samples(registry, "g8s_certificate_not_before_timestamp_seconds"), [
      'g8s_certificate_not_before_timestamp_seconds{stack="edge7",certificate="apiserver"} 1767225600',
      'g8s_certificate_not_before_timestamp_seconds{stack="edge7",certificate="ca"} 1767225600',
    ]);
    // The CA is never renewed by g8s here: no renewal point, no series.
    assert.deepEqual(await samples(registry, "g8s_certificate_renewal_timestamp_seconds"), [
      'g8s_certificate_renewal_timestamp_seconds{stack="edge7",certificate="apiserver"} 1767268800',
    ]);
    assert.deepEqual(await samples(registry, "g8s_certificate_renewal_consecutive_failures"), [
      'g8s_certificate_renewal_consecutive_failures{stack="edge7"} 2',
    ]);
    metrics.observeRenewal({
      stack: "edge7",
      outcome: "renewed",
      startedAt: "",
      durationMs: 1,
      renewed: ["apiserver"],
    });
    assert.ok(
      (await samples(registry, "g8s_certificate_renewals_total")).includes(
        'g8s_certificate_renewals_total{stack="edge7",outcome="renewed"} 1',
      ),
    );
    assert.deepEqual(await samples(registry, "g8s_drift_detected_total"), [
      'g8s_drift_detected_total{stack="edge7"} 0',
    ]);
    metrics.removeStack("edge7");
    assert.deepEqual(await samples(registry, "g8s_certificate_expiry_timestamp_seconds"), []);
    assert.deepEqual(await samples(registry, "g8s_certificate_renewals_total"), []);
  });

  it("drops a stack's etcd snapshot series when another replica watches it, and only that stack's", async () => {
    metrics.observeEtcdSnapshots("edge7", 21600, [{ node: "master-0", lastGoodSeconds: 1000 }]);
    metrics.observeEtcdSnapshots("edge8", 3600, [{ node: "master-0", lastGoodSeconds: 2000 }]);
    metrics.etcdWatchFailed("edge7");
    metrics.forgetEtcdStack("edge7");
    assert.deepEqual(await samples(registry, "g8s_etcd_snapshot_last_good_timestamp_seconds"), [
      'g8s_etcd_snapshot_last_good_timestamp_seconds{stack="edge8",node="master-0"} 2000',
    ]);
    assert.deepEqual(await samples(registry, "g8s_etcd_backup_interval_seconds"), [
      'g8s_etcd_backup_interval_seconds{stack="edge8"} 3600',
    ]);
    assert.deepEqual(await samples(registry, "g8s_etcd_snapshot_watch_failures_total"), [
      'g8s_etcd_snapshot_watch_failures_total{stack="edge8"} 0',
    ]);
  });
});
