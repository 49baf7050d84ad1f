/**
 * `g8s plan`: what a change would do to the clusters. Validation first (a broken stack file
 * fails the plan with its located errors), then a lock-free preview of each touched stack with
 * bounded concurrency, then a report. Nothing is applied, and nothing is left behind: a stack
 * created in the backend only to preview a new file is removed again.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { ProjectStackSource, type DiscoveredStack } from "../reconciler/discovery";
import { afterPreview, hasChanges, passStart, type PreviewVerdict } from "../reconciler/pass";
import { mandatory } from "../policy/runner";
import type { OperationOptions, PreviewResource, PreviewResult, Violation } from "../reconciler/types";
import { changedFiles, touchedStacks, type FileChange, type TouchedStack } from "./changes";

/** What plan needs of the engine (PulumiEngine implements it). */
export interface PlanEngine {
  listStacks(): Promise<string[]>;
  previewRefresh(stack: string, options: OperationOptions): Promise<PreviewResult>;
  previewDestroy(stack: string, options: OperationOptions): Promise<PreviewResult>;
  removeStack(stack: string): Promise<void>;
}

export type StackPlanKind = "preview" | "new" | "destroy" | "orphaned" | "gone" | "invalid" | "off" | "failed";

export interface StackPlan {
  readonly stack: string;
  readonly reason: TouchedStack["reason"];
  readonly kind: StackPlanKind;
  readonly changeSummary?: Readonly<Record<string, number>>;
  readonly preview?: PreviewResult;
  /** Validation problems or the engine's error. */
  readonly error?: string;
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
  const source = new ProjectStackSource({ projectDir, reconcileDefaults: {} });
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
      const preview =
        kind === "preview"
          ? await engine.previewRefresh(t.stack, { signal })
          : await previewNewStack(stack, engine, signal);
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
      return { stack: t.stack, reason: t.reason, kind: "failed", error: (err as Error).message };
    }
  });
  const blocked = plans.some((p) => mandatory(p.violations ?? []).length > 0);
  const exitCode =
    plans.some((p) => p.kind === "failed") || blocked
      ? 1
      : plans.some((p) => hasChanges(p.changeSummary) || p.kind === "orphaned")
        ? 2
        : 0;
  return { base: options.base, changes, stacks: plans, exitCode };
}

/**
 * A stack that only exists as a file: created in the backend for the preview, then removed,
 * and its file restored (Pulumi writes `encryptionsalt` into it on creation).
 */
async function previewNewStack(
  stack: DiscoveredStack,
  engine: PlanEngine,
  signal: AbortSignal,
): Promise<PreviewResult> {
  const file = stack.file as string;
  const original = await fs.readFile(file, "utf8");
  try {
    return await engine.previewRefresh(stack.name, { signal });
  } finally {
    await engine.removeStack(stack.name).catch(() => undefined);
    await fs.writeFile(path.resolve(file), original);
  }
}
