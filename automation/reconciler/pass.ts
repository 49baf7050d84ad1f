/**
 * One reconcile pass over one stack: detect with a refreshing, lock-free preview; decide by
 * mode; correct with `up --refresh`; record what drifted, what was done and how long it took.
 */
import type { Clock } from "./clock";
import {
  EngineFailure,
  OperationAbortedError,
  PassTimeoutError,
  StackBusyError,
  type Engine,
  type PassOutcome,
  type PassRecord,
  type ResourceDrift,
} from "./types";
import type { DiscoveredStack } from "./discovery";
import { formatViolation, mandatory } from "../policy/runner";
import type { PreviewResource, PreviewResult, Violation } from "./types";
import { aptVersionChangeProblem, versionChangeProblem, type ReconcileMode } from "../../components/spec";
import { removedPoolComponents } from "./drain";
import { dueCertificates, parsePkiOutput, runRenewal } from "./renewal";
import type { CertificateStatus, RenewalRecord, RollRecord, UpgradeRecord } from "./types";

/** True when the change summary holds anything but `same`. */
export function hasChanges(summary: Readonly<Record<string, number>> | undefined): boolean {
  return Object.entries(summary ?? {}).some(([op, n]) => op !== "same" && n > 0);
}

/**
 * What a pass over the stack does first, decided from its stack file alone. `g8s plan`
 * previews the same decision, so a plan shows what the reconciler would run.
 */
export type PassStart =
  | { readonly kind: "invalid"; readonly error: string }
  | { readonly kind: "skip" } // mode off: nothing runs, not even a decommission
  | { readonly kind: "destroy" } // g8s:decommission: true
  | { readonly kind: "detect"; readonly mode: Exclude<ReconcileMode, "off"> }; // preview, then `afterPreview`

export function passStart(stack: DiscoveredStack): PassStart {
  if (stack.error !== undefined) return { kind: "invalid", error: stack.error };
  if (!stack.settings) return { kind: "invalid", error: "no stack file" };
  const { mode, decommission } = stack.settings;
  if (mode === "off") return { kind: "skip" };
  if (decommission) return { kind: "destroy" };
  return { kind: "detect", mode };
}

/** What a pass does with its preview: nothing to do, report only (mode detect), blocked by policy, or correct (up). */
export type PreviewVerdict = "in-sync" | "drifted" | "blocked" | "correct";

/**
 * Decides what follows a preview. The policies are checked only when an up would follow (the
 * check reads every previewed resource); a mandatory violation blocks the up.
 */
export async function afterPreview(
  mode: Exclude<ReconcileMode, "off">,
  preview: Pick<PreviewResult, "changeSummary">,
  checkPolicies: () => Promise<readonly Violation[]>,
): Promise<{ readonly verdict: PreviewVerdict; readonly violations: readonly Violation[] }> {
  if (!hasChanges(preview.changeSummary)) return { verdict: "in-sync", violations: [] };
  if (mode === "detect") return { verdict: "drifted", violations: [] };
  const violations = await checkPolicies();
  return { verdict: mandatory(violations).length > 0 ? "blocked" : "correct", violations };
}

/**
 * Whether a pass corrects a noticed change at once, with `up --refresh` and no detection
 * preview. Only in mode correct, for a change noticed since the last pass began (a host watch or
 * an outside event), and only on desired state a pass already judged: the same stack file as a
 * pass that previewed it and found it in sync or corrected it (so its policies allowed it), with
 * no new checkout since. Anything else (a new file, a blocked or never judged one, a routine
 * check) previews first. An event thus costs one update instead of a preview and an update.
 */
export function correctsAtOnce(
  stack: DiscoveredStack,
  state: { readonly changed?: boolean; readonly judged?: string },
): boolean {
  const start = passStart(stack);
  return (
    start.kind === "detect" &&
    start.mode === "correct" &&
    state.changed === true &&
    stack.fileHash !== undefined &&
    state.judged === stack.fileHash
  );
}

