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
import { formatViolation } from "../policy/runner";
import type { PreviewResource, Violation } from "./types";

/** True when the change summary holds anything but `same`. */
export function hasChanges(summary: Readonly<Record<string, number>> | undefined): boolean {
  return Object.entries(summary ?? {}).some(([op, n]) => op !== "same" && n > 0);
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

export async function runPass(stack: DiscoveredStack, ctx: PassContext): Promise<PassRecord> {
  const { engine, clock, signal } = ctx;
  const started = clock.now();
  const mode = stack.settings?.mode ?? "correct";
  const base = { stack: stack.name, mode, startedAt: new Date(started).toISOString() };
  const done = (outcome: PassOutcome, extra: Partial<PassRecord> = {}): PassRecord => ({
    ...base,
    outcome,
    drift: [],
    durationMs: clock.now() - started,
    ...extra,
  });

  if (stack.error !== undefined) return done("invalid", { error: stack.error });
  if (!stack.settings) return done("invalid", { error: "no stack file" });
  if (mode === "off") return done("skipped");

  let phase: "detect" | "correct" | "destroy" = "detect";
  let drift: readonly ResourceDrift[] = [];
  let changeSummary: Readonly<Record<string, number>> | undefined;
  let detectMs: number | undefined;
  try {
    if (stack.settings.decommission) {
      phase = "destroy";
      const result = await engine.destroy(stack.name, { signal });
      return done("destroyed", { resourceChanges: result.resourceChanges });
    }
    const preview = await engine.previewRefresh(stack.name, { signal });
    detectMs = clock.now() - started;
    drift = preview.drift;
    changeSummary = preview.changeSummary;
    if (!hasChanges(preview.changeSummary)) return done("in-sync", { detectMs, changeSummary });
    if (mode === "detect") return done("drifted", { detectMs, changeSummary, drift });

    const violations = ctx.checkPolicies && preview.resources ? await ctx.checkPolicies(stack, preview.resources) : [];
    const blocking = violations.filter((v) => v.enforcementLevel === "mandatory");
    if (blocking.length > 0) {
      const error = `policy: ${blocking.map(formatViolation).join("; ")}`;
      return done("blocked", { detectMs, changeSummary, drift, violations, error });
    }

    phase = "correct";
    const correctStart = clock.now();
    const result = await engine.upRefresh(stack.name, { signal });
    return done("corrected", {
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
