/**
 * kubeadm configuration (kubeadm.k8s.io/v1beta4) as typed objects: ClusterConfiguration,
 * InitConfiguration, JoinConfiguration and the KubeletConfiguration kubeadm init uploads. The
 * field names follow the v1beta4 Go types; kubeadmSchema.ts checks them strictly in tests.
 */
import { stringify } from "yaml";
import { API_PORT, POOL_LABEL, clusterDomain, parseApiEndpoint, type ClusterSpec, type Taint } from "../spec";
import { apiServerDnsNames, firstServiceIp } from "../pki/certificates";
import {
  CRI_SOCKET,
  DISCOVERY_KUBECONFIG_PATH,
  ETCD_DATA_DIR,
  KUBEADM_API_VERSION,
  KUBELET_API_VERSION,
  PKI_DIR,
} from "./constants";
import { NODE_IMAGE_COREDNS_TAG, NODE_IMAGE_ETCD_TAG } from "./nodeImage";

export interface KubeadmArg {
  readonly name: string;
  readonly value: string;
}

export interface HostPathMount {
  readonly name: string;
  readonly hostPath: string;
  readonly mountPath: string;
  readonly readOnly?: boolean;
  readonly pathType?: string;
}

export interface KubeadmTaint {
  readonly key: string;
  readonly value?: string;
  readonly effect: Taint["effect"];
}

export interface NodeRegistrationOptions {
  readonly name?: string;
  readonly criSocket?: string;
  readonly taints: readonly KubeadmTaint[];
  readonly kubeletExtraArgs?: readonly KubeadmArg[];
  readonly ignorePreflightErrors?: readonly string[];
  readonly imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
}

export interface ClusterConfiguration {
  readonly apiVersion: typeof KUBEADM_API_VERSION;
  readonly kind: "ClusterConfiguration";
  readonly clusterName: string;
  readonly kubernetesVersion: string;
  readonly controlPlaneEndpoint: string;
  readonly certificatesDir: string;
  readonly encryptionAlgorithm: "RSA-2048";
  readonly networking: { readonly serviceSubnet: string; readonly podSubnet: string; readonly dnsDomain: string };
  readonly apiServer: { readonly certSANs: readonly string[]; readonly extraArgs?: readonly KubeadmArg[] };
  readonly controllerManager: { readonly extraArgs?: readonly KubeadmArg[] };
  readonly scheduler: { readonly extraVolumes?: readonly HostPathMount[] };
  /** The node image's CoreDNS (`kubernetes.packages: image`); otherwise kubeadm's default. */
  readonly dns?: { readonly imageTag: string };
  readonly etcd: {
    readonly local: {
      readonly dataDir: string;
      /** The node image's etcd (`kubernetes.packages: image`); otherwise kubeadm's default. */
      readonly imageTag?: string;
      readonly serverCertSANs: readonly string[];
      readonly peerCertSANs: readonly string[];
    };
  };
}

export interface InitConfiguration {
  readonly apiVersion: typeof KUBEADM_API_VERSION;
  readonly kind: "InitConfiguration";
  readonly localAPIEndpoint: { readonly bindPort: number; readonly advertiseAddress?: string };
  readonly nodeRegistration: NodeRegistrationOptions;
  readonly timeouts: { readonly kubernetesAPICall: string };
}

export interface JoinConfiguration {
  readonly apiVersion: typeof KUBEADM_API_VERSION;
  readonly kind: "JoinConfiguration";
  readonly caCertPath: string;
  readonly discovery: { readonly file: { readonly kubeConfigPath: string } };
  readonly controlPlane?: {
    readonly localAPIEndpoint: { readonly bindPort: number; readonly advertiseAddress?: string };
  };
  readonly nodeRegistration: NodeRegistrationOptions;
}

export interface KubeletConfiguration {
  readonly apiVersion: typeof KUBELET_API_VERSION;
  readonly kind: "KubeletConfiguration";
  readonly cgroupDriver: "systemd";
  readonly clusterDomain: string;
  readonly rotateCertificates: boolean;
  readonly failCgroupV1: false;
}

export type KubeadmDocument =
  ClusterConfiguration | InitConfiguration | JoinConfiguration | KubeletConfiguration | KubeProxyConfiguration;

/** What the kubeadm documents depend on: non-secret values only. */
export interface KubeadmInput {
  readonly spec: ClusterSpec;
  /** `https://host:port` of the API (load balancer or Service); host:port becomes controlPlaneEndpoint. */
  readonly apiEndpoint: string;
  /** Extra API server SANs (load-balancer names, Service IPs). */
  readonly apiCertSans?: readonly string[];
  readonly serviceDnsDomain: string;
}

