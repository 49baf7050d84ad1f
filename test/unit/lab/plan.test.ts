import * as assert from "node:assert/strict";
import { labBridge, labNetwork, labPlan, networkConfig, podNetns, podVeth } from "../../../automation/lab/plan";
import { parseClusterSpec, type KvmClusterSpec } from "../../../components/spec";
import { cidrsOverlap, parseCidr, type Cidr } from "../../../components/spec/cidr";
import { kvmSpec } from "../spec/helpers";

function spec(change: (raw: Record<string, unknown>) => void = () => {}): KvmClusterSpec {
  const raw = kvmSpec();
  raw.masters = { count: 3 };
  raw.nodePools = [
    { name: "default", count: 2 },
    { name: "big", count: 1 },
  ];
  change(raw);
  return parseClusterSpec(raw, "stacks/Pulumi.t.yaml") as KvmClusterSpec;
}

const cidr = (text: string) => parseCidr(text) as Cidr;

describe("lab plan", () => {
  it("has one node per QEMU pod of the platform, with the Secret and key the pod mounts", () => {
    const plan = labPlan(spec());
    assert.deepEqual(
      plan.nodes.map((n) => [n.name, n.role, n.userData.secret, n.userData.key, n.filesSecret]),
      [
        ["master-0", "master", "master-user-data", "user-data-0", "master-secrets"],
        ["master-1", "master", "master-user-data", "user-data-1", "master-secrets"],
        ["master-2", "master", "master-user-data", "user-data-2", "master-secrets"],
        ["pool-default-0", "worker", "pool-default-user-data", "user-data", "worker-secrets"],
        ["pool-default-1", "worker", "pool-default-user-data", "user-data", "worker-secrets"],
        ["pool-big-0", "worker", "pool-big-user-data", "user-data", "worker-secrets"],
      ],
    );
    assert.equal(plan.namespace, "g8s-edge7");
  });

  it("gives distinct addresses in a lab /24 and resolves the API Service names to the first master", () => {
    const plan = labPlan(spec());
    const addresses = plan.nodes.map((n) => n.address);
    assert.equal(new Set(addresses).size, addresses.length);
    for (const a of [...addresses, plan.bridgeAddress]) assert.ok(cidrsOverlap(cidr(`${a}/32`), cidr(plan.network)), a);
    assert.match(
      plan.hosts,
      new RegExp(`^${plan.nodes[0].address.replace(/\./g, "\\.")} api\\.g8s-edge7 api\\.g8s-edge7\\.svc `, "m"),
    );
    assert.match(networkConfig(plan.nodes[1], plan), /host0:\n {4}addresses: \[\d+\.\d+\.\d+\.\d+\/24\]/);
  });

  it("keeps the lab network clear of the pod and service ranges, and stable per cluster", () => {
    const s = spec();
    const network = labNetwork(s);
    assert.equal(labNetwork(s), network);
    const third = Number(network.split(".")[2]);
    const clash = spec((raw) => (raw.kubernetes = { podCidr: `10.123.${third - (third % 8)}.0/21` }));
    const moved = labNetwork(clash);
    assert.notEqual(moved, network);
    assert.ok(!cidrsOverlap(cidr(moved), cidr(clash.kubernetes.podCidr)));
  });

  it("names the bridge within the 15 characters Linux allows", () => {
    assert.ok(labBridge("a-twenty-char-id-xyz").length <= 15);
    assert.notEqual(labBridge("a"), labBridge("b"));
  });

  it("boots the workers given with --vm as VMs, in their StatefulSet's pod, and every other node as a container", () => {
    const plan = labPlan(spec(), ["pool-big-0", "pool-default-1"]);
    assert.deepEqual(
      plan.nodes.map((n) => [n.name, n.substrate, n.statefulSet]),
      [
        ["master-0", "container", "master"],
        ["master-1", "container", "master"],
        ["master-2", "container", "master"],
        ["pool-default-0", "container", "pool-default"],
        ["pool-default-1", "vm", "pool-default"],
        ["pool-big-0", "vm", "pool-big"],
      ],
    );
    assert.deepEqual(
      labPlan(spec()).nodes.map((n) => n.substrate),
      plan.nodes.map(() => "container"),
    );
  });

  it("refuses --vm for a master or a node the stack does not have, naming the choices", () => {
    assert.throws(
      () => labPlan(spec(), ["master-1"]),
      /^RangeError: --vm master-1: only workers boot as VMs \(an emulated control plane misses kubeadm's timeouts\); pick one of pool-default-0, pool-default-1, pool-big-0$/,
    );
    assert.throws(
      () => labPlan(spec(), ["pool-default-7"]),
      /^RangeError: --vm pool-default-7: no such node \(nodes: master-0, master-1, master-2, pool-default-0, pool-default-1, pool-big-0\)$/,
    );
  });

  it("names a VM's pod netns and veth per cluster and node, the veth within 15 characters", () => {
    assert.equal(podNetns("lab9", "pool-default-0"), "g8s-lab9-pool-default-0");
    const veths = [
      podVeth("lab9", "pool-default-0"),
      podVeth("lab9", "pool-default-1"),
      podVeth("lab8", "pool-default-0"),
    ];
    assert.equal(new Set(veths).size, 3);
    for (const v of veths) assert.ok(v.length <= 15, v);
  });
});
