/**
 * The daemon as it ships: compiled JavaScript (dist/), started through bin/g8s.js as users start
 * it, small enough for a small pod with 500 stacks discovered.
 */
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createSandbox, writeFixtureStack, type Sandbox } from "./harness";
import { startDaemon, waitFor } from "./daemon";

const STACKS = 500;
const LIMIT_MIB = 150;

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
}

describe("the daemon's footprint", function () {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox("g8s-footprint");
    // mode off: discovered, parsed, tracked and served; no engine runs that would add children.
    for (let i = 0; i < STACKS; i++)
      writeFixtureStack(sandbox, `f${i}`, { a: "x" }, { "g8s:reconcile": { mode: "off" } });
  });
  after(() => sandbox?.dispose());

  it(`runs compiled and stays under ${LIMIT_MIB} MiB RSS with ${STACKS} stacks discovered and served`, async () => {
    const daemon = await startDaemon(sandbox, ["--log-level", "info"]);
    try {
      const listening = daemon.logs.find((l) => l.msg === "g8s daemon listening");
      assert.equal(listening?.runtime, "compiled", "bin/g8s.js runs dist/ (npm run build, done by provisioning)");
      await waitFor("discovery", async () => ((await daemon.stacks()).length === STACKS ? true : undefined), 300_000);
      // Served and scraped every second for 30 s, more often than Prometheus does: the peak counts.
      let peak = 0;
      for (let i = 0; i < 30; i++) {
        await daemon.stacks();
        await daemon.metrics();
        peak = Math.max(peak, rssMiB(daemon.proc.pid as number));
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      console.log(
        `      daemon RSS with ${STACKS} stacks, scraped every second: peak ${peak.toFixed(1)} MiB (limit ${LIMIT_MIB})`,
      );
      assert.ok(peak < LIMIT_MIB, `peak RSS ${peak.toFixed(1)} MiB`);
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });
});