export interface PassContext {
  readonly engine: Engine;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  /** Scrubs secrets from error text before it is recorded. */
  readonly redact: (text: string) => string;
  /** Policy check of the desired state before an up; a mandatory violation blocks it. */
  readonly checkPolicies?: (stack: DiscoveredStack, resources: readonly PreviewResource[]) => Promise<Violation[]>;
  /** Correct at once, without the detection preview (`correctsAtOnce` said so). */
  readonly atOnce?: boolean;
  /**
   * Drains the node pools an update is about to remove (their NodePool components); rejects when
   * it cannot (the update must not run). `finish` runs after the update removed them.
   */
  readonly drainPools?: (stack: DiscoveredStack, components: readonly string[]) => Promise<DrainedPools | undefined>;
  readonly upgrade?: UpgradeHook;
  /**
   * Before the upgrade, in the same passes: restarts the KVM nodes whose pods are behind their
   * StatefulSet's template, each drained first (automation/access/roll.ts); undefined when none
   * were. Throwing fails the pass (phase roll); the next pass goes on where it stopped.
   */
  readonly roll?: (
    stack: DiscoveredStack,
    signal: AbortSignal,
    progress: (line: string) => void,
  ) => Promise<RollRecord | undefined>;
  /** Where a long phase is (the upgrade's node): the stack's status message while the pass runs. */
  readonly progress?: (line: string) => void;
}

export interface UpgradeHook {
  /**
   * After an update (or a preview that found the stack in sync), in mode correct: rolls the
   * guest cluster to the stack file's `kubernetes.version` when it runs another, node by node
   * (automation/access/upgrade.ts); undefined when there was nothing to do. Throwing fails the
   * pass (phase upgrade); the next pass goes on where it stopped.
   */
  (stack: DiscoveredStack, signal: AbortSignal, progress: (line: string) => void): Promise<UpgradeRecord | undefined>;
}

export interface DrainedPools {
  readonly record: NonNullable<PassRecord["drained"]>;
  /** After the update: what is left of the pools in the guest cluster (their Node objects) goes. */
  readonly finish: () => Promise<void>;
}

/** Whether the preview would change a certificate that is past its renewal point now. */
function previewRenews(drift: readonly ResourceDrift[], certs: readonly CertificateStatus[], now: number): boolean {
  const due = new Set(dueCertificates(certs, now).flatMap((c) => c.urns));
  return drift.some((d) => due.has(d.urn));
}

/**
 * Why the stack file's `kubernetes.version` cannot be applied to the cluster its state says
 * runs (`<file>: kubernetes.version: …`); undefined when it can, or nothing runs yet.
 */
export async function versionRefusal(
  engine: Pick<Engine, "plainOutput">,
  stack: DiscoveredStack,
): Promise<string | undefined> {
  if (stack.kubernetes === undefined) return undefined;
  const running = await engine.plainOutput(stack.name, "kubernetesVersion").catch(() => undefined);
  const runs = typeof running === "string" ? running : undefined;
  const wanted = stack.kubernetes.version;
  const problem =
    versionChangeProblem(runs, wanted) ??
    aptVersionChangeProblem(runs, wanted, stack.kubernetes.nodeImage === true ? "image" : "apt");
  return problem === undefined ? undefined : `${stack.kubernetes.field}: ${problem}`;
}

