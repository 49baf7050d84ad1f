/**
 * The engine on a shared PostgreSQL backend (Debian's server on loopback, the pinned Pulumi
 * CLI's postgres:// DIY backend): stacks live in the database, and a lock a replica on a lost
 * host left there is reported by the refused update, kept while that host may still run, and
 * cleared once its replicas are gone.
 */
import * as assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import * as path from "node:path";
import { PulumiEngine } from "../../automation/engine/pulumiEngine";
import { StackBusyError } from "../../automation/reconciler/types";
import { createSandbox, readRecord, writeFixtureStack, type Sandbox } from "./harness";
import { startPostgres, type Postgres } from "./postgres";

describe("engine on a shared PostgreSQL backend", function () {
  this.timeout(300_000);
  let sandbox: Sandbox;
  let postgres: Postgres;
  let engine: PulumiEngine;
  const gone = new Set<string>();
  const options = () => ({ signal: new AbortController().signal });

  before(async () => {
    sandbox = await createSandbox("g8s-shared");
    postgres = await startPostgres();
    engine = new PulumiEngine({
      projectDir: sandbox.projectDir,
      workspaceDir: path.join(sandbox.root, "workspace"),
      cli: sandbox.cli,
      env: { ...sandbox.env, PULUMI_BACKEND_URL: postgres.url },
      hostGone: (host) => gone.has(host),
    });
  });

  after(async () => {
    await postgres?.stop();
    sandbox?.dispose();
  });

  it("keeps stacks in the database: up, then listed", async () => {
    writeFixtureStack(sandbox, "p1", { a: "1" });
    const up = await engine.upRefresh("p1", options());
    assert.equal(up.resourceChanges.create, 2, JSON.stringify(up.resourceChanges)); // the stack and its record
    assert.deepEqual(await engine.listStacks(), ["p1"]);
    const keys = postgres.sql("SELECT key FROM pulumi_state ORDER BY key").split("\n");
    assert.ok(keys.includes(`${postgres.keys}/stacks/store/p1.json`), keys.join(", "));
  });

  it("clears a lost replica's lock only once its host is gone, then updates", async () => {
    // The lock a replica on node-lost held when that host was lost, as the Pulumi CLI writes one.
    const key = `${postgres.keys}/locks/organization/store/p1/${randomUUID()}.json`;
    const content = { pid: 4242, username: "g8s", hostname: "node-lost", timestamp: new Date().toISOString() };
    const blob = JSON.stringify({ data: Buffer.from(JSON.stringify(content)).toString("base64") });
    postgres.sql(`INSERT INTO pulumi_state (key, data) VALUES ('${key}', '${blob}')`);
    const locks = () =>
      Number(postgres.sql(`SELECT count(*) FROM pulumi_state WHERE key LIKE '${postgres.keys}/locks/%'`));

    writeFixtureStack(sandbox, "p1", { a: "2" });
    await assert.rejects(engine.upRefresh("p1", options()), StackBusyError);
    const holder = await engine.lockHolder("p1");
    assert.equal(holder?.host, "node-lost");
    assert.equal(holder?.pid, 4242);
    assert.equal(holder?.owner, "other-host", "node-lost may still run it");
    assert.ok(!holder?.file.includes(postgres.url.split("@")[0]), "the URL's credentials are masked");
    assert.deepEqual(await engine.clearStaleLocks("p1"), []);
    assert.equal(locks(), 1, "kept");

    gone.add("node-lost");
    const cleared = await engine.clearStaleLocks("p1");
    assert.deepEqual(
      cleared.map((l) => [l.stack, l.host, l.pid, l.owner]),
      [["p1", "node-lost", 4242, "replica-gone"]],
    );
    assert.equal(locks(), 0, "pulumi cancel removed it");
    const up = await engine.upRefresh("p1", options());
    assert.equal(up.resourceChanges.update, 1, JSON.stringify(up.resourceChanges));
    assert.equal(readRecord(sandbox, "p1", "a"), "2");
  });
});
