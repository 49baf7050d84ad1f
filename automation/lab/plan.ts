/**
 * What `g8s lab up` builds for a KVM-platform stack, decided before anything runs (pure): one
 * node per QEMU pod the platform creates (`master-<n>`, `pool-<pool>-<n>`), the Secret key of its
 * user-data and the Secret of its files, a lab network that overlaps none of the spec's ranges,
 * and the names the guests resolve: the API Service names of the host cluster, which the lab
 * points at the first master (one master answers; a 3-master lab stops a later one). Chosen
 * workers boot as QEMU VMs through the platform's pod entrypoint (`tools/qemu-node`), each in a
 * network namespace standing in for its pod; the others as system containers.
 */
import { createHash } from "node:crypto";
import { cidrsOverlap, nthAddress, parseCidr, type Cidr } from "../../components/spec/cidr";
import type { KvmClusterSpec } from "../../components/spec";
import { apiServiceNames, K8S_NAMES, kvmNamespace, poolUserDataName, poolSetName } from "../../components/kvm/naming";

export interface LabNode {
  /** The pod name the node stands in for, and its hostname and Kubernetes node name. */
  readonly name: string;
  readonly role: "master" | "worker";
  /** The Secret (in the guest's namespace on the host cluster) and key holding its user-data. */
  readonly userData: { readonly secret: string; readonly key: string };
  /** The Secret whose files the node finds at the platform's mount (`/mnt/g8s-secrets`). */
  readonly filesSecret: string;
  /** Address on the lab bridge (prefix length: the lab network's). */
  readonly address: string;
  /** The StatefulSet whose pod the node stands in for (a VM node runs with its container's env). */
  readonly statefulSet: string;
  /** `vm`: a QEMU VM started by the pod image's entrypoint; `container`: a system container. */
  readonly substrate: "container" | "vm";
  /** Size of the node's own disk (the spec's `diskGiB`, as its VM would have). */
  readonly diskGiB: number;
}

export interface LabPlan {
  readonly clusterId: string;
  readonly namespace: string;
  /** The lab network: the bridge holds `.1`, nodes `.10` on. */
  readonly network: string;
  readonly prefixLength: number;
  readonly bridge: string;
  readonly bridgeAddress: string;
  readonly nodes: readonly LabNode[];
  /** `/etc/hosts` of every node: localhost, the nodes, and the API names → the first master. */
  readonly hosts: string;
}

/** Networks the lab tries, first free one wins: 10.123.<n>.0/24. */
const LAB_BASE = [10, 123] as const;
const LAB_NETWORKS = 200;
const FIRST_NODE_HOST = 10;

function cidrOf(text: string): Cidr {
  const c = parseCidr(text);
  if (typeof c === "string") throw new RangeError(`${text}: ${c}`);
  return c;
}

/** A /24 for the lab that overlaps neither the pod nor the service range; stable per cluster id. */
export function labNetwork(spec: KvmClusterSpec): string {
  const taken = [spec.kubernetes.podCidr, spec.kubernetes.serviceCidr].map(cidrOf);
  const start = createHash("sha256").update(spec.id).digest().readUInt16BE(0) % LAB_NETWORKS;
  for (let i = 0; i < LAB_NETWORKS; i++) {
    const text = `${LAB_BASE[0]}.${LAB_BASE[1]}.${(start + i) % LAB_NETWORKS}.0/24`;
    if (!taken.some((t) => cidrsOverlap(t, cidrOf(text)))) return text;
  }
  throw new RangeError(`no free lab network in ${LAB_BASE.join(".")}.0.0/16 beside the spec's pod and service ranges`);
}

/** The bridge's name: at most 15 characters (IFNAMSIZ), one per cluster id. */
export function labBridge(clusterId: string): string {
  return `g8s${createHash("sha256").update(clusterId).digest("hex").slice(0, 8)}`;
}

/** The network namespace standing in for a VM node's pod. */
export function podNetns(clusterId: string, node: string): string {
  return `g8s-${clusterId}-${node}`;
}

/** The lab end of a VM node's pod veth (its pod end is `eth0`): 12 characters, one per node. */
export function podVeth(clusterId: string, node: string): string {
  return `gv${createHash("sha256").update(`${clusterId}/${node}`).digest("hex").slice(0, 10)}`;
}

/**
 * The lab of a spec; `vmNodes` (worker names) boot as QEMU VMs. Masters stay system containers:
 * under emulation a control plane misses kubeadm's timeouts.
 */
