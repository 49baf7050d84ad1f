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
import type { ReconcileMode } from "../../components/spec";
import { dueCertificates, parsePkiOutput, runRenewal } from "./renewal";
import type { CertificateStatus, RenewalRecord } from "./types";

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

export interface PassContext {
  readonly engine: Engine;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  /** Scrubs secrets from error text before it is recorded. */
  readonly redact: (text: string) => string;
  /** Policy check of the desired state before an up; a mandatory violation blocks it. */
  readonly checkPolicies?: (stack: DiscoveredStack, resources: readonly PreviewResource[]) => Promise<Violation[]>;
}

/** Whether the preview would change a certificate that is past its renewal point now. */
function previewRenews(drift: readonly ResourceDrift[], certs: readonly CertificateStatus[], now: number): boolean {
  const due = new Set(dueCertificates(certs, now).flatMap((c) => c.urns));
  return drift.some((d) => due.has(d.urn));
}

export async function runPass(stack: DiscoveredStack, ctx: PassContext): Promise<PassRecord> {
  const { engine, clock, signal } = ctx;
  const started = clock.now();
  const mode = stack.settings?.mode ?? "correct";
  const base = { stack: stack.name, mode, startedAt: new Date(started).toISOString() };
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

  let phase: "detect" | "correct" | "destroy" = "detect";
  let drift: readonly ResourceDrift[] = [];
  let changeSummary: Readonly<Record<string, number>> | undefined;
  let detectMs: number | undefined;
  try {
    if (start.kind === "destroy") {
      phase = "destroy";
      const result = await engine.destroy(stack.name, { signal });
      return done("destroyed", { resourceChanges: result.resourceChanges });
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
    if (verdict === "in-sync") return done("in-sync", { detectMs, changeSummary });
    if (verdict === "drifted") return done("drifted", { detectMs, changeSummary, drift });
    if (verdict === "blocked") {
      const error = `policy: ${mandatory(violations).map(formatViolation).join("; ")}`;
      return done("blocked", { detectMs, changeSummary, drift, violations, error });
    }

    phase = "correct";
    const correctStart = clock.now();
    const result = await engine.upRefresh(stack.name, { signal });
    // The update may have issued certificates (a new user, new names): read them again.
    const certificates = await engine
      .pkiOutput(stack.name)
      .then((v) => parsePkiOutput(v).certificates)
      .catch(() => undefined);
    return done("corrected", {
      ...(certificates ? { certificates } : {}),
      detectMs,
      correctMs: clock.now() - correctStart,
      changeSummary,
      drift,
      resourceChanges: result.resourceChanges,
      ...(violations.length > 0 ? { violations } : {}),
    });
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
