/** KWOK's fake nodes: sized for the QEMU pods of components/kvm, and kept in line with the shape. */
import * as assert from "node:assert/strict";
import { KVM_DEVICE_RESOURCE, TUN_DEVICE_RESOURCE } from "../../../components/kvm/constants";
import { podResources } from "../../../components/kvm/workload";
import {
  DEFAULT_NODE_SHAPE,
  HOST_NODE_LABEL,
  isNodeReady,
  isNodeUsable,
  kubernetesArch,
  kwokRbacObjects,
  nodeActions,
  nodeObjects,
  type ObservedNode,
} from "../../../automation/host/nodes";
import { KWOK_USER } from "../../../automation/host/pki";

/** Kubernetes quantities as the tests need them: whole numbers, Mi and Gi. */
function quantity(q: string): number {
  const m = /^(\d+)(Mi|Gi)?$/.exec(q);
  assert.ok(m, `quantity ${q}`);
  return Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
}

describe("host nodes", () => {
  it("makes two nodes of 16 CPUs, 64 GiB, 110 pods and 110 kvm and tun devices each by default", () => {
    const nodes = nodeObjects();
    assert.deepEqual(
      nodes.map((n) => n.metadata.name),
      ["g8s-host-node-0", "g8s-host-node-1"],
    );
    for (const n of nodes) {
      assert.deepEqual(n.status.allocatable, {
        cpu: "16",
        memory: "64Gi",
        pods: "110",
        "ephemeral-storage": "200Gi",
        [KVM_DEVICE_RESOURCE]: "110",
        [TUN_DEVICE_RESOURCE]: "110",
      });
      assert.deepEqual(n.status.capacity, n.status.allocatable);
    }
  });

  it("marks them for KWOK (annotation kwok.x-k8s.io/node=fake) and for g8s, without a taint", () => {
    const [n] = nodeObjects();
    assert.equal(n.metadata.annotations["kwok.x-k8s.io/node"], "fake");
    assert.equal(n.metadata.labels[HOST_NODE_LABEL], "true");
    assert.equal(n.metadata.labels["kubernetes.io/hostname"], n.metadata.name);
    assert.equal(n.metadata.labels["kubernetes.io/os"], "linux");
    assert.deepEqual(n.spec, {}, "no taints: the QEMU pods carry no KWOK toleration");
    assert.equal(kubernetesArch("x64"), "amd64");
    assert.equal(kubernetesArch("arm64"), "arm64");
  });

  it("fits the QEMU pod of a default KVM node (2 CPUs, 8 GiB) with room for several", () => {
    const pod = podResources(2, 8, "kvm");
    const node = nodeObjects()[0].status.allocatable;
    for (const [resource, request] of Object.entries(pod)) {
      assert.ok(resource in node, `nodes advertise ${resource}`);
      assert.ok(quantity(node[resource]) >= 4 * quantity(request), `${resource}: ${node[resource]} ≥ 4 × ${request}`);
    }
  });

  it("refuses a node count outside 1 to 250", () => {
    assert.throws(() => nodeObjects({ ...DEFAULT_NODE_SHAPE, count: 0 }), /from 1 to 250 \(got 0\)/);
  });

  it("creates missing nodes, resizes changed ones and removes ones no longer wanted", () => {
    const desired = nodeObjects({ ...DEFAULT_NODE_SHAPE, count: 3 });
    const existing: ObservedNode[] = [
      { metadata: { name: "g8s-host-node-0" }, status: desired[0].status },
      { metadata: { name: "g8s-host-node-1" }, status: { ...desired[1].status, allocatable: { cpu: "8" } } },
      { metadata: { name: "g8s-host-node-7" }, status: desired[0].status },
    ];
    const actions = nodeActions(desired, existing);
    assert.deepEqual(
      actions.create.map((n) => n.metadata.name),
      ["g8s-host-node-2"],
    );
    assert.deepEqual(
      actions.resize.map((n) => n.metadata.name),
      ["g8s-host-node-1"],
    );
    assert.deepEqual(actions.remove, ["g8s-host-node-7"]);
    assert.deepEqual(nodeActions(desired, desired), { create: [], resize: [], remove: [] });
  });

  it("reads readiness from the Ready condition only", () => {
    const node = (conditions: { type: string; status: string }[]): ObservedNode => ({
      metadata: { name: "n" },
      status: { conditions },
    });
    assert.equal(isNodeReady(node([{ type: "Ready", status: "True" }])), true);
    assert.equal(isNodeReady(node([{ type: "Ready", status: "Unknown" }])), false);
    assert.equal(isNodeReady(node([{ type: "MemoryPressure", status: "True" }])), false);
    assert.equal(isNodeReady({ metadata: { name: "n" } }), false);
  });

  it("counts a node usable once the lifecycle controller has lifted its not-ready taints", () => {
    const ready = { conditions: [{ type: "Ready", status: "True" }] };
    const tainted = (key: string): ObservedNode => ({
      metadata: { name: "n" },
      spec: { taints: [{ key, effect: "NoSchedule" }] },
      status: ready,
    });
    assert.equal(isNodeUsable({ metadata: { name: "n" }, status: ready }), true);
    assert.equal(isNodeUsable(tainted("node.kubernetes.io/not-ready")), false);
    assert.equal(isNodeUsable(tainted("node.kubernetes.io/unreachable")), false);
    assert.equal(isNodeUsable(tainted("example.com/dedicated")), true);
  });

  it("binds KWOK's user to a role that writes node and pod status but cannot touch secrets", () => {
    const [role, binding] = kwokRbacObjects() as [
      { rules: { resources: string[]; verbs: string[] }[] },
      { subjects: { kind: string; name: string }[] },
    ];
    assert.deepEqual(
      binding.subjects.map((s) => `${s.kind}/${s.name}`),
      [`User/${KWOK_USER}`],
    );
    const resources = role.rules.flatMap((r) => r.resources);
    for (const r of ["nodes", "nodes/status", "pods", "pods/status", "leases"]) assert.ok(resources.includes(r), r);
    assert.ok(!resources.includes("secrets") && !resources.includes("*"));
  });
});
