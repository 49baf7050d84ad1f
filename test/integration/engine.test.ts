/**
 * The real Pulumi engine round trip on the store fixture: up, a clean preview, an out-of-band
 * change, a refreshing preview that sees it, an up that corrects it, destroy.
 */
import * as assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { createSandbox, openStack, readRecord, timed, writeFixtureStack, writeRecord, type Sandbox } from "./harness";

describe("real engine: drift round trip on the store fixture", function () {
  this.timeout(300_000);
  let sandbox: Sandbox;
  let stack: Stack;
  const timings: Record<string, number> = {};

  before(async () => {
    sandbox = await createSandbox();
    writeFixtureStack(sandbox, "dev", { alpha: "one", beta: "two" });
    stack = await openStack(sandbox, "dev");
  });

  after(() => {
    if (Object.keys(timings).length > 0) {
      process.stdout.write(
        `      engine wall times (ms): ${Object.entries(timings)
          .map(([k, v]) => `${k}=${Math.round(v)}`)
          .join(" ")}\n`,
      );
    }
    sandbox?.dispose();
  });

  it("creates the records with up", async () => {
    const { ms, result } = await timed(() => stack.up());
    timings.up = ms;
    assert.equal(result.summary.result, "succeeded");
    assert.equal(result.summary.resourceChanges?.create, 3); // the stack and two records
    assert.equal(readRecord(sandbox, "dev", "alpha"), "one");
    assert.equal(readRecord(sandbox, "dev", "beta"), "two");
  });

  it("previews no changes right after", async () => {
    const { ms, result } = await timed(() => stack.preview());
    timings.preview = ms;
    assert.deepEqual(result.changeSummary, { same: 3 });
  });

  it("sees an out-of-band change only when the preview refreshes", async () => {
    writeRecord(sandbox, "dev", "alpha", "edited by hand");
    const plain = await stack.preview();
    assert.deepEqual(plain.changeSummary, { same: 3 }, "without refresh the engine trusts its state");
    const { ms, result } = await timed(() => stack.preview({ refresh: true }));
    timings["preview --refresh"] = ms;
    assert.equal(result.changeSummary.update, 1);
    assert.equal(readRecord(sandbox, "dev", "alpha"), "edited by hand", "a preview changes nothing");
  });

  it("corrects the drift with up --refresh", async () => {
    const { ms, result } = await timed(() => stack.up({ refresh: true }));
    timings["up --refresh"] = ms;
    assert.equal(result.summary.result, "succeeded");
    assert.equal(result.summary.resourceChanges?.update, 1);
    assert.equal(readRecord(sandbox, "dev", "alpha"), "one");
    const after = await stack.preview({ refresh: true });
    assert.deepEqual(after.changeSummary, { same: 3 });
  });

  it("recreates a record deleted out of band", async () => {
    const { rmSync } = await import("node:fs");
    rmSync(path.join(sandbox.storeDir, "dev", "beta.txt"));
    const preview = await stack.preview({ refresh: true });
    assert.equal(preview.changeSummary.create, 1);
    await stack.up({ refresh: true });
    assert.equal(readRecord(sandbox, "dev", "beta"), "two");
  });

  it("removes every record with destroy", async () => {
    const { ms, result } = await timed(() => stack.destroy());
    timings.destroy = ms;
    assert.equal(result.summary.result, "succeeded");
    assert.equal(existsSync(path.join(sandbox.storeDir, "dev", "alpha.txt")), false);
    assert.equal(existsSync(path.join(sandbox.storeDir, "dev", "beta.txt")), false);
  });
});
