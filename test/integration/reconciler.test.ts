/**
 * The reconciler against the real engine: a running daemon corrects drift in one of three
 * stacks without touching the others, and a daemon killed (-9, with its engine) during an
 * update converges after a restart with the stack's history intact.
 */
import * as assert from "node:assert/strict";
import { createSandbox, openStack, readRecord, writeFixtureStack, writeRecord, type Sandbox } from "./harness";
import { crashAndRestart, endEngineProcesses, sample, startDaemon, waitFor, type DaemonProcess } from "./daemon";

const RECONCILE = { "g8s:reconcile": { mode: "correct", interval: "10s" } };

describe("real engine: the reconciler daemon", function () {
  this.timeout(600_000);
  let sandbox: Sandbox;
  let daemon: DaemonProcess | undefined;

  before(async () => {
    sandbox = await createSandbox("g8s-daemon");
  });

  afterEach(async () => {
    if (daemon && daemon.proc.exitCode === null) await daemon.crash();
    daemon = undefined;
  });

  after(() => {
    if (sandbox) endEngineProcesses(sandbox);
    sandbox?.dispose();
  });

  it("corrects drift injected into one of three stacks; the others see no up", async () => {
    for (const name of ["s1", "s2", "s3"])
      writeFixtureStack(sandbox, name, { a: `${name}-a`, b: `${name}-b` }, RECONCILE);
    daemon = await startDaemon(sandbox);
    const d = daemon;
    await waitFor(
      "all three stacks in sync",
      async () => {
        const stacks = await d.stacks();
        const synced = stacks.filter((s) => s.phase === "in-sync" && s.lastPass?.outcome === "in-sync");
        return synced.length === 3 ? true : undefined;
      },
      240_000,
    );
    const before = await d.metrics();
    const corrected = (stack: string, m: string) =>
      sample(m, "g8s_reconcile_passes_total", { stack, outcome: "corrected" });

    writeRecord(sandbox, "s2", "a", "changed by hand");
    const injectedAt = Date.now();
    const fixed = await waitFor(
      "s2 corrected",
      async () => {
        const s = await d.stack("s2");
        return s.lastDrift && Date.parse(s.lastDrift.startedAt) >= injectedAt - 1000 ? s : undefined;
      },
      120_000,
    );
    const mttrMs = Date.now() - injectedAt;
    assert.equal(readRecord(sandbox, "s2", "a"), "s2-a", "the store holds the desired content again");
    assert.equal(fixed.lastDrift?.outcome, "corrected");
    assert.deepEqual(
      fixed.lastDrift?.drift.map((x) => [x.op, x.name]),
      [["update", "record-a"]],
    );
    const after = await d.metrics();
    assert.equal(corrected("s2", after), corrected("s2", before) + 1);
    assert.equal(corrected("s1", after), corrected("s1", before), "s1 saw no up");
    assert.equal(corrected("s3", after), corrected("s3", before), "s3 saw no up");
    process.stdout.write(`      drift corrected ${Math.round(mttrMs / 100) / 10} s after injection (interval 10 s)\n`);

    assert.equal(await d.stop(), 0, "SIGTERM stops the daemon with exit 0");
  });

  it("converges when restarted at once after being killed with its engine during an update", async () => {
    // Its own stack: created and in sync before the crash, so this test passes alone.
    writeFixtureStack(sandbox, "crash", { a: "v0", b: "v0" }, { ...RECONCILE, "store:delayMs": 3000 });
    await (await openStack(sandbox, "crash")).up();
    const round = await crashAndRestart(sandbox, "crash", "v1", RECONCILE, 10_000);
    process.stdout.write(
      `      converged ${(round.convergeMs / 1000).toFixed(1)} s after the restart (bound ${(round.boundMs / 1000).toFixed(1)} s)\n`,
    );
    assert.ok(round.lockCleared, "the stale lock of the killed process was cleared and logged");
    assert.ok(
      round.convergeMs <= round.boundMs,
      `converged in ${round.convergeMs} ms > bound ${round.boundMs} ms; the restarted daemon's log:\n${round.timeline.join("\n")}`,
    );
  });
});
