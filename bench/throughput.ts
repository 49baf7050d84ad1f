/**
 * Throughput: one detection pass over 20 fixture stacks with `g8s reconcile --once` (mode
 * detect) at concurrency 1 and 2, against a plain shell loop of `pulumi preview --refresh`
 * over the same stacks, in the same environment and run.
 * Targets: ours at concurrency 1 ≤ 1.1 × the loop; concurrency 2 clearly faster than 1.
 */
import { spawnSync } from "node:child_process";
import { createSandbox, reconcileOnce, writeFixtureStack, type Sandbox } from "../test/integration/harness";
import { elapsed, ratio, report, seconds } from "./common";

const COUNT = Number(process.env.THROUGHPUT_STACKS ?? 20);

const g8s = (sandbox: Sandbox, args: string[]) => reconcileOnce(sandbox, args);

async function main(): Promise<void> {
  const sandbox = await createSandbox("g8s-bench-throughput");
  try {
    const stacks = Array.from({ length: COUNT }, (_, i) => `t${String(i + 1).padStart(2, "0")}`);
    for (const s of stacks) writeFixtureStack(sandbox, s, { a: `${s}-a`, b: `${s}-b` });
    process.stdout.write(`creating ${COUNT} stacks…\n`);
    const setup = g8s(sandbox, ["--default-mode", "correct", "--concurrency", "2"]);
    if (setup.code !== 0) throw new Error(`setup failed: ${setup.stderr}\n${setup.stdout}`);

    const loop = `for s in ${stacks.join(" ")}; do pulumi preview --refresh --non-interactive --stack "$s" >/dev/null || exit 1; done`;
    const [loopMs] = await elapsed(async () => {
      const r = spawnSync("bash", ["-c", loop], { cwd: sandbox.projectDir, env: sandbox.env, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`shell loop failed: ${r.stderr}`);
    });
    process.stdout.write(`shell loop: ${seconds(loopMs)}\n`);
    const runs: Record<string, number> = {};
    for (const c of [1, 2]) {
      const [ms, r] = await elapsed(async () => g8s(sandbox, ["--default-mode", "detect", "--concurrency", String(c)]));
      if (r.code !== 0) throw new Error(`reconcile failed: ${r.stderr}`);
      const outcomes = r.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { outcome?: string });
      const inSync = outcomes.filter((o) => o.outcome === "in-sync").length;
      if (inSync !== COUNT) throw new Error(`expected ${COUNT} in-sync stacks, got ${inSync}`);
      runs[c] = ms;
      process.stdout.write(`g8s reconcile --once, concurrency ${c}: ${seconds(ms)}\n`);
    }
    report(`Detection pass over ${COUNT} stacks (2 records each)`, [
      ["shell loop of pulumi preview --refresh", seconds(loopMs)],
      ["g8s, concurrency 1", `${seconds(runs[1])} (${ratio(runs[1], loopMs)} the loop; target ≤ 1.10×)`],
      [
        "g8s, concurrency 2",
        `${seconds(runs[2])} (${ratio(runs[2], loopMs)} the loop; ${ratio(runs[1], runs[2])} faster than concurrency 1)`,
      ],
    ]);
  } finally {
    sandbox.dispose();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exitCode = 1;
});
