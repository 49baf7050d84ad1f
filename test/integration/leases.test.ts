/**
 * Replicas coordinating through real `coordination.k8s.io/v1` Leases on the host cluster's
 * kube-apiserver (`g8s host up`), on the real clock: the API server's optimistic concurrency,
 * label selection, busy annotations, deletion with a precondition, and three coordinators dividing
 * stacks, one killed, one stopped.
 */
import * as assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Coordinator, type LeaseStore } from "../../automation/coordination/coordinator";
import { kubeApiFor, targetFromEnvironment } from "../../automation/coordination/kubeClient";
import { KubernetesLeaseStore, LEASE_PREFIX } from "../../automation/coordination/kubernetesLeases";
import { KubernetesStatusBoard } from "../../automation/coordination/kubernetesStatus";
import { ownerOf } from "../../automation/coordination/rendezvous";
import type { KubeApi } from "../../automation/host/https";
import { systemClock } from "../../automation/reconciler/clock";
import { hostDown, hostUp } from "./harness";
import type { Log } from "../../automation/reconciler/scheduler";

const NAMESPACE = "g8s-system";
const STACKS = Array.from({ length: 9 }, (_, i) => `stack-${i}`);
const TIMING = { leaseDurationMs: 3_000, renewIntervalMs: 1_000, fenceGraceMs: 6_000 };
const silent: Log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A store that can be cut off, as a replica killed with -9 stops talking. */
function killable(store: LeaseStore): LeaseStore & { kill(): void } {
  let dead = false;
  const alive = () => {
    if (dead) throw new Error("killed");
  };
  return {
    kill: () => (dead = true),
    list: async () => (alive(), store.list()),
    write: async (lease, version) => (alive(), store.write(lease, version)),
    release: async (replica, version) => (alive(), store.release(replica, version)),
  };
}

