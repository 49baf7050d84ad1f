/**
 * The objects `up` keeps in the host cluster: KWOK's fake Nodes, sized for the QEMU pods of
 * components/kvm, and the RBAC that lets KWOK act as their kubelet. Pure functions; the
 * HostCluster class sends them.
 */
import { KVM_DEVICE_RESOURCE, TUN_DEVICE_RESOURCE } from "../../components/kvm/constants";
import { KWOK_NODE_ANNOTATION } from "./config";
import { KWOK_USER } from "./pki";

/** How many fake nodes and what each advertises. */
export interface NodeShape {
  readonly count: number;
  readonly cpus: number;
  readonly memoryGiB: number;
  readonly pods: number;
  readonly ephemeralStorageGiB: number;
  /** `devices.kubevirt.io/kvm` and `devices.kubevirt.io/tun` per node: one of each per QEMU pod. */
  readonly devices: number;
}

/** Two nodes that each hold several small guest clusters' VMs (2 CPU / 4-8 GiB per VM). */
export const DEFAULT_NODE_SHAPE: NodeShape = {
  count: 2,
  cpus: 16,
  memoryGiB: 64,
  pods: 110,
  ephemeralStorageGiB: 200,
  devices: 110,
};

/** The label every node of ours carries; `up` lists, creates and prunes nodes by it. */
export const HOST_NODE_LABEL = "g8s.io/host-node";
export const NODE_NAME_PREFIX = "g8s-host-node-";
/** Fake node addresses: 10.255.0.<n+1>. Nothing listens there; pods get IPs from KWOK's pod CIDR. */
export const NODE_IP_PREFIX = "10.255.0.";

export interface NodeObject {
  readonly apiVersion: "v1";
  readonly kind: "Node";
  readonly metadata: {
    readonly name: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations: Readonly<Record<string, string>>;
  };
  readonly spec: Record<string, never>;
  readonly status: {
    readonly capacity: Readonly<Record<string, string>>;
    readonly allocatable: Readonly<Record<string, string>>;
    readonly addresses: readonly { readonly type: string; readonly address: string }[];
  };
}

/** Kubernetes' name for the machine's architecture (node label kubernetes.io/arch). */
export function kubernetesArch(nodeArch: string = process.arch): string {
  return nodeArch === "x64" ? "amd64" : nodeArch;
}

/** What a node advertises: capacity = allocatable (nothing is reserved on a fake node). */
export function nodeResources(shape: NodeShape): Record<string, string> {
  return {
    cpu: String(shape.cpus),
    memory: `${shape.memoryGiB}Gi`,
    pods: String(shape.pods),
    "ephemeral-storage": `${shape.ephemeralStorageGiB}Gi`,
    [KVM_DEVICE_RESOURCE]: String(shape.devices),
    [TUN_DEVICE_RESOURCE]: String(shape.devices),
  };
}

/**
 * The fake nodes. Untainted: the QEMU pods carry no KWOK toleration, and on this host cluster
 * the fake nodes are where they are meant to go. Status is set at creation (a Node may carry
 * status on create); KWOK's node-initialize stage keeps capacity and allocatable and adds
 * conditions, node info and the lease.
 */
export function nodeObjects(shape: NodeShape = DEFAULT_NODE_SHAPE, arch: string = kubernetesArch()): NodeObject[] {
  if (!Number.isInteger(shape.count) || shape.count < 1 || shape.count > 250) {
    throw new RangeError(`node count must be a whole number from 1 to 250 (got ${shape.count})`);
  }
  const resources = nodeResources(shape);
  return Array.from({ length: shape.count }, (_, i) => {
    const name = `${NODE_NAME_PREFIX}${i}`;
    return {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name,
        labels: {
          [HOST_NODE_LABEL]: "true",
          "kubernetes.io/hostname": name,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": arch,
          "node.kubernetes.io/instance-type": "kwok",
          type: "kwok",
        },
        annotations: {
          [KWOK_NODE_ANNOTATION.key]: KWOK_NODE_ANNOTATION.value,
          "node.alpha.kubernetes.io/ttl": "0",
        },
      },
      spec: {},
      status: {
        capacity: resources,
        allocatable: resources,
        addresses: [
          { type: "InternalIP", address: `${NODE_IP_PREFIX}${i + 1}` },
          { type: "Hostname", address: name },
        ],
      },
    };
  });
}

/** The parts of a Node the host cluster reads back. */
export interface ObservedNode {
  readonly metadata: { readonly name: string };
  readonly spec?: { readonly taints?: readonly { readonly key: string; readonly effect: string }[] };
  readonly status?: {
    readonly allocatable?: Readonly<Record<string, string>>;
    readonly capacity?: Readonly<Record<string, string>>;
    readonly conditions?: readonly { readonly type: string; readonly status: string }[];
  };
}

export function isNodeReady(node: ObservedNode): boolean {
  return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** Taints the node lifecycle controller sets while a node is not (yet) Ready. */
const LIFECYCLE_TAINTS = ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"];

/**
 * Ready and no longer carrying the lifecycle controller's not-ready/unreachable taints: a pod
 * created now is scheduled. (A fresh node is Ready a moment before the controller lifts them.)
 */
export function isNodeUsable(node: ObservedNode): boolean {
  return isNodeReady(node) && !(node.spec?.taints ?? []).some((t) => LIFECYCLE_TAINTS.includes(t.key));
}

/** What to do so the nodes in the cluster are the desired ones. */
export interface NodeActions {
  readonly create: readonly NodeObject[];
  /** Existing nodes whose capacity or allocatable differ: patch their status. */
  readonly resize: readonly NodeObject[];
  /** Nodes with our label that are no longer wanted (the count went down). */
  readonly remove: readonly string[];
}

const sameResources = (a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>>) =>
  a !== undefined && Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);

export function nodeActions(desired: readonly NodeObject[], existing: readonly ObservedNode[]): NodeActions {
  const byName = new Map(existing.map((n) => [n.metadata.name, n]));
  const wanted = new Set(desired.map((n) => n.metadata.name));
  return {
    create: desired.filter((n) => !byName.has(n.metadata.name)),
    resize: desired.filter((n) => {
      const current = byName.get(n.metadata.name);
      return (
        current !== undefined &&
        !(
          sameResources(current.status?.capacity, n.status.capacity) &&
          sameResources(current.status?.allocatable, n.status.allocatable)
        )
      );
    }),
    remove: existing.map((n) => n.metadata.name).filter((name) => !wanted.has(name)),
  };
}

/**
 * RBAC for KWOK's identity: what a kubelet does to its nodes and their pods (read nodes,
 * write node and pod status, delete finished pods, renew leases, post events), for every node.
 * A ClusterRole rather than system:masters, so KWOK can do nothing else.
 */
export function kwokRbacObjects(): [Record<string, unknown>, Record<string, unknown>] {
  const name = "g8s:host:kwok";
  const rules = [
    { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
    { apiGroups: [""], resources: ["nodes/status", "pods/status"], verbs: ["patch", "update"] },
    { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch", "update", "patch", "delete"] },
    { apiGroups: [""], resources: ["events"], verbs: ["create", "patch", "update"] },
    {
      apiGroups: ["coordination.k8s.io"],
      resources: ["leases"],
      verbs: ["get", "list", "watch", "create", "update", "patch"],
    },
  ];
  return [
    { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name }, rules },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: KWOK_USER }],
    },
  ];
}
