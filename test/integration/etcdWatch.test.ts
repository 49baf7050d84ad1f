/**
 * The daemon's etcd watch against a real kube-apiserver (the host cluster of `g8s host up`):
 * masters' Nodes carrying the annotation `g8s-etcd-snapshot` writes (test/lab/ha.test.ts proves
 * the script writes it on a booted cluster) become `g8s_etcd_snapshot_last_good_timestamp_seconds`
 * through the stack's adminKubeconfig output; a later snapshot moves the series, a master that
 * goes away drops it, and a cluster that cannot be reached counts a failed look.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Registry } from "prom-client";
import { stringify, parse } from "yaml";
import { kubeApiFor, targetFromEnvironment } from "../../automation/coordination/kubeClient";
import type { KubeApi } from "../../automation/host/https";
import { EtcdSnapshotWatch } from "../../automation/reconciler/etcdWatch";
import { ReconcilerMetrics } from "../../automation/reconciler/metrics";
import type { StateResource } from "../../automation/reconciler/types";
import { ETCD_LAST_GOOD_ANNOTATION } from "../../components/bootstrap/etcdBackup";
import { hostDown, hostUp } from "./harness";

const KUBECTL = path.resolve(__dirname, "../../.tools/bin/kubectl");
const PREFIX = "g8s-etcd-watch-";

function node(name: string, master: boolean, lastGood?: string) {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: `${PREFIX}${name}`,
      labels: master ? { "node-role.kubernetes.io/control-plane": "" } : {},
      annotations: lastGood === undefined ? {} : { [ETCD_LAST_GOOD_ANNOTATION]: lastGood },
    },
  };
}

function stackState(adminKubeconfig: string): StateResource[] {
  return [
    { urn: "urn:pulumi:s::g8s::pulumi:pulumi:Stack::g8s-s", type: "pulumi:pulumi:Stack", outputs: { adminKubeconfig } },
  ] as unknown as StateResource[];
}

describe("the daemon's etcd watch on a real kube-apiserver", function () {
  this.timeout(300_000);
  let dir: string;
  let hostDir: string;
  let api: KubeApi;
  let admin: string;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "g8s-etcd-watch-it-"));
    hostDir = path.join(dir, "host");
    const kubeconfig = hostUp(hostDir);
    api = kubeApiFor(targetFromEnvironment({ KUBECONFIG: kubeconfig }));
    // As the stack exports it: one file, certificates embedded.
    const flat = spawnSync(KUBECTL, ["--kubeconfig", kubeconfig, "config", "view", "--raw", "--flatten"], {
      encoding: "utf8",
    });
    assert.equal(flat.status, 0, flat.stderr);
    admin = flat.stdout;
  });

  after(async () => {
    for (const n of ["m0", "m1", "w0"]) await api?.delete(`/api/v1/nodes/${PREFIX}${n}`).catch(() => undefined);
    api?.close();
    if (hostDir) hostDown(hostDir, true);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("exports each master's last good snapshot, follows a newer one, drops a gone master, counts an unreachable cluster", async () => {
    await api.create("/api/v1/nodes", node("m0", true, "2026-12-02T12:00:00Z"));
    await api.create("/api/v1/nodes", node("m1", true)); // no snapshot yet
    await api.create("/api/v1/nodes", node("w0", false, "2026-12-02T13:00:00Z")); // a worker: not etcd's

    // A cluster whose API nobody answers: its server moved to a closed port.
    const gone = parse(admin) as { clusters: { cluster: { server: string } }[] };
    gone.clusters[0].cluster.server = "https://127.0.0.1:9";
    const states: Record<string, StateResource[] | undefined> = {
      edge8: stackState(admin),
      edge9: stackState(stringify(gone)),
      fresh: undefined, // not applied yet: nothing to look at, no failure
    };
    const registry = new Registry();
    const metrics = new ReconcilerMetrics(registry);
    const failures: string[] = [];
    const watch = new EtcdSnapshotWatch({
      stacks: async () => Object.keys(states).map((name) => ({ name, intervalSeconds: 21600 })),
      stackResources: async (stack) => states[stack],
      seen: (stack, masters) => metrics.observeEtcdSnapshots(stack.name, stack.intervalSeconds, masters),
      failed: (stack, reason) => {
        failures.push(`${stack}: ${reason}`);
        metrics.etcdWatchFailed(stack);
      },
    });
    const series = async () =>
      (await registry.metrics())
        .split("\n")
        .filter((l) => /^g8s_etcd_/.test(l) && !l.includes(`stack="fresh"`))
        .sort();

    await watch.observe();
    assert.deepEqual(await series(), [
      'g8s_etcd_backup_interval_seconds{stack="edge8"} 21600',
      `g8s_etcd_snapshot_last_good_timestamp_seconds{stack="edge8",node="${PREFIX}m0"} ${Date.parse("2026-12-02T12:00:00Z") / 1000}`,
      'g8s_etcd_snapshot_watch_failures_total{stack="edge8"} 0',
      'g8s_etcd_snapshot_watch_failures_total{stack="edge9"} 1',
    ]);
    assert.equal(failures.length, 1);
    assert.match(failures[0], /^edge9: .*(ECONNREFUSED|connect)/);

    // A newer snapshot on m0, a first one on m1: both follow on the next look.
    await api.mergePatch(`/api/v1/nodes/${PREFIX}m0`, {
      metadata: { annotations: { [ETCD_LAST_GOOD_ANNOTATION]: "2026-12-02T18:00:00Z" } },
    });
    await api.mergePatch(`/api/v1/nodes/${PREFIX}m1`, {
      metadata: { annotations: { [ETCD_LAST_GOOD_ANNOTATION]: "2026-12-02T18:00:05Z" } },
    });
    await watch.observe();
    const second = await series();
    assert.ok(
      second.includes(
        `g8s_etcd_snapshot_last_good_timestamp_seconds{stack="edge8",node="${PREFIX}m0"} ${Date.parse("2026-12-02T18:00:00Z") / 1000}`,
      ),
      second.join("\n"),
    );
    assert.ok(
      second.includes(
        `g8s_etcd_snapshot_last_good_timestamp_seconds{stack="edge8",node="${PREFIX}m1"} ${Date.parse("2026-12-02T18:00:05Z") / 1000}`,
      ),
      second.join("\n"),
    );
    assert.ok(second.includes('g8s_etcd_snapshot_watch_failures_total{stack="edge9"} 2'));

    // m1 leaves the cluster: its series goes with it.
    await api.delete(`/api/v1/nodes/${PREFIX}m1`);
    await watch.observe();
    assert.equal((await series()).filter((l) => l.includes(`${PREFIX}m1`)).length, 0);
    await watch.stop();
  });
});
