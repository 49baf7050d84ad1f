/**
 * The reconciler against the real engine: a running daemon corrects drift in one of three
 * stacks without touching the others, and a daemon killed (-9, with its engine) during an
 * update converges after a restart with the stack's history intact.
 */
import * as assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { createSandbox, openStack, readRecord, writeFixtureStack, writeRecord, type Sandbox } from "./harness";
import { sample, startDaemon, waitFor, type DaemonProcess } from "./daemon";

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

  after(() => sandbox?.dispose());

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

  it("converges after being killed with its engine during an update, history intact", async () => {
    // Slow updates (3 s per record) so the kill lands inside the up.
    writeFixtureStack(sandbox, "s1", { a: "v1", b: "v1" }, { ...RECONCILE, "store:delayMs": 3000 });
    const stack = await openStack(sandbox, "s1");
    const versionsBefore = (await stack.history()).map((h) => h.version);
    const locks = path.join(fileURLToPath(sandbox.env.PULUMI_BACKEND_URL), ".pulumi", "locks");
    const lockFiles = () =>
      existsSync(locks) ? readdirSync(locks, { recursive: true }).filter((f) => String(f).endsWith(".json")) : [];

    daemon = await startDaemon(sandbox);
    await waitFor(
      "the update to hold the backend lock",
      async () => (lockFiles().length > 0 ? true : undefined),
      120_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 1500)); // inside the 3 s record updates
    await daemon.crash();
    assert.ok(lockFiles().length > 0, "the killed update left its lock behind");
    assert.notEqual(readRecord(sandbox, "s1", "a"), "v1", "the kill came before the update finished");

    daemon = await startDaemon(sandbox);
    const d = daemon;
    const converged = await waitFor(
      "s1 to converge after the restart",
      async () => {
        const s = await d.stack("s1");
        return s.phase === "in-sync" && s.lastPass?.outcome !== undefined && readRecord(sandbox, "s1", "a") === "v1"
          ? s
          : undefined;
      },
      240_000,
    );
    assert.equal(converged.consecutiveFailures, 0);
    assert.ok(
      d.logs.some((l) => l.msg === "cleared a stale backend lock"),
      "the stale lock of the killed process was cleared and logged",
    );
    assert.equal(readRecord(sandbox, "s1", "b"), "v1");
    const history = await stack.history();
    const versions = history.map((h) => h.version);
    assert.ok(versionsBefore.length > 0);
    assert.ok(
      versionsBefore.every((v) => versions.includes(v)),
      `every earlier update is still in the history: ${versionsBefore.join(",")} ⊂ ${versions.join(",")}`,
    );
    assert.ok(versions.length > versionsBefore.length, "the converging update was recorded");
    assert.equal(history[0].result, "succeeded", "the newest update succeeded");
    assert.equal(await d.stop(), 0);
  });
});
