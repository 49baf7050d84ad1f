/**
 * The order of a rolling upgrade, read from what the cluster reports (automation/access/upgrade.ts):
 * what is left after each possible interruption, and the changes it refuses. The rollout itself
 * runs on a real three-master guest cluster in test/lab/ha.test.ts.
 */
import * as assert from "node:assert/strict";
import {
  readyWorkloads,
  upgradeSteps,
  type ClusterVersions,
  type NodeVersion,
} from "../../../automation/access/upgrade";
import type { GuestKubectl } from "../../../automation/access/guestNodes";
import { AccessError } from "../../../automation/access/userKubeconfig";

const OLD = "v1.34.12";
const NEW = "v1.35.4";

function master(name: string, kubelet: string, pods = kubelet): NodeVersion {
  return {
    name,
    master: true,
    kubelet,
    controlPlane: { "kube-apiserver": pods, "kube-controller-manager": pods, "kube-scheduler": pods },
  };
}
function worker(name: string, kubelet: string): NodeVersion {
  return { name, master: false, kubelet };
}
function cluster(version: string, nodes: NodeVersion[]): ClusterVersions {
  return { cluster: version, nodes };
}

describe("upgradeSteps", () => {
  it("upgrade apply on the first master, then the other masters, then the workers, by name", () => {
    const view = cluster(OLD, [
      worker("pool-b-0", OLD),
      master("master-2", OLD),
      worker("pool-a-0", OLD),
      master("master-0", OLD),
      master("master-1", OLD),
    ]);
    assert.deepEqual(upgradeSteps(view, "1.35.4"), [
      { kind: "apply", node: "master-0" },
      { kind: "master", node: "master-1" },
      { kind: "master", node: "master-2" },
      { kind: "worker", node: "pool-a-0" },
      { kind: "worker", node: "pool-b-0" },
    ]);
  });

  it("resumes where a rollout stopped, from what the cluster reports", () => {
    // Stopped after upgrade apply, before master-0's kubelet: upgrade node finishes it.
    assert.deepEqual(
      upgradeSteps(cluster(NEW, [master("master-0", OLD, NEW), master("master-1", OLD), worker("w", OLD)]), NEW),
      [
        { kind: "master", node: "master-0" },
        { kind: "master", node: "master-1" },
        { kind: "worker", node: "w" },
      ],
    );
    // master-1's kubelet restarted but its API server is not back yet: still to do.
    assert.deepEqual(
      upgradeSteps(
        cluster(NEW, [
          master("master-0", NEW),
          {
            ...master("master-1", NEW),
            controlPlane: { "kube-apiserver": OLD, "kube-controller-manager": NEW, "kube-scheduler": NEW },
          },
          worker("w", NEW),
        ]),
        NEW,
      ),
      [{ kind: "master", node: "master-1" }],
    );
    // Every master done: the workers left.
    assert.deepEqual(
      upgradeSteps(cluster(NEW, [master("master-0", NEW), worker("w-0", NEW), worker("w-1", OLD)]), NEW),
      [{ kind: "worker", node: "w-1" }],
    );
  });

  it("has nothing to do on a cluster at the target", () => {
    assert.deepEqual(upgradeSteps(cluster(NEW, [master("master-0", NEW), worker("w", NEW)]), NEW), []);
  });

  it("refuses a downgrade, a skipped minor and a node newer than the target", () => {
    assert.throws(
      () => upgradeSteps(cluster(NEW, [master("master-0", NEW)]), OLD),
      (e: Error) => e instanceof AccessError && /runs v1\.35\.4, newer than v1\.34\.12/.test(e.message),
    );
    assert.throws(() => upgradeSteps(cluster(OLD, [master("master-0", OLD)]), "1.36.0"), /skips a minor/);
    assert.throws(
      () => upgradeSteps(cluster(OLD, [master("master-0", OLD), worker("w", "v1.35.9")]), NEW),
      /w's kubelet is v1\.35\.9, newer than v1\.35\.4/,
    );
    assert.throws(() => upgradeSteps(cluster(OLD, [worker("w", OLD)]), NEW), /no Node labelled/);
  });
});

describe("readyWorkloads", () => {
  it("the Deployments, StatefulSets and DaemonSets with every replica ready: what must be whole again after each node", async () => {
    const items = [
      {
        kind: "Deployment",
        metadata: { name: "web", namespace: "default" },
        spec: { replicas: 2 },
        status: { readyReplicas: 2 },
      },
      {
        kind: "Deployment",
        metadata: { name: "broken", namespace: "default" },
        spec: { replicas: 2 },
        status: { readyReplicas: 1 },
      },
      { kind: "Deployment", metadata: { name: "none", namespace: "default" }, spec: { replicas: 0 }, status: {} },
      { kind: "StatefulSet", metadata: { name: "db", namespace: "data" }, spec: { replicas: 1 }, status: {} },
      {
        kind: "DaemonSet",
        metadata: { name: "kube-proxy", namespace: "kube-system" },
        status: { numberReady: 4, desiredNumberScheduled: 4 },
      },
      {
        kind: "DaemonSet",
        metadata: { name: "flannel", namespace: "kube-flannel" },
        status: { numberReady: 3, desiredNumberScheduled: 4 },
      },
    ];
    const asked: string[] = [];
    const kubectl = {
      json: (args: readonly string[]) => {
        asked.push(args.join(" "));
        return Promise.resolve({ items });
      },
    } as unknown as GuestKubectl;
    assert.deepEqual([...(await readyWorkloads(kubectl))].sort(), [
      "daemonset kube-system/kube-proxy",
      "deployment default/none",
      "deployment default/web",
    ]);
    assert.deepEqual(asked, ["get deployments,statefulsets,daemonsets --all-namespaces"]);
  });
});