export function labPlan(spec: KvmClusterSpec, vmNodes: readonly string[] = []): LabPlan {
  const network = labNetwork(spec);
  const cidr = cidrOf(network);
  const nodes: LabNode[] = [];
  for (let slot = 0; slot < spec.masters.count; slot++) {
    nodes.push({
      name: `${K8S_NAMES.masters}-${slot}`,
      role: "master",
      statefulSet: K8S_NAMES.masters,
      userData: { secret: K8S_NAMES.masterUserData, key: `user-data-${slot}` },
      filesSecret: K8S_NAMES.masterSecrets,
      address: "",
      substrate: "container",
      diskGiB: spec.masters.diskGiB,
    });
  }
  for (const pool of spec.nodePools) {
    for (let i = 0; i < pool.count; i++) {
      nodes.push({
        name: `${poolSetName(pool.name)}-${i}`,
        role: "worker",
        statefulSet: poolSetName(pool.name),
        userData: { secret: poolUserDataName(pool.name), key: "user-data" },
        filesSecret: K8S_NAMES.workerSecrets,
        address: "",
        substrate: "container",
        diskGiB: pool.diskGiB,
      });
    }
  }
  for (const vm of vmNodes) {
    const node = nodes.find((n) => n.name === vm);
    if (node === undefined) {
      throw new RangeError(`--vm ${vm}: no such node (nodes: ${nodes.map((n) => n.name).join(", ")})`);
    }
    if (node.role !== "worker") {
      throw new RangeError(
        `--vm ${vm}: only workers boot as VMs (an emulated control plane misses kubeadm's timeouts); pick one of ${nodes
          .filter((n) => n.role === "worker")
          .map((n) => n.name)
          .join(", ")}`,
      );
    }
  }
  const addressed = nodes.map((n, i) => ({
    ...n,
    address: nthAddress(cidr, FIRST_NODE_HOST + i),
    substrate: vmNodes.includes(n.name) ? ("vm" as const) : ("container" as const),
  }));
  const firstMaster = addressed[0];
  const hosts = [
    "127.0.0.1 localhost",
    "::1 localhost ip6-localhost ip6-loopback",
    ...addressed.map((n) => `${n.address} ${n.name}`),
    `${firstMaster.address} ${apiServiceNames(spec).join(" ")}`,
    "",
  ].join("\n");
  return {
    clusterId: spec.id,
    namespace: kvmNamespace(spec),
    network,
    prefixLength: cidr.prefix,
    bridge: labBridge(spec.id),
    bridgeAddress: nthAddress(cidr, 1),
    nodes: addressed,
    hosts,
  };
}

/** cloud-init NoCloud `meta-data` of a node. */
export function metaData(node: LabNode, clusterId: string): string {
  return `instance-id: g8s-lab-${clusterId}-${node.name}\nlocal-hostname: ${node.name}\n`;
}

/** A host route: `to` (an address) through `via` (a node on the lab bridge). */
export interface LabRoute {
  readonly to: string;
  readonly via: string;
}

/**
 * Routes to the masters' Service addresses, which the masters hold on `lo` and advertise: where
 * the host cluster's Service network would carry them to the master pod, the lab routes them to
 * the master's node, from every other node.
 */
export function serviceRoutes(node: LabNode, plan: LabPlan, masterAddresses: readonly string[]): LabRoute[] {
  const masters = plan.nodes.filter((n) => n.role === "master");
  return masters.flatMap((m, slot) =>
    m.name === node.name || masterAddresses[slot] === undefined ? [] : [{ to: masterAddresses[slot], via: m.address }],
  );
}

/** cloud-init NoCloud `network-config` (version 2): the node's address on the lab bridge (nspawn's `host0`). */
export function networkConfig(node: LabNode, plan: LabPlan, routes: readonly LabRoute[] = []): string {
  return [
    "version: 2",
    "ethernets:",
    // The key is the interface name: cloud-init 22.4's networkd renderer matches on the key, not `match`.
    "  host0:",
    `    addresses: [${node.address}/${plan.prefixLength}]`,
    `    routes: [${[
      { to: "0.0.0.0/0", via: plan.bridgeAddress },
      ...routes.map((r) => ({ to: `${r.to}/32`, via: r.via })),
    ]
      .map((r) => `{ to: ${r.to}, via: ${r.via} }`)
      .join(", ")}]`,
    "",
  ].join("\n");
}
