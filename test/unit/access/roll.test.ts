/**
 * Which KVM nodes a roll restarts and in what order, read from the host's StatefulSets and pods
 * (automation/access/roll.ts), and where it finds the host cluster. The roll itself (drain, the
 * pod made again, the node back) runs on a real guest cluster in test/lab/ha.test.ts.
 */
import * as assert from "node:assert/strict";
import { parse } from "yaml";
import { hostKubeconfig, readNodeSets, rollSteps, type Kubectl, type NodeSet } from "../../../automation/access/roll";
import type { Run } from "../../../automation/access/guestNodes";

const pod = (name: string, revision: string) => ({
  name,
  uid: `uid-${name}`,
  revision,
  ready: true,
  deleting: false,
});

describe("rollSteps", () => {
  it("masters first, then pools by name, each set by ordinal; pods on the update revision are left", () => {
    const sets: NodeSet[] = [
      { name: "pool-b", master: false, updateRevision: "b2", pods: [pod("pool-b-0", "b1")] },
      {
        name: "pool-a",
        master: false,
        updateRevision: "a2",
        pods: [pod("pool-a-10", "a1"), pod("pool-a-2", "a1"), pod("pool-a-1", "a2")],
      },
      { name: "master", master: true, updateRevision: "m2", pods: [pod("master-2", "m1"), pod("master-0", "m1")] },
    ];
    assert.deepEqual(
      rollSteps(sets).map((s) => [s.node, s.master, s.updateRevision, s.uid]),
      [
        ["master-0", true, "m2", "uid-master-0"],
        ["master-2", true, "m2", "uid-master-2"],
        ["pool-a-2", false, "a2", "uid-pool-a-2"],
        ["pool-a-10", false, "a2", "uid-pool-a-10"],
        ["pool-b-0", false, "b2", "uid-pool-b-0"],
      ],
    );
  });

  it("first the node a stopped roll was at after its pod was made again (the set names it); a named pod still behind is an ordinary step", () => {
    const sets: NodeSet[] = [
      { name: "master", master: true, updateRevision: "m2", pods: [pod("master-0", "m1"), pod("master-1", "m1")] },
      {
        name: "pool-a",
        master: false,
        updateRevision: "a2",
        rolling: "pool-a-1",
        pods: [pod("pool-a-0", "a1"), pod("pool-a-1", "a2")],
      },
      { name: "pool-b", master: false, updateRevision: "b2", rolling: "pool-b-0", pods: [pod("pool-b-0", "b1")] },
    ];
    assert.deepEqual(
      rollSteps(sets).map((s) => [s.node, s.finish === true, s.uid]),
      [
        ["pool-a-1", true, ""],
        ["master-0", false, "uid-master-0"],
        ["master-1", false, "uid-master-1"],
        ["pool-a-0", false, "uid-pool-a-0"],
        ["pool-b-0", false, "uid-pool-b-0"],
      ],
    );
  });

  it("nothing when every pod runs its set's template (a resumed roll that finished)", () => {
    const sets: NodeSet[] = [{ name: "master", master: true, updateRevision: "m2", pods: [pod("master-0", "m2")] }];
    assert.deepEqual(rollSteps(sets), []);
  });
});

/** A host kubectl that answers `get statefulsets` and `get pods` from fixed lists, counting the looks. */
function fakeHost(sets: object[][], pods: Record<string, object[]>): Kubectl & { calls: string[] } {
  const calls: string[] = [];
  let look = 0;
  return {
    calls,
    run: (): Promise<Run> => Promise.reject(new Error("not used")),
    json: <T>(args: readonly string[]): Promise<T> => {
      calls.push(args.join(" "));
      if (args[1] === "statefulsets") return Promise.resolve({ items: sets[Math.min(look++, sets.length - 1)] } as T);
      return Promise.resolve({ items: pods[args[args.length - 1]] ?? [] } as T);
    },
  };
}

