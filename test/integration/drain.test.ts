/**
 * Draining a removed node pool against a real kube-apiserver, scheduler and controllers (the host
 * cluster of `g8s host up`), its nodes and pods played by KWOK: cordon, the Eviction API with a
 * PodDisruptionBudget that refuses until it goes, DaemonSet pods left alone, the evicted pods
 * recreated on the pool that stays, and the removed pool's Node objects deleted after.
 */
import * as assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { kubeApiFor, targetFromEnvironment } from "../../automation/coordination/kubeClient";
import { KWOK_NODE_ANNOTATION } from "../../automation/host/config";
import type { KubeApi } from "../../automation/host/https";
import { deletePoolNodes, drainPools, poolNodes } from "../../automation/reconciler/drain";
import { POOL_LABEL } from "../../components/spec";
import { hostDown, hostUp } from "./harness";

const NS = "g8s-drain-it";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function kwokNode(name: string, pool: string) {
  const resources = { cpu: "8", memory: "16Gi", pods: "50" };
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      labels: { [POOL_LABEL]: pool, "kubernetes.io/hostname": name, "drain-it": "yes" },
      annotations: { [KWOK_NODE_ANNOTATION.key]: KWOK_NODE_ANNOTATION.value },
    },
    spec: {},
    status: { capacity: resources, allocatable: resources },
  };
}

interface Pod {
  metadata: { name: string; ownerReferences?: { kind: string }[] };
  spec: { nodeName?: string };
  status: { phase?: string };
}

describe("draining a removed node pool on a real kube-apiserver (KWOK nodes)", function () {
  this.timeout(300_000);
  let dir: string;
  let hostDir: string;
  let api: KubeApi;

  const pods = async (selector: string) =>
    (await api.get<{ items: Pod[] }>(`/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent(selector)}`))
      .items;
  const until = async (what: string, ok: () => Promise<boolean>, ms = 60_000) => {
    const end = Date.now() + ms;
    while (!(await ok())) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await sleep(500);
    }
  };

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "g8s-drain-it-"));
    hostDir = path.join(dir, "host");
    api = kubeApiFor(targetFromEnvironment({ KUBECONFIG: hostUp(hostDir) }));
    await api.create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
  });

  after(async () => {
    for (const n of ["drain-it-extra-0", "drain-it-extra-1", "drain-it-keep-0"])
      await api?.delete(`/api/v1/nodes/${n}`).catch(() => undefined);
    api?.close();
    if (hostDir) hostDown(hostDir, true);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("cordons, evicts what may go (a PodDisruptionBudget holds it until it goes), leaves DaemonSet pods, deletes the Nodes after", async () => {
    // The pool to remove, alone at first: every pod lands on it.
    await api.create("/api/v1/nodes", kwokNode("drain-it-extra-0", "extra"));
    await api.create("/api/v1/nodes", kwokNode("drain-it-extra-1", "extra"));
    const onTestNodes = { nodeSelector: { "drain-it": "yes" } };
    const deployment = (name: string, replicas: number) => ({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: NS },
      spec: {
        replicas,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: { ...onTestNodes, containers: [{ name: "c", image: "example.org/web:1" }] },
        },
      },
    });
    await api.create(`/apis/apps/v1/namespaces/${NS}/deployments`, deployment("web", 4));
    await api.create(`/apis/apps/v1/namespaces/${NS}/deployments`, deployment("guarded", 1));
    await api.create(`/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets`, {
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: { name: "guarded", namespace: NS },
      spec: { minAvailable: 1, selector: { matchLabels: { app: "guarded" } } },
    });
    await api.create(`/apis/apps/v1/namespaces/${NS}/daemonsets`, {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "agent", namespace: NS },
      spec: {
        selector: { matchLabels: { app: "agent" } },
        template: {
          metadata: { labels: { app: "agent" } },
          spec: { ...onTestNodes, containers: [{ name: "c", image: "example.org/agent:1" }] },
        },
      },
    });
    const running = (ps: Pod[]) => ps.filter((p) => p.status.phase === "Running");
    await until("5 pods running on the extra pool, an agent on each node", async () => {
      const all = await pods("app in (web,guarded,agent)");
      return running(all).length === 7;
    });
    // The pool that stays.
    await api.create("/api/v1/nodes", kwokNode("drain-it-keep-0", "keep"));

    assert.deepEqual(
      Object.fromEntries(await poolNodes(api, ["c1-pool-extra"])),
      { extra: ["drain-it-extra-0", "drain-it-extra-1"] },
      "only the removed pool's nodes",
    );

    // The budget refuses the last guarded pod: the drain gives up at its timeout, naming it.
    await assert.rejects(
      drainPools(api, ["c1-pool-extra"], { timeoutMs: 8000, pollMs: 1000 }),
      /pool extra not drained after \d+ s: 1 pod\(s\) left: g8s-drain-it\/guarded-\S+ \(Cannot evict pod as it would violate the pod's disruption budget\.\)/,
    );
    for (const n of ["drain-it-extra-0", "drain-it-extra-1"]) {
      const node = await api.get<{ spec: { unschedulable?: boolean } }>(`/api/v1/nodes/${n}`);
      assert.equal(node.spec.unschedulable, true, `${n} cordoned`);
    }
    await until("the web pods recreated on the pool that stays", async () => {
      const web = running(await pods("app=web"));
      return web.length === 4 && web.every((p) => p.spec.nodeName === "drain-it-keep-0");
    });

    await api.delete(`/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/guarded`);
    const report = await drainPools(api, ["c1-pool-extra"], { pollMs: 1000 });
    assert.equal(report.evicted, 1, "the guarded pod (the web pods left in the first drain)");
    const left = (await pods("app in (web,guarded,agent)")).filter((p) =>
      p.spec.nodeName?.startsWith("drain-it-extra"),
    );
    assert.deepEqual(
      left.map((p) => p.metadata.ownerReferences?.[0]?.kind).sort(),
      ["DaemonSet", "DaemonSet"],
      "only the DaemonSet's pods stay on the drained nodes",
    );
    await until("the guarded pod back on the pool that stays", async () =>
      running(await pods("app=guarded")).some((p) => p.spec.nodeName === "drain-it-keep-0"),
    );

    await deletePoolNodes(api, report.pools);
    await until("the removed pool's Nodes gone", async () => (await poolNodes(api, ["c1-pool-extra"])).size === 0);
    process.stdout.write(`      drained pool extra (2 nodes): ${report.evicted} eviction(s) in ${report.ms} ms\n`);
  });
});
