/**
 * The engine on a shared PostgreSQL backend (Debian's server on loopback, the pinned Pulumi
 * CLI's postgres:// DIY backend): stacks live in the database, and a lock a replica on a lost
 * host left there is reported by the refused update, kept while that host may still run, and
 * cleared once its replicas are gone.
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { engineEnvironment, PROJECT_ROOT } from "../../automation/engine";
import { PulumiEngine } from "../../automation/engine/pulumiEngine";
import { StackBusyError } from "../../automation/reconciler/types";
import { createSandbox, readRecord, TEST_PASSPHRASE, writeFixtureStack, type Sandbox } from "./harness";
import { endEngineProcesses } from "./daemon";
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
      // As the daemon makes it for a postgres:// backend.
      env: engineEnvironment({
        stateDir: sandbox.stateDir,
        backendUrl: postgres.url,
        passphrase: TEST_PASSPHRASE,
        pathPrepend: [sandbox.cli.binDir, path.join(PROJECT_ROOT, "node_modules/.bin")],
        base: process.env,
      }),
      hostGone: (host) => gone.has(host),
    });
  });

  after(async () => {
    // A CLI still waiting for a connection (the deadlock above) ends with the test.
    if (sandbox) endEngineProcesses(sandbox);
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
    postgres.plantLock("store", "p1", { pid: 4242, hostname: "node-lost", at: new Date() });
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

  it("lists ten stacks with histories, again and again (the backend's pool deadlocked on parallel reads)", async () => {
    const names = Array.from({ length: 10 }, (_, i) => `m${i}`);
    for (const name of names) {
      writeFixtureStack(sandbox, name, { a: name });
      await engine.upRefresh(name, options());
    }
    for (let round = 0; round < 3; round++) {
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("pulumi stack ls hung: the PostgreSQL backend's connection pool deadlocked")),
          60_000,
        );
      });
      try {
        const listed = await Promise.race([engine.listStacks(), hung]);
        assert.deepEqual(listed.sort(), ["p1", ...names].sort());
      } finally {
        clearTimeout(timer);
      }
    }
  });
});
