/**
 * MTTR: an out-of-band change in one of 5 stacks → corrected by the running daemon (interval
 * 10 s). Prints p50 and max over the samples, and the ratio to (interval + one up --refresh),
 * with the up --refresh time taken from the daemon's own corrections in the same run.
 */
import { createSandbox, readRecord, writeFixtureStack, writeRecord } from "../test/integration/harness";
import { startDaemon, waitFor } from "../test/integration/daemon";
import { percentile, ratio, report, seconds } from "./common";

const STACKS = ["m1", "m2", "m3", "m4", "m5"];
const ROUNDS = Number(process.env.MTTR_ROUNDS ?? 2);
const INTERVAL_S = 10;

async function main(): Promise<void> {
  const sandbox = await createSandbox("g8s-bench-mttr");
  try {
    for (const s of STACKS) {
      writeFixtureStack(
        sandbox,
        s,
        { a: `${s}-a` },
        { "g8s:reconcile": { mode: "correct", interval: `${INTERVAL_S}s` } },
      );
    }
    const daemon = await startDaemon(sandbox, ["--log-level", "info"]);
    await waitFor(
      "all stacks in sync",
      async () =>
        (await daemon.stacks()).filter((s) => s.lastPass?.outcome === "in-sync").length === STACKS.length
          ? true
          : undefined,
      600_000,
    );
    const mttr: number[] = [];
    const upRefresh: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of STACKS) {
        writeRecord(sandbox, s, "a", `drift ${round}`);
        const injected = Date.now();
        const status = await waitFor(
          `${s} corrected`,
          async () => {
            const st = await daemon.stack(s);
            return st.lastDrift &&
              Date.parse(st.lastDrift.startedAt) >= injected - 1000 &&
              readRecord(sandbox, s, "a") === `${s}-a`
              ? st
              : undefined;
          },
          300_000,
        );
        mttr.push(Date.now() - injected);
        if (status.lastDrift?.correctMs !== undefined) upRefresh.push(status.lastDrift.correctMs);
        process.stdout.write(`  ${s} round ${round + 1}: ${seconds(mttr[mttr.length - 1])}\n`);
      }
    }
    await daemon.stop();
    const up = percentile(upRefresh, 50);
    const bound = INTERVAL_S * 1000 + up;
    report(`MTTR, ${STACKS.length} stacks, interval ${INTERVAL_S} s, ${mttr.length} samples`, [
      ["p50", seconds(percentile(mttr, 50))],
      ["max", seconds(Math.max(...mttr))],
      ["up --refresh (p50 of the daemon's corrections)", seconds(up)],
      ["baseline: interval + up --refresh", seconds(bound)],
      ["p50 / baseline", ratio(percentile(mttr, 50), bound)],
      ["max / baseline", ratio(Math.max(...mttr), bound)],
    ]);
  } finally {
    sandbox.dispose();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exitCode = 1;
});
