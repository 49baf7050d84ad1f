/**
 * The reconciler's Prometheus metrics, on a registry the composition root injects (never
 * prom-client's global one, so tests and several instances do not share series).
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import {
  PASS_OUTCOMES,
  RENEWAL_OUTCOMES,
  STACK_PHASES,
  type PassRecord,
  type RenewalRecord,
  type StackStatus,
} from "./types";
import type { EtcdSnapshotSeen } from "./etcdWatch";

/** A pass takes from about a second (nothing to refresh) to half an hour (a large `up`). */
export const DURATION_BUCKETS_SECONDS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800];

export class ReconcilerMetrics {
  private readonly passes: Counter<"stack" | "outcome">;
  private readonly duration: Histogram<"stack" | "outcome">;
  private readonly driftDetected: Counter<"stack">;
  private readonly driftedResources: Counter<"stack">;
  private readonly consecutiveFailures: Gauge<"stack">;
  private readonly lastSuccess: Gauge<"stack">;
  private readonly stackPhase: Gauge<"stack" | "phase">;
  private readonly busySince: Gauge<"stack">;
  private readonly lockOwner: Gauge<"stack" | "owner_pid" | "owner_host" | "owner_state">;
  private readonly inFlight: Gauge;
  private readonly queueDepth: Gauge;
  private readonly stacks: Gauge<"phase">;
  private readonly certNotAfter: Gauge<"stack" | "certificate">;
  private readonly certNotBefore: Gauge<"stack" | "certificate">;
  private readonly certRenewAt: Gauge<"stack" | "certificate">;
  private readonly changes: Counter<"answer">;
  private readonly renewals: Counter<"stack" | "outcome">;
  private readonly renewalFailures: Gauge<"stack">;
  private readonly etcdLastGood: Gauge<"stack" | "node">;
  private readonly etcdInterval: Gauge<"stack">;
  private readonly etcdWatchFailures: Counter<"stack">;
  /** Per stack, the masters that have a last-good series (to drop one that went away). */
  private readonly etcdNodes = new Map<string, Set<string>>();
  /** Per stack, the certificate keys that have series (to drop the series of one that went away). */
  private readonly certKeys = new Map<string, Set<string>>();
  /** The labels of each stack's lock-owner series (prom-client removes a series by all its labels). */
  private readonly lockOwnerLabels = new Map<string, Record<string, string>>();
  /** Stacks whose counters exist, so each is initialised once. */
  private readonly known = new Set<string>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.passes = new Counter({
      name: "g8s_reconcile_passes_total",
      help: "Reconcile passes by stack and outcome.",
      labelNames: ["stack", "outcome"],
      registers,
    });
    this.duration = new Histogram({
      name: "g8s_reconcile_duration_seconds",
      help: "Duration of reconcile passes (detect and correct) in seconds.",
      labelNames: ["stack", "outcome"],
      buckets: DURATION_BUCKETS_SECONDS,
      registers,
    });
    this.driftDetected = new Counter({
      name: "g8s_drift_detected_total",
      help: "Reconcile passes that found drift.",
      labelNames: ["stack"],
      registers,
    });
    this.driftedResources = new Counter({
      name: "g8s_drifted_resources_total",
      help: "Drifted resources found, summed over passes.",
      labelNames: ["stack"],
      registers,
    });
    this.consecutiveFailures = new Gauge({
      name: "g8s_stack_consecutive_failures",
      help: "Failed passes in a row; 0 after a success.",
      labelNames: ["stack"],
      registers,
    });
    this.lastSuccess = new Gauge({
      name: "g8s_stack_last_success_timestamp_seconds",
      help: "Unix time of the stack's last successful pass; absent until it has one.",
      labelNames: ["stack"],
      registers,
    });
    this.stackPhase = new Gauge({
      name: "g8s_stack_phase",
      help: "1 for the stack's current phase, 0 for every other phase.",
      labelNames: ["stack", "phase"],
      registers,
    });
    this.busySince = new Gauge({
      name: "g8s_stack_busy_since_timestamp_seconds",
      help: "Unix time since which the stack's passes have found it locked; absent when it is not busy.",
      labelNames: ["stack"],
      registers,
    });
    this.lockOwner = new Gauge({
      name: "g8s_stack_lock_owner_info",
      help: "1 while a busy stack's backend lock is held: its owner's pid, host and state (alive, other-host).",
      labelNames: ["stack", "owner_pid", "owner_host", "owner_state"],
      registers,
    });
    this.inFlight = new Gauge({
      name: "g8s_reconcile_in_flight",
      help: "Reconcile passes running now.",
      registers,
    });
    this.queueDepth = new Gauge({
      name: "g8s_reconcile_queue_depth",
      help: "Stacks due and waiting for a worker.",
      registers,
    });
    this.stacks = new Gauge({
      name: "g8s_stacks",
      help: "Known stacks by phase.",
      labelNames: ["phase"],
      registers,
    });
    this.certNotAfter = new Gauge({
      name: "g8s_certificate_expiry_timestamp_seconds",
      help: "Unix time a stack's certificate expires (notAfter), as the stack's last update left it.",
      labelNames: ["stack", "certificate"],
      registers,
    });
    this.certNotBefore = new Gauge({
      name: "g8s_certificate_not_before_timestamp_seconds",
      help: "Unix time a stack's certificate became valid (notBefore); with the expiry, its share of life used.",
      labelNames: ["stack", "certificate"],
      registers,
    });
    this.certRenewAt = new Gauge({
      name: "g8s_certificate_renewal_timestamp_seconds",
      help: "Unix time from which g8s renews the certificate; absent for one it never renews by itself (a tls or vault CA).",
      labelNames: ["stack", "certificate"],
      registers,
    });
    this.changes = new Counter({
      name: "g8s_change_events_total",
      help: "Changes noticed by the host watch or POST /api/stacks/<name>/events, after coalescing, by what became of them (run, runs-again, queued, parked, own-operation, unknown-stack).",
      labelNames: ["answer"],
      registers,
    });
    this.renewals = new Counter({
      name: "g8s_certificate_renewals_total",
      help: "Certificate renewal checks by stack and outcome (renewed, not-due, busy, aborted, failed); never counted as drift.",
      labelNames: ["stack", "outcome"],
      registers,
    });
    this.renewalFailures = new Gauge({
      name: "g8s_certificate_renewal_consecutive_failures",
      help: "Failed certificate renewals in a row; 0 after one that worked.",
      labelNames: ["stack"],
      registers,
    });
    this.etcdLastGood = new Gauge({
      name: "g8s_etcd_snapshot_last_good_timestamp_seconds",
      help: "Unix time of a master's last good etcd snapshot, as its Node says (annotation g8s.dev/etcd-last-good-snapshot); absent for a master without one.",
      labelNames: ["stack", "node"],
      registers,
    });
    this.etcdInterval = new Gauge({
      name: "g8s_etcd_backup_interval_seconds",
      help: "The stack's etcd.backup.interval: the time between two snapshots of each master.",
      labelNames: ["stack"],
      registers,
    });
    this.etcdWatchFailures = new Counter({
      name: "g8s_etcd_snapshot_watch_failures_total",
      help: "Looks at a cluster's masters for their last good etcd snapshot that failed (the API unreachable or refusing).",
      labelNames: ["stack"],
      registers,
    });
  }

  /** What the etcd watch saw of a stack's masters: one series per master with a last good snapshot. */
  observeEtcdSnapshots(stack: string, intervalSeconds: number, masters: readonly EtcdSnapshotSeen[]): void {
    this.etcdInterval.set({ stack }, intervalSeconds);
    this.etcdWatchFailures.inc({ stack }, 0);
    const now = new Set<string>();
    for (const m of masters) {
      if (m.lastGoodSeconds === undefined) continue;
      now.add(m.node);
      this.etcdLastGood.set({ stack, node: m.node }, m.lastGoodSeconds);
    }
    for (const node of this.etcdNodes.get(stack) ?? []) if (!now.has(node)) this.etcdLastGood.remove({ stack, node });
    this.etcdNodes.set(stack, now);
  }

  /** The stack is no longer this replica's to watch: its series go (the owner exports them). */
  forgetEtcdStack(stack: string): void {
    for (const node of this.etcdNodes.get(stack) ?? []) this.etcdLastGood.remove({ stack, node });
    this.etcdNodes.delete(stack);
    this.etcdInterval.remove({ stack });
    this.etcdWatchFailures.remove({ stack });
  }

  etcdWatchFailed(stack: string): void {
    this.etcdWatchFailures.inc({ stack });
  }

  /** A coalesced change (host watch or POST /events) and what the scheduler made of it. */
  observeChange(answer: string): void {
    this.changes.inc({ answer });
  }

  observeRenewal(record: RenewalRecord): void {
    this.ensureStack(record.stack);
    this.renewals.inc({ stack: record.stack, outcome: record.outcome });
  }

  observePass(record: PassRecord): void {
    this.ensureStack(record.stack);
    const labels = { stack: record.stack, outcome: record.outcome };
    this.passes.inc(labels);
    this.duration.observe(labels, record.durationMs / 1000);
    // A pass found drift when it lists drifted resources; a correct pass whose `up` then failed
    // still counts, since the drift was real.
    if (record.drift.length > 0) {
      this.driftDetected.inc({ stack: record.stack });
      this.driftedResources.inc({ stack: record.stack }, record.drift.length);
    }
  }

  updateStack(status: StackStatus): void {
    this.ensureStack(status.name);
    const stack = status.name;
    this.consecutiveFailures.set({ stack }, status.consecutiveFailures);
    // No series rather than 0 until the first success: 0 would read as "last succeeded in 1970".
    const lastSuccess = status.lastSuccessAt === undefined ? NaN : Date.parse(status.lastSuccessAt);
    if (Number.isNaN(lastSuccess)) this.lastSuccess.remove({ stack });
    else this.lastSuccess.set({ stack }, lastSuccess / 1000);
    const busySince = status.busySince === undefined ? NaN : Date.parse(status.busySince);
    if (Number.isNaN(busySince)) this.busySince.remove({ stack });
    else this.busySince.set({ stack }, busySince / 1000);
    this.dropLockOwner(stack); // one series per stack at most: the current owner
    const owner = status.lockOwner;
    if (owner && status.busySince !== undefined) {
      const labels = { stack, owner_pid: String(owner.pid), owner_host: owner.host, owner_state: owner.owner };
      this.lockOwner.set(labels, 1);
      this.lockOwnerLabels.set(stack, labels);
    }
    // Every phase has a series (kube-state-metrics style), so `== 0` is as queryable as `== 1`.
    for (const phase of STACK_PHASES) this.stackPhase.set({ stack, phase }, phase === status.phase ? 1 : 0);
    this.renewalFailures.set({ stack }, status.renewal?.consecutiveFailures ?? 0);
    this.updateCertificates(stack, status);
  }

  /** One series per certificate and time that is known; none for what went away or is unknown. */
  private updateCertificates(stack: string, status: StackStatus): void {
    const now = new Set<string>();
    for (const cert of status.certificates ?? []) {
      now.add(cert.key);
      const labels = { stack, certificate: cert.key };
      for (const [gauge, value] of [
        [this.certNotAfter, cert.notAfter],
        [this.certNotBefore, cert.notBefore],
        [this.certRenewAt, cert.renewAt],
      ] as const) {
        const at = value === "" ? NaN : Date.parse(value);
        if (Number.isNaN(at)) gauge.remove(labels);
        else gauge.set(labels, at / 1000);
      }
    }
    for (const key of this.certKeys.get(stack) ?? []) if (!now.has(key)) this.dropCertificate(stack, key);
    this.certKeys.set(stack, now);
  }

  private dropCertificate(stack: string, certificate: string): void {
    for (const gauge of [this.certNotAfter, this.certNotBefore, this.certRenewAt]) gauge.remove({ stack, certificate });
  }

  /** Drops every series of a stack (a stack file deleted, a stack destroyed). */
  removeStack(name: string): void {
    this.known.delete(name);
    const stack = name;
    for (const outcome of PASS_OUTCOMES) {
      this.passes.remove({ stack, outcome });
      this.duration.remove({ stack, outcome });
    }
    for (const phase of STACK_PHASES) this.stackPhase.remove({ stack, phase });
    for (const outcome of RENEWAL_OUTCOMES) this.renewals.remove({ stack, outcome });
    for (const key of this.certKeys.get(stack) ?? []) this.dropCertificate(stack, key);
    this.certKeys.delete(stack);
    this.forgetEtcdStack(stack);
    this.dropLockOwner(stack);
    for (const metric of [
      this.driftDetected,
      this.driftedResources,
      this.consecutiveFailures,
      this.lastSuccess,
      this.busySince,
      this.renewalFailures,
    ]) {
      metric.remove({ stack });
    }
  }

  private dropLockOwner(stack: string): void {
    const labels = this.lockOwnerLabels.get(stack);
    if (labels) this.lockOwner.remove(labels);
    this.lockOwnerLabels.delete(stack);
  }

  setInFlight(n: number): void {
    this.inFlight.set(n);
  }

  setQueueDepth(n: number): void {
    this.queueDepth.set(n);
  }

  /** Sets g8s_stacks from all statuses; phases no stack is in read 0. */
  setPhaseCounts(statuses: readonly StackStatus[]): void {
    for (const phase of STACK_PHASES) {
      this.stacks.set({ phase }, statuses.filter((s) => s.phase === phase).length);
    }
  }

  /**
   * Creates a new stack's counters at 0. A counter series that first appears at 1 hides that
   * first increment from `increase()` and `rate()`, so an alert on the first failure would miss.
   */
  private ensureStack(stack: string): void {
    if (this.known.has(stack)) return;
    this.known.add(stack);
    for (const outcome of PASS_OUTCOMES) this.passes.inc({ stack, outcome }, 0);
    for (const outcome of RENEWAL_OUTCOMES) this.renewals.inc({ stack, outcome }, 0);
    this.driftDetected.inc({ stack }, 0);
    this.driftedResources.inc({ stack }, 0);
  }
}