export const CONTROL_PLANE_TAINT: KubeadmTaint = { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" };

/** `host:port` of an `https://host:port` endpoint (port defaults to 6443). */
export function controlPlaneEndpoint(apiEndpoint: string): string {
  const { host, port } = parseApiEndpoint(apiEndpoint);
  return `${host}:${port}`;
}

function hostOf(endpoint: string): string {
  return endpoint.slice(0, endpoint.lastIndexOf(":"));
}

/**
 * ClusterConfiguration in external-CA mode: every certificate under certificatesDir comes from
 * ClusterPki, so certSANs and etcd SANs only document what those certificates carry.
 */
export function clusterConfiguration(input: KubeadmInput): ClusterConfiguration {
  const { spec } = input;
  const endpoint = controlPlaneEndpoint(input.apiEndpoint);
  const sans = [
    ...apiServerDnsNames(spec, input.serviceDnsDomain),
    hostOf(endpoint),
    ...(input.apiCertSans ?? []),
    firstServiceIp(spec.kubernetes.serviceCidr),
    "127.0.0.1",
  ];
  return {
    apiVersion: KUBEADM_API_VERSION,
    kind: "ClusterConfiguration",
    clusterName: spec.id,
    kubernetesVersion: `v${spec.kubernetes.version}`,
    controlPlaneEndpoint: endpoint,
    certificatesDir: PKI_DIR,
    encryptionAlgorithm: "RSA-2048",
    networking: {
      serviceSubnet: spec.kubernetes.serviceCidr,
      podSubnet: spec.kubernetes.podCidr,
      dnsDomain: input.serviceDnsDomain,
    },
    apiServer: { certSANs: [...new Set(sans)] },
    controllerManager: {},
    // The scheduler's kubeconfig names its client certificate by path: mount the PKI directory.
    scheduler: {
      extraVolumes: [
        { name: "k8s-certs", hostPath: PKI_DIR, mountPath: PKI_DIR, readOnly: true, pathType: "Directory" },
      ],
    },
    ...(spec.kubernetes.packages === "image" ? { dns: { imageTag: NODE_IMAGE_COREDNS_TAG } } : {}),
    etcd: {
      local: {
        dataDir: ETCD_DATA_DIR,
        ...(spec.kubernetes.packages === "image" ? { imageTag: NODE_IMAGE_ETCD_TAG } : {}),
        serverCertSANs: [`etcd.${clusterDomain(spec)}`],
        peerCertSANs: [`etcd.${clusterDomain(spec)}`],
      },
    },
  };
}

/** kubelet `--node-labels` for a pool's labels plus g8s.io/pool, sorted (stable bytes). */
export function nodeLabelArgs(labels: Readonly<Record<string, string>>): KubeadmArg[] {
  const entries = Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.length === 0 ? [] : [{ name: "node-labels", value: entries.map(([k, v]) => `${k}=${v}`).join(",") }];
}

function taintsOf(taints: readonly Taint[]): KubeadmTaint[] {
  return taints.map((t) => (t.value === undefined ? { key: t.key, effect: t.effect } : { ...t }));
}

/** Files g8s places before `kubeadm join` (kubelet identity, CA): kubeadm's "already exists" checks must not stop it. */
export const JOIN_PREFLIGHT_IGNORES = [
  "FileAvailable--etc-kubernetes-kubelet.conf",
  "FileAvailable--etc-kubernetes-pki-ca.crt",
];

function masterRegistration(ignores: readonly string[], nodeIp?: string): NodeRegistrationOptions {
  return {
    criSocket: CRI_SOCKET,
    taints: [CONTROL_PLANE_TAINT],
    kubeletExtraArgs: [
      ...nodeLabelArgs({ [POOL_LABEL]: "control-plane" }),
      ...(nodeIp === undefined ? [] : [{ name: "node-ip", value: nodeIp }]),
    ],
    ...(ignores.length > 0 ? { ignorePreflightErrors: [...ignores] } : {}),
  };
}

/**
 * How long kubeadm init retries its first API call. kubeadm 1.34 makes it (the admin
 * ClusterRoleBinding) before it waits for the control plane, with a 1-minute default: a node whose
 * API server needs longer to start (a busy host, a slow disk) failed init while its API server
 * came up seconds later (seen on a real node). As long as kubeadm waits for the components.
 */
export const INIT_API_CALL_TIMEOUT = "4m0s";

/**
 * InitConfiguration of the first master. No bootstrapTokens: the token is a secret, so the node
 * creates it from its delivered file after init (`kubeadm token create`). The kubelet's node IP
 * is set only where the platform gives the node a fixed interface address (AWS); a KVM master
 * advertises its Service address, which is not its node IP.
 */
export function initConfiguration(
  advertiseAddress?: string,
  node: { readonly nodeIp?: string } = { nodeIp: advertiseAddress },
): InitConfiguration {
  return {
    apiVersion: KUBEADM_API_VERSION,
    kind: "InitConfiguration",
    localAPIEndpoint: localEndpoint(advertiseAddress),
    nodeRegistration: masterRegistration([], node.nodeIp),
    timeouts: { kubernetesAPICall: INIT_API_CALL_TIMEOUT },
  };
}

/** The master's API (and etcd) endpoint: the fixed IP when the platform gives one, else kubeadm's default. */
function localEndpoint(advertiseAddress?: string): { readonly bindPort: number; readonly advertiseAddress?: string } {
  return advertiseAddress === undefined ? { bindPort: API_PORT } : { advertiseAddress, bindPort: API_PORT };
}

export interface KubeProxyConfiguration {
  readonly apiVersion: "kubeproxy.config.k8s.io/v1alpha1";
  readonly kind: "KubeProxyConfiguration";
  readonly conntrack: { readonly maxPerCore: number };
}

/**
 * kube-proxy settings kubeadm init uploads (kube-proxy ConfigMap). `maxPerCore: 0` leaves the
 * kernel's connection-tracking table size alone: it is one value for the whole machine, which
 * kube-proxy in a node that does not own its kernel (a system container) may not write, and it
 * exited there ("open /proc/sys/net/netfilter/nf_conntrack_max: permission denied"). The kernel
 * sizes the table by memory; a node that needs more sets the sysctl itself.
 */
export function kubeProxyConfiguration(): KubeProxyConfiguration {
  return {
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    conntrack: { maxPerCore: 0 },
  };
}

/** kubelet settings kubeadm init uploads for every node (kubelet-config ConfigMap). */
export function kubeletConfiguration(input: KubeadmInput): KubeletConfiguration {
  return {
    apiVersion: KUBELET_API_VERSION,
    kind: "KubeletConfiguration",
    cgroupDriver: "systemd",
    clusterDomain: input.serviceDnsDomain,
    rotateCertificates: true,
    // kubelet 1.35 refuses a cgroup v1 host unless told otherwise (it warns at 1.31 to 1.34).
    // Nodes are VMs and instances on cgroup v2; a node that is a system container on a cgroup
    // v1 host (the lab) must still run after an upgrade. On cgroup v2 it changes nothing.
    failCgroupV1: false,
  };
}

/**
 * JoinConfiguration: file discovery through the delivered discovery kubeconfig (CA pinned by
 * the file, bootstrap token as its credential), so the token never appears in this document.
 */
export function joinConfiguration(
  target:
    | { readonly kind: "master"; readonly advertiseAddress?: string; readonly nodeIp?: string }
    | {
        readonly kind: "worker";
        readonly labels: Readonly<Record<string, string>>;
        readonly taints: readonly Taint[];
        readonly pool: string;
      },
): JoinConfiguration {
  const base = {
    apiVersion: KUBEADM_API_VERSION,
    kind: "JoinConfiguration",
    caCertPath: `${PKI_DIR}/ca.crt`,
    discovery: { file: { kubeConfigPath: DISCOVERY_KUBECONFIG_PATH } },
  } as const;
  if (target.kind === "master") {
    return {
      ...base,
      controlPlane: { localAPIEndpoint: localEndpoint(target.advertiseAddress) },
      nodeRegistration: masterRegistration(
        JOIN_PREFLIGHT_IGNORES,
        "nodeIp" in target ? target.nodeIp : target.advertiseAddress,
      ),
    };
  }
  return {
    ...base,
    nodeRegistration: {
      criSocket: CRI_SOCKET,
      taints: taintsOf(target.taints),
      kubeletExtraArgs: nodeLabelArgs({ ...target.labels, [POOL_LABEL]: target.pool }),
      ignorePreflightErrors: [...JOIN_PREFLIGHT_IGNORES],
    },
  };
}

/** A multi-document YAML stream, `---` between documents. */
export function renderDocuments(docs: readonly object[]): string {
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join("---\n");
}