describe("coordination on the host cluster's Leases (real kube-apiserver)", function () {
  this.timeout(600_000);
  let dir: string;
  let hostDir: string;
  let api: KubeApi;
  let store: KubernetesLeaseStore;
  const coordinators: Coordinator[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "g8s-leases-it-"));
    hostDir = path.join(dir, "host");
    const kubeconfig = hostUp(hostDir);
    api = kubeApiFor(targetFromEnvironment({ KUBECONFIG: kubeconfig }));
    await api.create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE } });
    store = new KubernetesLeaseStore(api, NAMESPACE);
  });

  after(async () => {
    for (const c of coordinators) await c.stop().catch(() => undefined);
    api?.close();
    if (hostDir) hostDown(hostDir, true);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("keeps a status ConfigMap per replica and deletes a gone replica's (twice is no error)", async () => {
    const board = new KubernetesStatusBoard(api, NAMESPACE);
    const savedAt = new Date().toISOString();
    for (const replica of ["old-pod", "live-pod"]) await board.publish({ replica, savedAt, stacks: [] });
    assert.deepEqual((await board.read()).map((d) => d.replica).sort(), ["live-pod", "old-pod"]);
    await board.remove("old-pod");
    await board.remove("old-pod");
    assert.deepEqual(
      (await board.read()).map((d) => d.replica),
      ["live-pod"],
    );
    await board.remove("live-pod");
  });

  it("creates a Lease, replaces only the version it read, deletes only its own version", async () => {
    const lease = { replica: "solo", renewTime: new Date().toISOString(), durationMs: 3_000, busy: ["stack-1"] };
    const created = await store.write(lease, undefined);
    assert.notEqual(created, "conflict");
    assert.equal(await store.write(lease, undefined), "conflict", "a second create meets the first");
    const v1 = (created as { version: string }).version;
    const renewed = await store.write({ ...lease, busy: [] }, v1);
    assert.notEqual(renewed, "conflict");
    assert.equal(await store.write(lease, v1), "conflict", "a write over a version since replaced is refused (409)");
    const listed = (await store.list()).find((l) => l.replica === "solo");
    assert.deepEqual(
      { ...listed, version: undefined, renewTime: undefined },
      { replica: "solo", durationMs: 3_000, busy: [], version: undefined, renewTime: undefined },
    );
    const raw = await api.get<{ spec: { holderIdentity: string; renewTime: string; leaseDurationSeconds: number } }>(
      `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${LEASE_PREFIX}solo`,
    );
    assert.equal(raw.spec.holderIdentity, "solo");
    assert.equal(raw.spec.leaseDurationSeconds, 3);
    assert.match(raw.spec.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, "a MicroTime");
    await store.release("solo", v1);
    assert.ok(
      (await store.list()).some((l) => l.replica === "solo"),
      "an old version's delete leaves it (precondition)",
    );
    await store.release("solo", (renewed as { version: string }).version);
    assert.ok(!(await store.list()).some((l) => l.replica === "solo"));
  });

  it("divides stacks among three replicas, moves a killed one's after its lease expired, a stopped one's at once", async () => {
    const stores = ["r0", "r1", "r2"].map(() => killable(store));
    const made = ["r0", "r1", "r2"].map(
      (replica, i) => new Coordinator({ replica, store: stores[i], clock: systemClock, log: silent, ...TIMING }),
    );
    coordinators.push(...made);
    await Promise.all(made.map((c) => c.start()));
    const startable = () =>
      new Map(STACKS.map((s) => [s, made.filter((c) => c.holdsLease() && c.mayStart(s).ok).map((c) => c.replica)]));
    const until = async (what: string, check: () => boolean, ms: number) => {
      const deadline = Date.now() + ms;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
        await sleep(100);
      }
    };
    const everyStackTo = (replicas: string[]) => () =>
      [...startable()].every(([s, who]) => who.length === 1 && who[0] === ownerOf(s, replicas));

    await until("each stack startable by its owner only", everyStackTo(["r0", "r1", "r2"]), 10_000);
    const ofR1 = STACKS.filter((s) => ownerOf(s, ["r0", "r1", "r2"]) === "r1");
    assert.ok(ofR1.length > 0);
    assert.deepEqual(await made[1].begin(ofR1[0]), { ok: true });

    // kill -9 of r1: its Lease stays on the API server, busy stack and all.
    const killedAt = Date.now();
    stores[1].kill();
    await until(
      "r1's stacks with r0 and r2",
      () => {
        const now = startable();
        return ofR1.slice(1).every((s) => now.get(s)?.length === 1 && now.get(s)?.[0] === ownerOf(s, ["r0", "r2"]));
      },
      15_000,
    );
    const movedMs = Date.now() - killedAt;
    assert.ok(movedMs >= TIMING.leaseDurationMs, `moved after ${movedMs} ms: before the lease could expire`);
    assert.deepEqual(startable().get(ofR1[0]), [], "r1's busy stack waits for the fence grace");
    await until("r1's busy stack too", () => startable().get(ofR1[0])?.length === 1, 10_000);
    const busyMovedMs = Date.now() - killedAt;
    assert.ok(busyMovedMs >= TIMING.leaseDurationMs + TIMING.fenceGraceMs, `busy stack moved after ${busyMovedMs} ms`);

    // A clean stop deletes r2's Lease: r0 takes everything after settling, no expiry to wait for.
    const stoppedAt = Date.now();
    await made[2].stop();
    await until("every stack with r0", everyStackTo(["r0"]), 10_000);
    const handoverMs = Date.now() - stoppedAt;
    assert.ok(
      handoverMs < TIMING.leaseDurationMs + 2 * TIMING.renewIntervalMs + 1_000,
      `hand-over took ${handoverMs} ms`,
    );
    console.log(
      `      killed replica's stacks moved after ${movedMs} ms (its busy one after ${busyMovedMs} ms); stopped replica's after ${handoverMs} ms`,
    );
  });
});
