/**
 * The engine on the shared backends replicas use, each a real server started by the test on
 * loopback: Debian's PostgreSQL (the pinned Pulumi CLI's postgres:// DIY backend) and an
 * S3-compatible store (tools/s3, gofakes3, through the CLI's s3:// backend on gocloud's S3
 * driver). On each, stacks live in the store, and a lock a replica on a lost host left there is
 * reported by the refused update, kept while that host may still run, and cleared once its
 * replicas are gone.
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { engineEnvironment, PROJECT_ROOT } from "../../automation/engine";
import { PulumiEngine } from "../../automation/engine/pulumiEngine";
import { StackBusyError } from "../../automation/reconciler/types";
import { createSandbox, readRecord, TEST_PASSPHRASE, writeFixtureStack, type Sandbox } from "./harness";
import { endEngineProcesses } from "./daemon";
import { startPostgres, type Postgres } from "./postgres";
import { startS3 } from "./s3";

/** A shared backend as these tests use it. */
interface SharedStore {
  readonly url: string;
  readonly env: Readonly<Record<string, string>>;
  /** Keys of the stacks' state files and of the locks, as the store names them. */
  stackKeys(): Promise<string[]>;
  lockCount(): Promise<number>;
  plantLock(project: string, stack: string, owner: { pid: number; hostname: string; at: Date }): Promise<unknown>;
  stop(): Promise<void>;
}

async function postgresStore(): Promise<SharedStore & { readonly postgres: Postgres }> {
  const postgres = await startPostgres();
  const keys = (like: string) => postgres.sql(`SELECT key FROM pulumi_state WHERE key LIKE '${like}' ORDER BY key`);
  return {
    postgres,
    url: postgres.url,
    env: {},
    stackKeys: async () => keys(`${postgres.keys}/stacks/%`).split("\n").filter(Boolean),
    lockCount: async () => keys(`${postgres.keys}/locks/%`).split("\n").filter(Boolean).length,
    plantLock: async (...args) => postgres.plantLock(...args),
    stop: () => postgres.stop(),
  };
}

async function s3Store(): Promise<SharedStore> {
  const s3 = await startS3();
  return {
    url: s3.url,
    env: s3.env,
    stackKeys: () => s3.keys(".pulumi/stacks/"),
    lockCount: async () => (await s3.keys(".pulumi/locks/")).length,
    plantLock: (...args) => s3.plantLock(...args),
    stop: () => s3.stop(),
  };
}

const BACKENDS: Array<{
  readonly name: string;
  readonly prefix: string;
  readonly start: () => Promise<SharedStore>;
}> = [
  // The URL's path is the keys' prefix: postgres://…/state keeps `state/.pulumi/…`.
  { name: "PostgreSQL", prefix: "state/.pulumi/stacks/store/", start: postgresStore },
  { name: "S3", prefix: ".pulumi/stacks/store/", start: s3Store },
];

for (const backend of BACKENDS) {
  describe(`engine on a shared ${backend.name} backend`, function () {
    this.timeout(300_000);
    let sandbox: Sandbox;
    let store: SharedStore;
    let engine: PulumiEngine;
    const gone = new Set<string>();
    const options = () => ({ signal: new AbortController().signal });

    before(async () => {
      sandbox = await createSandbox("g8s-shared");
      store = await backend.start();
      engine = new PulumiEngine({
        projectDir: sandbox.projectDir,
        workspaceDir: path.join(sandbox.root, "workspace"),
        cli: sandbox.cli,
        // As the daemon makes it for the backend's URL.
        env: engineEnvironment({
          stateDir: sandbox.stateDir,
          backendUrl: store.url,
          passphrase: TEST_PASSPHRASE,
          pathPrepend: [sandbox.cli.binDir, path.join(PROJECT_ROOT, "node_modules/.bin")],
          base: { ...process.env, ...store.env },
        }),
        hostGone: (host) => gone.has(host),
      });
    });

    after(async () => {
      // A CLI still waiting on the store (the deadlock below) ends with the test.
      if (sandbox) endEngineProcesses(sandbox);
      await store?.stop();
      sandbox?.dispose();
    });

    it("keeps stacks in the store: up, then listed", async () => {
      writeFixtureStack(sandbox, "p1", { a: "1" });
      const up = await engine.upRefresh("p1", options());
      assert.equal(up.resourceChanges.create, 2, JSON.stringify(up.resourceChanges)); // the stack and its record
      assert.deepEqual(await engine.listStacks(), ["p1"]);
      const keys = await store.stackKeys();
      assert.ok(keys.includes(`${backend.prefix}p1.json`), keys.join(", "));
    });

    it("clears a lost replica's lock only once its host is gone, then updates", async () => {
      // The lock a replica on node-lost held when that host was lost, as the Pulumi CLI writes one.
      await store.plantLock("store", "p1", { pid: 4242, hostname: "node-lost", at: new Date() });
      writeFixtureStack(sandbox, "p1", { a: "2" });
      await assert.rejects(engine.upRefresh("p1", options()), StackBusyError);
      const holder = await engine.lockHolder("p1");
      assert.equal(holder?.host, "node-lost");
      assert.equal(holder?.pid, 4242);
      assert.equal(holder?.owner, "other-host", "node-lost may still run it");
      assert.ok(!holder?.file.includes("pw-"), "the URL's credentials are masked");
      assert.deepEqual(await engine.clearStaleLocks("p1"), []);
      assert.equal(await store.lockCount(), 1, "kept");

      gone.add("node-lost");
      const cleared = await engine.clearStaleLocks("p1");
      assert.deepEqual(
        cleared.map((l) => [l.stack, l.host, l.pid, l.owner]),
        [["p1", "node-lost", 4242, "replica-gone"]],
      );
      assert.equal(await store.lockCount(), 0, "pulumi cancel removed it");
      const up = await engine.upRefresh("p1", options());
      assert.equal(up.resourceChanges.update, 1, JSON.stringify(up.resourceChanges));
      assert.equal(readRecord(sandbox, "p1", "a"), "2");
    });

    it("lists ten stacks with histories, again and again (the PostgreSQL backend's pool once deadlocked on parallel reads)", async () => {
      const names = Array.from({ length: 10 }, (_, i) => `m${i}`);
      for (const name of names) {
        writeFixtureStack(sandbox, name, { a: name });
        await engine.upRefresh(name, options());
      }
      for (let round = 0; round < 3; round++) {
        let timer: NodeJS.Timeout | undefined;
        const hung = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error("pulumi stack ls hung: the backend's connection pool deadlocked")),
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
}