export async function runPass(stack: DiscoveredStack, ctx: PassContext): Promise<PassRecord> {
  const { engine, clock, signal } = ctx;
  const started = clock.now();
  const mode = stack.settings?.mode ?? "correct";
  const base = {
    stack: stack.name,
    mode,
    startedAt: new Date(started).toISOString(),
    ...(stack.fileHash !== undefined ? { fileHash: stack.fileHash } : {}),
  };
  let renewal: RenewalRecord | undefined;
  const done = (outcome: PassOutcome, extra: Partial<PassRecord> = {}): PassRecord => ({
    ...base,
    outcome,
    drift: [],
    durationMs: clock.now() - started,
    ...(renewal ? { renewal } : {}),
    ...extra,
  });

  const start = passStart(stack);
  if (start.kind === "invalid") return done("invalid", { error: start.error });
  // Renewal first, whatever the mode: what is due is renewed by an update of its own, so the
  // preview below never sees it and it never counts as drift.
  const renew = async () => {
    renewal = await runRenewal(stack.name, { engine, clock, signal, redact: ctx.redact });
    return renewal;
  };
  if (start.kind !== "destroy") await renew();
  if (start.kind === "skip") return done("skipped");

  let phase: "detect" | "drain" | "correct" | "roll" | "upgrade" | "destroy" = "detect";
  let drift: readonly ResourceDrift[] = [];
  let changeSummary: Readonly<Record<string, number>> | undefined;
  let detectMs: number | undefined;
  // `up --refresh`. After a preview, its drift stands; at once, the update says what it changed,
  // and an update that changed nothing found the stack in sync.
  const correct = async (seen: Partial<PassRecord>): Promise<PassRecord> => {
    const correctStart = clock.now();
    const result = await engine.upRefresh(stack.name, { signal });
    const correctMs = clock.now() - correctStart;
    if (seen.direct && !hasChanges(result.resourceChanges)) {
      return done("in-sync", { direct: true, correctMs, resourceChanges: result.resourceChanges });
    }
    // The update may have issued certificates (a new user, new names): read them again.
    const certificates = await engine
      .pkiOutput(stack.name)
      .then((v) => parsePkiOutput(v).certificates)
      .catch(() => undefined);
    return done("corrected", {
      ...(certificates ? { certificates } : {}),
      ...(seen.direct ? { drift: result.drift ?? [] } : {}),
      ...seen,
      correctMs,
      resourceChanges: result.resourceChanges,
    });
  };
  try {
    if (start.kind === "destroy") {
      phase = "destroy";
      const result = await engine.destroy(stack.name, { signal });
      return done("destroyed", { resourceChanges: result.resourceChanges });
    }
    // A version the running cluster cannot take (a skipped minor, a downgrade): the file is
    // wrong for this cluster, whatever the preview would say.
    const refused = await versionRefusal(engine, stack);
    if (refused !== undefined) return done("invalid", { error: refused });
    // The cluster's nodes follow the update: KVM nodes behind their pod template are restarted
    // on it, then a changed kubernetes.version is rolled out.
    const thenUpgrade = async (record: PassRecord): Promise<PassRecord> => {
      if (start.mode !== "correct") return record;
      if (record.outcome !== "corrected" && record.outcome !== "in-sync") return record;
      let next = record;
      if (ctx.roll !== undefined) {
        phase = "roll";
        const rolled = await ctx.roll(stack, signal, (line) => ctx.progress?.(`roll: ${line}`));
        if (rolled !== undefined) next = { ...next, outcome: "corrected", rolled, durationMs: clock.now() - started };
      }
      if (ctx.upgrade === undefined) return next;
      phase = "upgrade";
      const upgrade = await ctx.upgrade(stack, signal, (line) => ctx.progress?.(`upgrade: ${line}`));
      if (upgrade === undefined) return next;
      return { ...next, outcome: "corrected", upgrade, durationMs: clock.now() - started };
    };
    if (ctx.atOnce && start.mode === "correct") {
      phase = "correct";
      return await thenUpgrade(await correct({ direct: true }));
    }
    let preview = await engine.previewRefresh(stack.name, { signal });
    // A certificate that fell due while the preview ran: renew it, and look again.
    const known = renewal?.certificates;
    if (known && renewal?.outcome !== "failed" && previewRenews(preview.drift, known, clock.now())) {
      await renew();
      preview = await engine.previewRefresh(stack.name, { signal });
    }
    detectMs = clock.now() - started;
    drift = preview.drift;
    changeSummary = preview.changeSummary;
    const { verdict, violations } = await afterPreview(start.mode, preview, async () =>
      ctx.checkPolicies && preview.resources ? ctx.checkPolicies(stack, preview.resources) : [],
    );
    if (verdict === "in-sync") return await thenUpgrade(done("in-sync", { detectMs, changeSummary }));
    if (verdict === "drifted") return done("drifted", { detectMs, changeSummary, drift });
    if (verdict === "blocked") {
      const error = `policy: ${mandatory(violations).map(formatViolation).join("; ")}`;
      return done("blocked", { detectMs, changeSummary, drift, violations, error });
    }

    // Pools the update removes are drained first; one that cannot be keeps the update from running.
    const removed = removedPoolComponents(preview.drift);
    let drained: DrainedPools | undefined;
    if (removed.length > 0 && ctx.drainPools) {
      phase = "drain";
      drained = await ctx.drainPools(stack, removed);
    }
    phase = "correct";
    const record = await correct({
      detectMs,
      changeSummary,
      drift,
      ...(violations.length > 0 ? { violations } : {}),
      ...(drained ? { drained: drained.record } : {}),
    });
    if (drained && record.outcome === "corrected") await drained.finish().catch(() => undefined); // it logs its own
    return await thenUpgrade(record);
  } catch (err) {
    const extra = {
      detectMs,
      changeSummary,
      drift,
      error: ctx.redact(`${phase}: ${(err as Error).message}`),
      ...(err instanceof EngineFailure ? { output: ctx.redact(err.output) } : {}),
    };
    if (err instanceof StackBusyError) return done("busy", extra);
    if (signal.reason instanceof PassTimeoutError) {
      return done("failed", { ...extra, error: ctx.redact(`${phase}: ${signal.reason.message}`) });
    }
    if (err instanceof OperationAbortedError || signal.aborted) return done("aborted", extra);
    return done("failed", extra);
  }
}
