/**
 * The slower suite (`npm run test:stress`): ten kill -9 and immediate-restart rounds in a row on
 * one stack. Every round must converge within interval + one update + 10 s, keep the stack's
 * history, and leave no engine process of the killed run behind.
 */
import * as assert from "node:assert/strict";
import { createSandbox, openStack, writeFixtureStack, type Sandbox } from "../integration/harness";
import { crashAndRestart, endEngineProcesses } from "../integration/daemon";

const ROUNDS = 10;
const RECONCILE = { "g8s:reconcile": { mode: "correct", interval: "10s" } };

describe("stress: kill -9 and restart at once, ten rounds in a row", function () {
  this.timeout(ROUNDS * 300_000);
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await createSandbox("g8s-stress");
  });

  after(() => {
    if (sandbox) endEngineProcesses(sandbox);
    sandbox?.dispose();
  });

  it(`converges in each of ${ROUNDS} rounds within interval + one update + 10 s`, async () => {
    writeFixtureStack(sandbox, "s1", { a: "v0", b: "v0" }, { ...RECONCILE, "store:delayMs": 3000 });
    await (await openStack(sandbox, "s1")).up();
    const rounds: string[] = [];
    for (let i = 1; i <= ROUNDS; i++) {
      const round = await crashAndRestart(sandbox, "s1", `v${i}`, RECONCILE, 10_000);
      const line = `round ${i}: converged in ${(round.convergeMs / 1000).toFixed(1)} s (bound ${(round.boundMs / 1000).toFixed(1)} s), stale lock cleared: ${round.lockCleared}`;
      rounds.push(line);
      process.stdout.write(`      ${line}\n`);
      assert.ok(
        round.convergeMs <= round.boundMs,
        `${line}; the restarted daemon's log:\n${round.timeline.join("\n")}`,
      );
    }
    assert.equal(rounds.length, ROUNDS);
  });
});
