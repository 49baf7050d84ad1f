/**
 * The last passes of each stack, in memory, for the status page's stack view: at most `limit` a
 * stack, without the engine's whole output (the page never shows it; `lastPass` keeps it).
 */
import type { PassRecord } from "./types";

export const PASSES_KEPT = 10;

export class PassHistory {
  private readonly passes = new Map<string, PassRecord[]>();

  constructor(private readonly limit = PASSES_KEPT) {}

  record(pass: PassRecord): void {
    const list = this.passes.get(pass.stack) ?? [];
    list.push({ ...pass, output: undefined });
    if (list.length > this.limit) list.splice(0, list.length - this.limit);
    this.passes.set(pass.stack, list);
  }

  /** The stack's passes as recorded, oldest first. */
  of(stack: string): readonly PassRecord[] {
    return this.passes.get(stack) ?? [];
  }

  forget(stack: string): void {
    this.passes.delete(stack);
  }
}