const set = (name: string, role: string, generation: number, observed: number, revision?: string) => ({
  metadata: { name, generation },
  spec: {
    selector: { matchLabels: { "g8s.io/cluster": "c1", "g8s.io/role": role } },
    template: { metadata: { labels: { "g8s.io/role": role } } },
  },
  status: { observedGeneration: observed, ...(revision ? { updateRevision: revision } : {}) },
});
const hostPod = (name: string, revision: string, ready: string) => ({
  metadata: { name, uid: `u-${name}`, labels: { "controller-revision-hash": revision } },
  status: { conditions: [{ type: "Ready", status: ready }] },
});

describe("readNodeSets", () => {
  it("reads each set's update revision and its pods by the set's selector; the role from the template", async () => {
    const host = fakeHost([[set("master", "master", 3, 3, "m2")]], {
      "g8s.io/cluster=c1,g8s.io/role=master": [hostPod("master-0", "m1", "True"), hostPod("master-1", "m2", "False")],
    });
    const sets = await readNodeSets(host, "g8s-c1", "c1");
    assert.deepEqual(sets, [
      {
        name: "master",
        master: true,
        updateRevision: "m2",
        pods: [
          { name: "master-0", uid: "u-master-0", revision: "m1", ready: true, deleting: false },
          { name: "master-1", uid: "u-master-1", revision: "m2", ready: false, deleting: false },
        ],
      },
    ]);
    assert.equal(host.calls[0], "get statefulsets -n g8s-c1 -l g8s.io/cluster=c1");
  });

  it("waits for a set whose controller has not seen its latest spec (its update revision is not known yet)", async () => {
    const host = fakeHost([[set("pool-a", "worker", 4, 3, "a1")], [set("pool-a", "worker", 4, 4, "a2")]], {
      "g8s.io/cluster=c1,g8s.io/role=worker": [hostPod("pool-a-0", "a1", "True")],
    });
    const sets = await readNodeSets(host, "g8s-c1", "c1");
    assert.equal(sets[0].updateRevision, "a2");
    assert.deepEqual(
      rollSteps(sets).map((s) => s.node),
      ["pool-a-0"],
    );
  });
});

describe("hostKubeconfig", () => {
  const provider = (kubeconfig?: string) => ({
    urn: "urn:pulumi:c1::g8s::g8s:Cluster$pulumi:providers:kubernetes::c1-host",
    type: "pulumi:providers:kubernetes",
    inputs: kubeconfig === undefined ? {} : { kubeconfig },
    outputs: {},
  });

  it("the stack's own host kubeconfig (g8s:hostKubeconfig) when its host provider has one", () => {
    assert.equal(
      hostKubeconfig([provider("apiVersion: v1\nkind: Config\n")], { KUBECONFIG: "/x" }, () => "ambient"),
      "apiVersion: v1\nkind: Config\n",
    );
  });

  it("the file its host provider names (the provider takes a path too)", () => {
    const text = hostKubeconfig([provider("/lab/host/kubeconfig\n")], {}, (f) => `read: ${f}`);
    assert.equal(text, "read: /lab/host/kubeconfig");
  });

  it("else KUBECONFIG's first file", () => {
    const read: string[] = [];
    const text = hostKubeconfig([provider()], { KUBECONFIG: ":/a/config:/b/config" }, (f) => {
      read.push(f);
      return "ambient: yes";
    });
    assert.equal(text, "ambient: yes");
    assert.deepEqual(read, ["/a/config"]);
  });

  it("else the pod's ServiceAccount; an error naming the ways when there is none", () => {
    const doc = parse(
      hostKubeconfig([], { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" }, () => ""),
    ) as { clusters: { cluster: { server: string } }[]; users: { user: { tokenFile: string } }[] };
    assert.equal(doc.clusters[0].cluster.server, "https://10.0.0.1:443");
    assert.equal(doc.users[0].user.tokenFile, "/var/run/secrets/kubernetes.io/serviceaccount/token");
    assert.throws(() => hostKubeconfig([], {}, () => ""), /no host kubeconfig: .*g8s:hostKubeconfig.*KUBECONFIG/);
  });
});
