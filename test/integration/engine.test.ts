/**
 * The real Pulumi engine round trip on the store fixture: up, a clean preview, an out-of-band
 * change, a refreshing preview that sees it, an up that corrects it, destroy. Each test works on
 * a stack of its own and creates what it needs, so each passes alone.
 */
import * as assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { createSandbox, openStack, readRecord, timed, writeFixtureStack, writeRecord, type Sandbox } from "./harness";

describe("real engine: drift round trip on the store fixture", function () {
  this.timeout(300_000);
  let sandbox: Sandbox;
  const timings: Record<string, number> = {};

  before(async () => {
    sandbox = await createSandbox();
  });

  /** A stack of the fixture with two records, not yet created. */
  async function newStack(name: string): Promise<Stack> {
    writeFixtureStack(sandbox, name, { alpha: "one", beta: "two" });
    return openStack(sandbox, name);
  }

  /** The same, created and in sync. */
  async function createdStack(name: string): Promise<Stack> {
    const stack = await newStack(name);
    assert.equal((await stack.up()).summary.result, "succeeded");
    return stack;
  }

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
    const stack = await newStack("create");
    const { ms, result } = await timed(() => stack.up());
    timings.up = ms;
    assert.equal(result.summary.result, "succeeded");
    assert.equal(result.summary.resourceChanges?.create, 3); // the stack and two records
    assert.equal(readRecord(sandbox, "create", "alpha"), "one");
    assert.equal(readRecord(sandbox, "create", "beta"), "two");
  });

  it("previews no changes right after", async () => {
    const stack = await createdStack("clean");
    const { ms, result } = await timed(() => stack.preview());
    timings.preview = ms;
    assert.deepEqual(result.changeSummary, { same: 3 });
  });

  it("sees an out-of-band change only when the preview refreshes", async () => {
    const stack = await createdStack("seen");
    writeRecord(sandbox, "seen", "alpha", "edited by hand");
    const plain = await stack.preview();
    assert.deepEqual(plain.changeSummary, { same: 3 }, "without refresh the engine trusts its state");
    const { ms, result } = await timed(() => stack.preview({ refresh: true }));
    timings["preview --refresh"] = ms;
    assert.equal(result.changeSummary.update, 1);
    assert.equal(readRecord(sandbox, "seen", "alpha"), "edited by hand", "a preview changes nothing");
  });

  it("corrects the drift with up --refresh", async () => {
    const stack = await createdStack("fix");
    writeRecord(sandbox, "fix", "alpha", "edited by hand");
    const { ms, result } = await timed(() => stack.up({ refresh: true }));
    timings["up --refresh"] = ms;
    assert.equal(result.summary.result, "succeeded");
    assert.equal(result.summary.resourceChanges?.update, 1);
    assert.equal(readRecord(sandbox, "fix", "alpha"), "one");
    const after = await stack.preview({ refresh: true });
    assert.deepEqual(after.changeSummary, { same: 3 });
  });

  it("recreates a record deleted out of band", async () => {
    const stack = await createdStack("gone");
    rmSync(path.join(sandbox.storeDir, "gone", "beta.txt"));
    const preview = await stack.preview({ refresh: true });
    assert.equal(preview.changeSummary.create, 1);
    await stack.up({ refresh: true });
    assert.equal(readRecord(sandbox, "gone", "beta"), "two");
  });

  it("removes every record with destroy", async () => {
    const stack = await createdStack("destroy");
    const { ms, result } = await timed(() => stack.destroy());
    timings.destroy = ms;
    assert.equal(result.summary.result, "succeeded");
    assert.equal(existsSync(path.join(sandbox.storeDir, "destroy", "alpha.txt")), false);
    assert.equal(existsSync(path.join(sandbox.storeDir, "destroy", "beta.txt")), false);
  });
});
