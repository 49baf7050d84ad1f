/**
 * Three `g8s daemon --coordination kubernetes` processes over nine fixture stacks on one shared
 * PostgreSQL backend (Debian's server, started on loopback by the test), coordinating through
 * Leases on the host cluster's kube-apiserver: each stack is reconciled by exactly one replica,
 * its owner; `kill -9` of one moves its stacks to the others; no two replicas ever run one stack
 * at once (from every pass's start and end in their logs); a lock a dead replica on another host
 * left in the backend is cleared once that replica's lease expired, and only then.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { ownerOf } from "../../automation/coordination/rendezvous";
import {
  endProcessesUnder,
  passesOf,
  startDaemon,
  waitFor,
  type DaemonProcess,
  type LoggedPass as Pass,
} from "../integration/daemon";
import { createSandbox, hostDown, hostUp, openStack, writeFixtureStack, type Sandbox } from "../integration/harness";
import { startPostgres, type Postgres } from "../integration/postgres";

const KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";

const REPLICAS = ["r0", "r1", "r2"];
const STACKS = Array.from({ length: 9 }, (_, i) => `s${i}`);
const LEASE_SECONDS = 6;
const INTERVAL_SECONDS = 30;

/** Pairs of passes of one stack by two replicas whose times overlap. */
function overlaps(passes: readonly Pass[]): string[] {
  const found: string[] = [];
  for (const a of passes)
    for (const b of passes)
      if (a.stack === b.stack && a.replica < b.replica && a.start < b.end && b.start < a.end)
        found.push(`${a.stack}: ${a.replica} [${a.start}, ${a.end}] and ${b.replica} [${b.start}, ${b.end}]`);
  return found;
}

