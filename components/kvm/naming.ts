/**
 * Kubernetes object names and endpoints of a KVM guest cluster. They depend on the spec only,
 * never on the Pulumi resource names, so GuestCluster can compute the API endpoint (for
 * ClusterPki) before any resource exists. Every name here must never change once released: a
 * new name replaces the object, and a new StatefulSet name loses the VM disks (PVC names
 * derive from it).
 */
import { API_PORT, CLUSTER_TAG_KEY, POOL_LABEL, ROLE_LABEL, apiDnsName, type KvmClusterSpec } from "../spec";

/** Optional host Ingress in front of the API (ingress-nginx with SSL passthrough). */
export interface KvmApiIngressArgs {
  /** IngressClass of an ingress-nginx controller started with `--enable-ssl-passthrough`. */
  readonly className: string;
}

/** Names of the objects in a guest's namespace. */
export const K8S_NAMES = {
  masters: "master",
  /** Headless Service of the masters: etcd peers and the masters' StatefulSet serviceName. */
  etcd: "etcd",
  /** Headless Service of the workers: the pools' StatefulSet serviceName. */
  workers: "workers",
  api: "api",
  ingress: "ingress",
  masterUserData: "master-user-data",
  masterSecrets: "master-secrets",
  workerSecrets: "worker-secrets",
} as const;

/** The StatefulSet of a pool: keyed by pool name, so reordering `nodePools` changes nothing. */
export function poolSetName(poolName: string): string {
  return `pool-${poolName}`;
}

export function poolUserDataName(poolName: string): string {
  return `pool-${poolName}-user-data`;
}

/** The guest's namespace on the host cluster: `<kvm.namespacePrefix><id>`. */
export function kvmNamespace(spec: KvmClusterSpec): string {
  return `${spec.kvm.namespacePrefix}${spec.id}`;
}

/** DNS names of the API Service inside the host cluster, short to fully qualified. */
export function apiServiceNames(spec: KvmClusterSpec, serviceDnsDomain = "cluster.local"): string[] {
  const ns = kvmNamespace(spec);
  return [`${K8S_NAMES.api}.${ns}`, `${K8S_NAMES.api}.${ns}.svc`, `${K8S_NAMES.api}.${ns}.svc.${serviceDnsDomain}`];
}

/**
 * The API endpoint of the guest cluster: `https://api.<id>.<baseDomain>` (port 443, TLS passed
 * through) with an API Ingress, else the API Service's DNS name in the host cluster,
 * `https://api.<namespace>.svc:6443` (reachable from the host cluster and from the guest's VMs,
 * whose DNS is the host cluster's).
 */
export function kvmApiEndpoint(spec: KvmClusterSpec, apiIngress?: KvmApiIngressArgs): string {
  if (apiIngress !== undefined) return `https://${apiDnsName(spec)}`;
  return `https://${K8S_NAMES.api}.${kvmNamespace(spec)}.svc:${API_PORT}`;
}

/** Labels of every object of the guest cluster on the host. */
export function clusterLabels(spec: KvmClusterSpec): Record<string, string> {
  return { [CLUSTER_TAG_KEY]: spec.id, "app.kubernetes.io/managed-by": "g8s" };
}

/** Selector labels of the masters' pods (immutable in a StatefulSet: never change them). */
export function masterSelector(spec: KvmClusterSpec): Record<string, string> {
  return { [CLUSTER_TAG_KEY]: spec.id, [ROLE_LABEL]: "master" };
}

/** Selector labels of all workers' pods, any pool. */
export function workerSelector(spec: KvmClusterSpec): Record<string, string> {
  return { [CLUSTER_TAG_KEY]: spec.id, [ROLE_LABEL]: "worker" };
}

/** Selector labels of one pool's pods (immutable in a StatefulSet: never change them). */
export function poolSelector(spec: KvmClusterSpec, poolName: string): Record<string, string> {
  return { ...workerSelector(spec), [POOL_LABEL]: poolName };
}

const SECRET_KEY_RE = /^[-._a-zA-Z0-9]+$/;

/**
 * Checks the file names of the node secrets: each becomes a key of a Kubernetes Secret and a
 * file in the VM's share, so it must be a plain file name (`ca.crt`, not `pki/ca.crt`).
 */
export function checkNodeSecretNames(role: "master" | "worker", names: readonly string[]): string | undefined {
  if (names.length === 0) return `nodeSecrets.${role} is empty: pass the ${role}s' certificate files`;
  const bad = names.filter((n) => !SECRET_KEY_RE.test(n) || n === "." || n === ".." || n.startsWith("..")).sort();
  if (bad.length === 0) return undefined;
  return (
    `nodeSecrets.${role} has file names that cannot be Secret keys: ${bad.map((n) => `'${n}'`).join(", ")}; ` +
    `use letters, digits, '-', '_' and '.' only (flatten directories, e.g. 'etcd-ca.crt')`
  );
}
