/**
 * What the daemon's V8 flags (bin/g8s.js's shebang) cost in speed: the same daemon over three
 * fixture stacks (interval 10 s, drift injected into one every 10 s) through its shebang against
 * `node bin/g8s.js` with Node.js's defaults (the baseline), in alternating rounds of one run.
 * Figures: the duration of every pass (a refreshing preview, plus an up when it corrects), which
 * the daemon's own work (the Automation API's event stream, JSON) is part of.
 */
import { createSandbox, writeFixtureStack, writeRecord } from "../test/integration/harness";
import { startDaemon, waitFor } from "../test/integration/daemon";
import { percentile, ratio, report, seconds } from "./common";

const ROUND_MS = Number(process.env.FLAGS_ROUND_MS ?? 60_000);
const ROUNDS = Number(process.env.FLAGS_ROUNDS ?? 2);
const RECONCILE = { "g8s:reconcile": { mode: "correct", interval: "10s" } };

type Variant = "shebang flags" | "Node.js defaults";

async function round(variant: Variant): Promise<{ inSync: number[]; corrected: number[] }> {
  const sandbox = await createSandbox("g8s-bench-flags");
  try {
    for (const name of ["s1", "s2", "s3"]) writeFixtureStack(sandbox, name, { a: `${name}-a` }, RECONCILE);
    const daemon = await startDaemon(sandbox, [], variant === "Node.js defaults" ? { nodeFlags: [] } : {});
    let from = 0;
    try {
      await waitFor(
        "three stacks in sync",
        async () => {
          const stacks = await daemon.stacks();
          return stacks.length === 3 && stacks.every((s) => s.phase === "in-sync" && s.lastPass) ? true : undefined;
        },
        240_000,
      );
      from = daemon.logs.length;
      const end = Date.now() + ROUND_MS;
      let n = 0;
      while (Date.now() < end) {
        writeRecord(sandbox, "s2", "a", `changed by hand ${n++}`);
        await new Promise((resolve) => setTimeout(resolve, 10_000));
      }
    } finally {
      await daemon.stop();
    }
    const passes = daemon.logs
      .slice(from)
      .filter((l) => typeof l.outcome === "string" && typeof l.durationMs === "number");
    const of = (outcome: string) => passes.filter((p) => p.outcome === outcome).map((p) => p.durationMs as number);
    return { inSync: of("in-sync"), corrected: of("corrected") };
  } finally {
    sandbox.dispose();
  }
}

async function main(): Promise<void> {
  const all: Record<Variant, { inSync: number[]; corrected: number[] }> = {
    "shebang flags": { inSync: [], corrected: [] },
    "Node.js defaults": { inSync: [], corrected: [] },
  };
  for (let i = 0; i < ROUNDS; i++) {
    for (const variant of ["Node.js defaults", "shebang flags"] as const) {
      const r = await round(variant);
      all[variant].inSync.push(...r.inSync);
      all[variant].corrected.push(...r.corrected);
    }
  }
  const rows: Array<[string, string]> = [];
  for (const variant of ["Node.js defaults", "shebang flags"] as const) {
    const { inSync, corrected } = all[variant];
    rows.push([
      variant,
      `in-sync pass p50 ${seconds(percentile(inSync, 50))} (${inSync.length}), corrected pass p50 ${seconds(percentile(corrected, 50))} (${corrected.length})`,
    ]);
  }
  const p = (v: Variant, k: "inSync" | "corrected") => percentile(all[v][k], 50);
  rows.push(["in-sync p50: flags / defaults", ratio(p("shebang flags", "inSync"), p("Node.js defaults", "inSync"))]);
  rows.push([
    "corrected p50: flags / defaults",
    ratio(p("shebang flags", "corrected"), p("Node.js defaults", "corrected")),
  ]);
  report("Pass durations with the daemon's V8 flags", rows);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exitCode = 1;
});