describe("replicas sharing the stacks (3 daemons, Leases on the host cluster, one PostgreSQL backend)", function () {
  this.timeout(900_000);
  let sandbox: Sandbox;
  let postgres: Postgres;
  let hostDir: string;
  let kubeconfig: string;
  const daemons = new Map<string, DaemonProcess>();
  const all = () => [...daemons].flatMap(([replica, d]) => passesOf(replica, d));

  before(async () => {
    sandbox = await createSandbox("g8s-replicas");
    hostDir = path.join(sandbox.root, "host");
    kubeconfig = hostUp(hostDir);
    const ns = spawnSync(KUBECTL, ["--kubeconfig", kubeconfig, "create", "namespace", "g8s-system"], {
      encoding: "utf8",
    });
    assert.equal(ns.status, 0, ns.stderr);
    for (const stack of STACKS)
      writeFixtureStack(
        sandbox,
        stack,
        { a: "1" },
        { "g8s:reconcile": { mode: "correct", interval: `${INTERVAL_SECONDS}s` } },
      );
    postgres = await startPostgres();
    const backend = postgres.url;
    for (const replica of REPLICAS) {
      const daemon = await startDaemon(
        sandbox,
        [
          "--coordination",
          "kubernetes",
          "--replica-id",
          replica,
          "--lease-duration",
          `${LEASE_SECONDS}s`,
          "--state-dir",
          path.join(sandbox.root, `state-${replica}`),
          "--backend-url",
          backend,
          "--concurrency",
          "2",
          "--shutdown-grace",
          "5s",
          "--busy-retry",
          "3s",
          "--offline",
        ],
        { env: { KUBECONFIG: kubeconfig } },
      );
      daemons.set(replica, daemon);
    }
  });

  afterEach(function () {
    if (this.currentTest?.state !== "failed") return;
    // What each replica did: its messages counted, and its last lines that are not per-pass.
    for (const [replica, d] of daemons) {
      const counts = new Map<string, number>();
      for (const l of d.logs) counts.set(String(l.msg), (counts.get(String(l.msg)) ?? 0) + 1);
      console.log(`      ${replica}: ${JSON.stringify(Object.fromEntries(counts))}`);
      const t0 = Date.parse(String(d.logs[0]?.time));
      console.log(
        `        passes: ${passesOf(replica, d)
          .map(
            (p) =>
              `${p.stack} ${p.outcome} @${((p.start - t0) / 1000).toFixed(0)}s ${((p.end - p.start) / 1000).toFixed(1)}s`,
          )
          .join("; ")}`,
      );
      for (const l of d.logs.filter((l) => (l.level as number) >= 40).slice(-5))
        console.log(`        ${JSON.stringify(l).slice(0, 400)}`);
    }
  });

  after(async () => {
    for (const d of daemons.values()) await d.stop().catch(() => undefined);
    // The killed replica's plugins: it is never restarted, so nothing else ends them.
    if (sandbox) endProcessesUnder(sandbox.root);
    if (hostDir) hostDown(hostDir);
    await postgres?.stop();
    sandbox?.dispose();
  });

  it("reconciles each stack at exactly one replica, its owner, and shows every owner from every replica", async () => {
    const settledAt = Date.now();
    // A pass of every stack started after all three have settled (the first passes create them).
    await waitFor(
      "a pass of every stack started since all replicas settled",
      async () =>
        STACKS.every((s) => all().some((p) => p.stack === s && p.start > settledAt + 5_000)) ? true : undefined,
      Number(process.env.REPLICAS_WAIT_MS ?? 180_000),
    );
    const passedAt = Date.now();
    for (const stack of STACKS) {
      const by = new Set(
        all()
          .filter((p) => p.stack === stack && p.start > settledAt + 5_000)
          .map((p) => p.replica),
      );
      assert.deepEqual([...by], [ownerOf(stack, REPLICAS)], `${stack} ran at ${[...by].join(", ")}`);
    }
    for (const [replica, d] of daemons) {
      const owners = Object.fromEntries((await d.stacks()).map((s) => [s.name, s.owner]));
      assert.deepEqual(
        owners,
        Object.fromEntries(STACKS.map((s) => [s, ownerOf(s, REPLICAS)])),
        `as ${replica} sees it`,
      );
    }
    // Status every replica can read: each shows every stack's last pass, run by its owner.
    const shownEverywhere = await waitFor(
      "every replica to show every stack's last pass since the replicas settled",
      async () => {
        const views = await Promise.all([...daemons.values()].map((d) => d.stacks()));
        return views.every(
          (stacks) =>
            stacks.length === STACKS.length &&
            stacks.every((s) => Date.parse(s.lastPass?.startedAt ?? "") > settledAt + 5_000),
        )
          ? Date.now()
          : undefined;
      },
      30_000,
    );
    process.stdout.write(
      `      every replica showed all ${STACKS.length} stacks' last passes ${((shownEverywhere - passedAt) / 1000).toFixed(1)} s after the last of them began\n`,
    );
    assert.deepEqual(overlaps(all()), []);
    assert.deepEqual(
      all().filter((p) => p.outcome === "busy" || p.outcome === "failed"),
      [],
      "no pass met another's lock or failed",
    );
  });

  it("moves a killed replica's stacks to the others within the lease duration and one interval", async () => {
    const victim = "r1";
    const ofVictim = STACKS.filter((s) => ownerOf(s, REPLICAS) === victim);
    assert.ok(ofVictim.length > 0);
    const killedAt = Date.now();
    await (daemons.get(victim) as DaemonProcess).crash();
    const survivors = REPLICAS.filter((r) => r !== victim);
    // When each of its stacks was first started by its new owner (a pass's start, from its log line).
    const moved = await waitFor(
      "every stack of the killed replica reconciled by its new owner",
      async () => {
        const firsts = ofVictim.map((s) =>
          Math.min(
            ...all()
              .filter((p) => p.stack === s && p.replica === ownerOf(s, survivors) && p.start > killedAt)
              .map((p) => p.start),
          ),
        );
        return firsts.every(Number.isFinite) ? Math.max(...firsts) - killedAt : undefined;
      },
      180_000,
    );
    daemons.delete(victim);
    const bound = (LEASE_SECONDS + INTERVAL_SECONDS * 1.1 + 15) * 1000;
    console.log(
      `      the killed replica's ${ofVictim.length} stacks started at their new owners at most ${(moved / 1000).toFixed(1)} s after kill -9 (bound ${bound / 1000} s)`,
    );
    assert.ok(moved < bound, `${moved} ms`);
    assert.deepEqual(overlaps(all()), []);
  });

  it("clears a lock a replica on a lost host left in the backend once its lease expired, and not before", async () => {
    const survivors = ["r0", "r2"];
    const ghost = "r9";
    // A stack whose owner is the same whether or not the ghost's lease counts.
    const stack = STACKS.find((s) => ownerOf(s, survivors) === ownerOf(s, [...survivors, ghost])) as string;
    const owner = daemons.get(ownerOf(stack, survivors) as string) as DaemonProcess;
    assert.ok(
      Number(
        postgres.sql(`SELECT count(*) FROM pulumi_state WHERE key LIKE '${postgres.keys}/stacks/store/${stack}.%'`),
      ) > 0,
      "the backend keeps the stack where its locks are looked for",
    );
    // The ghost's lease, renewed just now on host node-lost: live for 30 s (longer than the
    // replicas' own, so the update meets its lock while it is live), then expired.
    const ghostLeaseSeconds = 30;
    const lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name: `g8s-${ghost}`,
        namespace: "g8s-system",
        labels: { "g8s.io/reconciler": "true" },
        annotations: { "g8s.io/busy": "[]", "g8s.io/host": "node-lost" },
      },
      spec: {
        holderIdentity: ghost,
        leaseDurationSeconds: ghostLeaseSeconds,
        renewTime: new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z"),
      },
    };
    const created = spawnSync(KUBECTL, ["--kubeconfig", kubeconfig, "create", "-f", "-"], {
      input: JSON.stringify(lease),
      encoding: "utf8",
    });
    assert.equal(created.status, 0, created.stderr);
    // ...and the lock it held when its host was lost, as the Pulumi CLI writes one.
    const plantedAt = Date.now();
    const key = postgres.plantLock("store", stack, { pid: 4242, hostname: "node-lost", at: new Date(plantedAt) });
    const lockRows = () => Number(postgres.sql(`SELECT count(*) FROM pulumi_state WHERE key = '${key}'`));
    assert.equal(lockRows(), 1);

    // A change to the stack needs an update, which the lock holds up.
    writeFixtureStack(
      sandbox,
      stack,
      { a: "2" },
      { "g8s:reconcile": { mode: "correct", interval: `${INTERVAL_SECONDS}s` } },
    );
    const cleared = await waitFor(
      "the owner to clear the dead replica's lock",
      async () => owner.logs.find((l) => l.msg === "cleared a stale backend lock" && l.stack === stack),
      120_000,
    );
    const clearedAt = Date.parse(String(cleared.time));
    assert.equal(cleared.ownerState, "replica-gone");
    assert.equal(cleared.ownerHost, "node-lost");
    const floor = (ghostLeaseSeconds + 5) * 1000; // its lease duration + fence grace (the shutdown grace)
    console.log(
      `      the lock was cleared ${((clearedAt - plantedAt) / 1000).toFixed(1)} s after it was left (no sooner than ${floor / 1000} s)`,
    );
    assert.ok(clearedAt - plantedAt >= floor, `cleared after ${clearedAt - plantedAt} ms`);
    const busy = owner.logs.filter(
      (l) => l.msg === "stack busy: retrying soon" && l.stack === stack && Date.parse(String(l.time)) > plantedAt,
    );
    assert.ok(busy.length > 0, "the update waited on the lock while the ghost's lease was live");
    assert.equal(lockRows(), 0);
    await waitFor(
      "the change applied after the lock was cleared",
      async () =>
        passesOf("owner", owner).some((p) => p.stack === stack && p.start > clearedAt && p.outcome === "corrected")
          ? true
          : undefined,
      120_000,
    );
    spawnSync(KUBECTL, ["--kubeconfig", kubeconfig, "-n", "g8s-system", "delete", "lease", `g8s-${ghost}`]);
  });

  it("leaves every stack's state exportable with its history intact", async () => {
    for (const d of daemons.values()) await d.stop();
    daemons.clear();
    for (const stack of STACKS) {
      const handle = await openStack(sandbox, stack, { PULUMI_BACKEND_URL: postgres.url });
      const state = await handle.exportStack();
      assert.ok((state.deployment as { resources?: unknown[] }).resources?.length, `${stack} has resources`);
      const history = await handle.history();
      assert.ok(history.length >= 1, `${stack} has its updates`);
      assert.ok(
        history.every((u) => u.result === "succeeded"),
        `${stack}: ${history.map((u) => u.result).join(", ")}`,
      );
    }
  });
});
