/**
 * The conventions every part of g8s shares: the ports Kubernetes listens on, the tag and label
 * keys g8s puts on what it creates, and the names derived from a spec. One home for each, pure
 * and free of Pulumi, so the components, the policy pack (policy/) and the reconciler all read
 * the same values. Defaults of the spec live in defaults.ts; these are not configurable.
 *
 * A key or a name here is part of live infrastructure: changing one retags, relabels or
 * replaces what every existing cluster runs.
 */
import type { ClusterSpec } from "./schema";

// Ports

/** The API server's secure port on every master, behind every API load balancer and Service. */
export const API_PORT = 6443;
/** The kubelet's API (logs, exec, metrics): never open beyond the cluster. */
export const KUBELET_PORT = 10250;
/** etcd's client and peer ports: open between masters only. */
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
/**
 * The pod network between nodes (`kubernetes.cni`), open among the nodes only. Calico: VXLAN
 * (Calico's default VXLAN port) and calico-node → Typha. flannel: VXLAN on Linux's default port,
 * which flannel uses too. Both encapsulate every pod packet between nodes, so the outer packet
 * carries node addresses (no BGP, no IP-in-IP, no cloud route or source/destination exception).
 */
export const CALICO_VXLAN_PORT = 4789;
export const CALICO_TYPHA_PORT = 5473;
export const FLANNEL_VXLAN_PORT = 8472;

/** One port of the cluster's ingress: `port` on its load balancer or Service, `nodePort` on every worker. */
export interface IngressPort {
  /** `http` or `https`: part of resource names, never change it. */
  readonly key: "http" | "https";
  readonly port: number;
  readonly nodePort: number;
}

/** The ingress ports: 80 and 443 outside, `ingress.httpNodePort` / `httpsNodePort` on the workers. */
export function ingressPorts(spec: Pick<ClusterSpec, "ingress">): readonly IngressPort[] {
  return [
    { key: "http", port: 80, nodePort: spec.ingress.httpNodePort },
    { key: "https", port: 443, nodePort: spec.ingress.httpsNodePort },
  ];
}

// Users

/** The RBAC group of the admin kubeconfig (cluster-admin by the API server's bootstrap policy): no user may claim it. */
export const ADMIN_GROUP = "system:masters";

/** A user's name: the CN of its client certificate, the `User` of RBAC subjects. */
export const USER_NAME_RE = /^[a-z0-9]([a-z0-9._@-]{0,62}[a-z0-9])?$/;

/** Why `value` is no user name, or undefined when it is one. */
export function userNameProblem(value: string): string | undefined {
  return USER_NAME_RE.test(value)
    ? undefined
    : `must be 1 to 64 lowercase letters, digits, '.', '_', '@' or '-', starting and ending with a letter or digit (got '${value}')`;
}

// Tags and labels

/** The tag (AWS) and label (Kubernetes) every object of a guest cluster carries, value the cluster id. */
export const CLUSTER_TAG_KEY = "g8s.io/cluster";
/** Role of a node and its pod or instance: `master` or `worker`. */
export const ROLE_LABEL = "g8s.io/role";
/** The node pool of a worker: on its Kubernetes node, its KVM pod and its AWS instances and group. */
export const POOL_LABEL = "g8s.io/pool";
/** Master slot (`0` … `masters.count - 1`) of an AWS master's group, instance, etcd volume and interface. */
export const MASTER_SLOT_TAG = "g8s.io/master-slot";
/** What a load balancer serves: `api` (the Kubernetes API) or `ingress` (the workers' ingress node ports). */
export const LOAD_BALANCER_TAG = "g8s.io/load-balancer";

// Names derived from the spec

/** The stable key of master slot `slot`: `master-<slot>`. It names certificates, volumes and pods. */
export function masterKey(slot: number): string {
  return `master-${slot}`;
}

/** The key of every master slot of a spec: `master-0` … `master-<masters.count - 1>`. */
export function masterKeys(spec: Pick<ClusterSpec, "masters">): string[] {
  return Array.from({ length: spec.masters.count }, (_, slot) => masterKey(slot));
}

/** `<id>.<baseDomain>`: the cluster's own DNS zone and the root CA's CN. */
export function clusterDomain(spec: Pick<ClusterSpec, "id" | "baseDomain">): string {
  return `${spec.id}.${spec.baseDomain}`;
}

/** `api.<id>.<baseDomain>`: the API's DNS name (AWS record, KVM host Ingress, a SAN of the API certificate). */
export function apiDnsName(spec: Pick<ClusterSpec, "id" | "baseDomain">): string {
  return `api.${clusterDomain(spec)}`;
}

/**
 * Host and port of an API endpoint `https://<host>[:<port>]` (port defaults to API_PORT): the
 * form every kubeconfig and kubeadm configuration takes.
 * @throws RangeError naming the expected form
 */
export function parseApiEndpoint(apiEndpoint: string): { readonly host: string; readonly port: number } {
  const m = /^https:\/\/([a-z0-9.-]+|\[[0-9a-f:]+\])(?::(\d{1,5}))?\/?$/i.exec(apiEndpoint);
  if (!m) {
    throw new RangeError(`apiEndpoint must be an https URL like https://api.example.com:6443 (got '${apiEndpoint}')`);
  }
  return { host: m[1], port: m[2] === undefined ? API_PORT : Number(m[2]) };
}

/** `*.<id>.<baseDomain>`: the wildcard record of the cluster's ingress. */
export function ingressDnsName(spec: Pick<ClusterSpec, "id" | "baseDomain">): string {
  return `*.${clusterDomain(spec)}`;
}
