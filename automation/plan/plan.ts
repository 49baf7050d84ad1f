/**
 * `g8s plan`: what a change would do to the clusters. Validation first (a broken stack file
 * fails the plan with its located errors), then a lock-free preview of each touched stack with
 * bounded concurrency, then a report. Nothing is applied, and nothing is written to the shared
 * backend: a stack that exists only as a file is previewed on a private temporary backend.
 */
import { ProjectStackSource, type DiscoveredStack } from "../reconciler/discovery";
import { afterPreview, hasChanges, passStart, versionRefusal, type PreviewVerdict } from "../reconciler/pass";
import { mandatory } from "../policy/runner";
import {
  EngineFailure,
  type OperationOptions,
  type PreviewResource,
  type PreviewResult,
  type Violation,
} from "../reconciler/types";
import { changedFiles, touchedStacks, type FileChange, type TouchedStack } from "./changes";

/** What plan needs of the engine (PulumiEngine implements it). */
export interface PlanEngine {
  listStacks(): Promise<string[]>;
  previewRefresh(stack: string, options: OperationOptions): Promise<PreviewResult>;
  previewDestroy(stack: string, options: OperationOptions): Promise<PreviewResult>;
  /** Preview of a stack the shared backend does not hold, without writing to that backend. */
  previewNewStack(stack: string, options: OperationOptions): Promise<PreviewResult>;
  /** A plain stack output (`kubernetesVersion`: the version-change check). */
  plainOutput(stack: string, key: string): Promise<unknown>;
}

export type StackPlanKind = "preview" | "new" | "destroy" | "orphaned" | "gone" | "invalid" | "off" | "failed";

export interface StackPlan {
  readonly stack: string;
  readonly reason: TouchedStack["reason"];
  readonly kind: StackPlanKind;
  readonly changeSummary?: Readonly<Record<string, number>>;
  readonly preview?: PreviewResult;
  /** Validation problems or the engine's error (one line for an engine failure). */
  readonly error?: string;
  /** The engine's whole output when it failed. */
  readonly output?: string;
  /** Policy violations of the previewed desired state (g8s project stacks). */
  readonly violations?: readonly Violation[];
  /** What the reconciler would do after this preview (the decision of its own passes). */
  readonly verdict?: PreviewVerdict;
}

export interface PlanResult {
  readonly base: string;
  readonly changes: readonly FileChange[];
  readonly stacks: readonly StackPlan[];
  /** 0 no changes, 2 changes, 1 error. */
  readonly exitCode: 0 | 1 | 2;
}

export interface PlanOptions {
  readonly projectDir: string;
  readonly base: string;
  readonly engine: PlanEngine;
  readonly concurrency: number;
  /** Validate stack files as g8s cluster specs (the `specChecks` setting). */
  readonly specChecks: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (stack: string, what: string) => void;
  /** Policy check of a previewed stack (default: none). */
  readonly checkPolicies?: (stack: DiscoveredStack, resources: readonly PreviewResource[]) => Promise<Violation[]>;
}

/** Runs `fn` over `items` with at most `limit` at a time, keeping the order of results. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export async function runPlan(options: PlanOptions): Promise<PlanResult> {
  const { projectDir, engine } = options;
  const changes = await changedFiles(projectDir, options.base);
  const source = new ProjectStackSource({ projectDir, reconcileDefaults: {}, specChecks: options.specChecks });
  const discovered = new Map((await source.discover()).map((s) => [s.name, s]));
  const touched = touchedStacks(changes, [...discovered.keys()]);

  // Validation first: a broken stack file fails the plan before any engine work.
  const invalid: StackPlan[] = touched
    .filter((t) => discovered.get(t.stack)?.error !== undefined)
    .map((t) => ({ stack: t.stack, reason: t.reason, kind: "invalid", error: discovered.get(t.stack)?.error }));
  if (invalid.length > 0) return { base: options.base, changes, stacks: invalid, exitCode: 1 };

  const inBackend = new Set(touched.length > 0 ? await engine.listStacks() : []);
  const signal = options.signal ?? new AbortController().signal;
  const plans = await mapBounded(touched, options.concurrency, async (t): Promise<StackPlan> => {
    const stack = discovered.get(t.stack);
    if (!stack) {
      return { stack: t.stack, reason: t.reason, kind: inBackend.has(t.stack) ? "orphaned" : "gone" };
    }
    // The reconciler's own decision for this stack file (invalid files failed the plan above).
    const start = passStart(stack);
    if (start.kind === "invalid") return { stack: t.stack, reason: t.reason, kind: "invalid", error: start.error };
    if (start.kind === "skip") return { stack: t.stack, reason: t.reason, kind: "off" };
    options.onProgress?.(t.stack, "previewing");
    try {
      if (start.kind === "destroy") {
        if (!inBackend.has(t.stack)) return { stack: t.stack, reason: t.reason, kind: "gone" };
        const preview = await engine.previewDestroy(t.stack, { signal });
        return { stack: t.stack, reason: t.reason, kind: "destroy", preview, changeSummary: preview.changeSummary };
      }
      const kind = inBackend.has(t.stack) ? "preview" : "new";
      const refused = kind === "preview" ? await versionRefusal(engine, stack) : undefined;
      if (refused !== undefined) return { stack: t.stack, reason: t.reason, kind: "invalid", error: refused };
      const preview =
        kind === "preview"
          ? await engine.previewRefresh(t.stack, { signal })
          : await engine.previewNewStack(t.stack, { signal });
      // A pull request shows every violation, also where the reconciler would not reach its check.
      const violations =
        options.checkPolicies && preview.resources ? await options.checkPolicies(stack, preview.resources) : [];
      const { verdict } = await afterPreview(start.mode, preview, async () => violations);
      return {
        stack: t.stack,
        reason: t.reason,
        kind,
        preview,
        changeSummary: preview.changeSummary,
        verdict,
        ...(violations.length > 0 ? { violations } : {}),
      };
    } catch (err) {
      const output = err instanceof EngineFailure ? { output: err.output } : {};
      return { stack: t.stack, reason: t.reason, kind: "failed", error: (err as Error).message, ...output };
    }
  });
  const blocked = plans.some((p) => mandatory(p.violations ?? []).length > 0);
  const exitCode =
    plans.some((p) => p.kind === "failed" || p.kind === "invalid") || blocked
      ? 1
      : plans.some((p) => hasChanges(p.changeSummary) || p.kind === "orphaned")
        ? 2
        : 0;
  return { base: options.base, changes, stacks: plans, exitCode };
}
