/**
 * The host cluster's fixed shape: its components, the files of a host dir, the command line of
 * every component and the environment it runs in. Pure functions of the host dir and its ports,
 * so every flag is checked by a unit test without a process.
 */
import * as path from "node:path";

/** The processes of a host cluster, in start order. */
export const COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"] as const;
export type ComponentName = (typeof COMPONENTS)[number];

/** Start layers: each layer starts together once the previous one is healthy; `down` goes in reverse. */
export const START_LAYERS: readonly (readonly ComponentName[])[] = [
  ["etcd"],
  ["kube-apiserver"],
  ["kube-controller-manager", "kube-scheduler", "kwok"],
];

/** The binaries `npm run toolchain` builds into `.tools/bin` (one per component, same name). */
export const BINARIES: Readonly<Record<ComponentName, string>> = {
  etcd: "etcd",
  "kube-apiserver": "kube-apiserver",
  "kube-controller-manager": "kube-controller-manager",
  "kube-scheduler": "kube-scheduler",
  kwok: "kwok",
};

/**
 * KWOK's stages (copied from KWOK v0.8.0's `kustomize/stage/` into `.tools/share/kwok/stages/`):
 * nodes become Ready at once and keep a lease; pods become Ready, complete and are deleted.
 * These are the stages `kwokctl` uses by default with node leases.
 */
export const KWOK_STAGE_FILES = [
  "node/fast/node-initialize.yaml",
  "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
  "pod/fast/pod-ready.yaml",
  "pod/fast/pod-complete.yaml",
  "pod/fast/pod-delete.yaml",
] as const;

/** Every server binds here and nowhere else (the API server of a host cluster with a real node aside: ALL_ADDRESSES). */
export const LISTEN_HOST = "127.0.0.1";
/** Where the API server binds when a real node must reach it over its bridge (`up --real-node`). */
export const ALL_ADDRESSES = "0.0.0.0";

/** The Service range of the host cluster; its first address is the `kubernetes` Service. */
export const DEFAULT_SERVICE_CIDR = "10.96.0.0/16";
/** Where KWOK takes fake pod IPs from. */
export const DEFAULT_POD_CIDR = "10.244.0.0/16";
/** The host cluster's DNS domain (names in the API certificate, the service-account issuer). */
export const CLUSTER_DOMAIN = "cluster.local";
/** The name of the cluster in kubeconfigs and in the controller manager. */
export const CLUSTER_NAME = "g8s-host";
/** Seconds a KWOK node lease lives; KWOK renews it, the node lifecycle controller watches it. */
export const NODE_LEASE_SECONDS = 40;
/** Selects the nodes KWOK plays (and nothing else: a real kubelet node can join beside them). */
export const KWOK_NODE_ANNOTATION = { key: "kwok.x-k8s.io/node", value: "fake" } as const;

/** The ports of one host dir, chosen at its first `up` and kept in `host.json`. */
export interface HostPorts {
  readonly etcdClient: number;
  readonly etcdPeer: number;
  readonly apiserver: number;
  readonly controllerManager: number;
  readonly scheduler: number;
  readonly kwok: number;
}
export const PORT_NAMES: readonly (keyof HostPorts)[] = [
  "etcdClient",
  "etcdPeer",
  "apiserver",
  "controllerManager",
  "scheduler",
  "kwok",
];

/** The ports a component listens on; the first is the one `status` shows and health checks use. */
export const COMPONENT_PORTS: Readonly<Record<ComponentName, readonly (keyof HostPorts)[]>> = {
  etcd: ["etcdClient", "etcdPeer"],
  "kube-apiserver": ["apiserver"],
  "kube-controller-manager": ["controllerManager"],
  "kube-scheduler": ["scheduler"],
  kwok: ["kwok"],
};

/** Every file and folder of a host dir. */
export interface HostLayout {
  readonly dir: string;
  /** Marker and state: the ports, when the dir was made. `down --purge` deletes only a dir that has it. */
  readonly stateFile: string;
  /** The admin kubeconfig (O=system:masters), what `up` prints last. */
  readonly kubeconfig: string;
  /** Serialises `up` and `down` on one host dir. */
  readonly lockFile: string;
  readonly pkiDir: string;
  readonly kubeconfigDir: string;
  readonly etcdDataDir: string;
  readonly kwokWorkDir: string;
  readonly logDir: string;
  readonly runDir: string;
  logFile(component: ComponentName): string;
  pidFile(component: ComponentName): string;
  /** A PEM file under pki/: `cert(name)` and `key(name)`. */
  cert(name: string): string;
  key(name: string): string;
  /** The kubeconfig a component connects to the API with. */
  componentKubeconfig(name: KubeconfigUser): string;
}

/** Users with a kubeconfig of their own besides the admin. */
export type KubeconfigUser = "controller-manager" | "scheduler" | "kwok";

export function hostLayout(dir: string): HostLayout {
  const d = path.resolve(dir);
  const pki = path.join(d, "pki");
  return {
    dir: d,
    stateFile: path.join(d, "host.json"),
    kubeconfig: path.join(d, "kubeconfig"),
    lockFile: path.join(d, "lock"),
    pkiDir: pki,
    kubeconfigDir: path.join(d, "kubeconfigs"),
    etcdDataDir: path.join(d, "etcd"),
    kwokWorkDir: path.join(d, "kwok"),
    logDir: path.join(d, "logs"),
    runDir: path.join(d, "run"),
    logFile: (c) => path.join(d, "logs", `${c}.log`),
    pidFile: (c) => path.join(d, "run", `${c}.pid`),
    cert: (name) => path.join(pki, `${name}.crt`),
    key: (name) => path.join(pki, `${name}.key`),
    componentKubeconfig: (name) => path.join(d, "kubeconfigs", `${name}.conf`),
  };
}

/** Where the binaries and KWOK's stages come from. */
export interface Toolchain {
  /** `<repo>/.tools/bin` */
  readonly binDir: string;
  /** `<repo>/.tools/share/kwok/stages` */
  readonly stagesDir: string;
}

export function toolchainPaths(projectRoot: string): Toolchain {
  return {
    binDir: path.join(projectRoot, ".tools", "bin"),
    stagesDir: path.join(projectRoot, ".tools", "share", "kwok", "stages"),
  };
}

/** The first address of a /8-/30 IPv4 range: the `kubernetes` Service's cluster IP. */
export function firstServiceIp(cidr: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!m) throw new RangeError(`service CIDR must be an IPv4 range like 10.96.0.0/16 (got '${cidr}')`);
  const [a, b, c, d, bits] = m.slice(1).map(Number);
  if ([a, b, c, d].some((o) => o > 255) || bits < 8 || bits > 30) {
    throw new RangeError(`service CIDR must be an IPv4 range between /8 and /30 (got '${cidr}')`);
  }
  const base = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
  const mask = (0xffffffff << (32 - bits)) >>> 0;
  const first = ((base & mask) >>> 0) + 1;
  return [24, 16, 8, 0].map((s) => (first >>> s) & 255).join(".");
}

const url = (port: number) => `https://${LISTEN_HOST}:${port}`;

/** The command line (after the binary) of each component. Paths are absolute: processes run with cwd = the host dir. */
export function componentArgs(
  component: ComponentName,
  layout: HostLayout,
  ports: HostPorts,
  toolchain: Toolchain,
  options: { readonly realNode?: boolean } = {},
): string[] {
  const L = layout;
  switch (component) {
    case "etcd":
      return [
        "--name=host",
        `--data-dir=${L.etcdDataDir}`,
        `--listen-client-urls=${url(ports.etcdClient)}`,
        `--advertise-client-urls=${url(ports.etcdClient)}`,
        `--listen-peer-urls=${url(ports.etcdPeer)}`,
        `--initial-advertise-peer-urls=${url(ports.etcdPeer)}`,
        `--initial-cluster=host=${url(ports.etcdPeer)}`,
        "--initial-cluster-state=new",
        "--initial-cluster-token=g8s-host",
        "--client-cert-auth=true",
        `--trusted-ca-file=${L.cert("etcd/ca")}`,
        `--cert-file=${L.cert("etcd/server")}`,
        `--key-file=${L.key("etcd/server")}`,
        "--peer-client-cert-auth=true",
        `--peer-trusted-ca-file=${L.cert("etcd/ca")}`,
        `--peer-cert-file=${L.cert("etcd/peer")}`,
        `--peer-key-file=${L.key("etcd/peer")}`,
        "--log-level=warn",
      ];
    case "kube-apiserver":
      return [
        `--advertise-address=${LISTEN_HOST}`,
        // With a real node the API must answer on the node's bridge too, and one API server binds
        // one address: all of them (TLS with client certificates and RBAC on every one).
        `--bind-address=${options.realNode ? ALL_ADDRESSES : LISTEN_HOST}`,
        `--secure-port=${ports.apiserver}`,
        // The `kubernetes` Endpoints may not hold a loopback address, and nothing in this
        // cluster could reach it: the Service stays without endpoints.
        "--endpoint-reconciler-type=none",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        `--client-ca-file=${L.cert("ca")}`,
        `--tls-cert-file=${L.cert("apiserver")}`,
        `--tls-private-key-file=${L.key("apiserver")}`,
        // A real node's kubelet (logs, exec) by its address: this machine resolves no node names.
        "--kubelet-preferred-address-types=InternalIP",
        `--kubelet-client-certificate=${L.cert("apiserver-kubelet-client")}`,
        `--kubelet-client-key=${L.key("apiserver-kubelet-client")}`,
        `--etcd-servers=${url(ports.etcdClient)}`,
        `--etcd-cafile=${L.cert("etcd/ca")}`,
        `--etcd-certfile=${L.cert("apiserver-etcd-client")}`,
        `--etcd-keyfile=${L.key("apiserver-etcd-client")}`,
        `--service-account-issuer=https://kubernetes.default.svc.${CLUSTER_DOMAIN}`,
        `--service-account-key-file=${path.join(L.pkiDir, "sa.pub")}`,
        `--service-account-signing-key-file=${path.join(L.pkiDir, "sa.key")}`,
        `--service-cluster-ip-range=${DEFAULT_SERVICE_CIDR}`,
        "--profiling=false",
      ];
    case "kube-controller-manager":
      return [
        ...controlPlaneClientArgs(L, "controller-manager", ports.controllerManager),
        "--use-service-account-credentials=true",
        `--service-account-private-key-file=${path.join(L.pkiDir, "sa.key")}`,
        `--root-ca-file=${L.cert("ca")}`,
        // Signs approved CSRs (a real kubelet's TLS bootstrap, later) with the cluster CA.
        `--cluster-signing-cert-file=${L.cert("ca")}`,
        `--cluster-signing-key-file=${L.key("ca")}`,
        `--cluster-name=${CLUSTER_NAME}`,
        // Each of its ~40 controllers gets a service account and a token at start; at the default
        // 20 requests/s that alone takes 5 s, and the node lifecycle controller (which lifts a new
        // node's not-ready taint) starts last: a cold `up` waited for it. The API server is local.
        "--kube-api-qps=200",
        "--kube-api-burst=400",
      ];
    case "kube-scheduler":
      return controlPlaneClientArgs(L, "scheduler", ports.scheduler);
    case "kwok":
      return [
        `--kubeconfig=${L.componentKubeconfig("kwok")}`,
        "--manage-all-nodes=false",
        `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION.key}=${KWOK_NODE_ANNOTATION.value}`,
        `--server-address=${LISTEN_HOST}:${ports.kwok}`,
        `--cidr=${DEFAULT_POD_CIDR}`,
        `--node-lease-duration-seconds=${NODE_LEASE_SECONDS}`,
        ...KWOK_STAGE_FILES.map((f) => `--config=${path.join(toolchain.stagesDir, f)}`),
      ];
  }
}

/** Flags shared by the controller manager and the scheduler: identity, secure port, no leader election. */
function controlPlaneClientArgs(L: HostLayout, user: "controller-manager" | "scheduler", port: number): string[] {
  const kubeconfig = L.componentKubeconfig(user);
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    `--bind-address=${LISTEN_HOST}`,
    `--secure-port=${port}`,
    `--tls-cert-file=${L.cert(`${user}-server`)}`,
    `--tls-private-key-file=${L.key(`${user}-server`)}`,
    `--client-ca-file=${L.cert("ca")}`,
    // One instance per host dir: an election would make a warm start wait for the dead
    // holder's lease to expire (15 s).
    "--leader-elect=false",
    "--profiling=false",
  ];
}

/**
 * The environment of every component: PATH and HOME only, plus KWOK's work dir inside the host
 * dir. etcd reads ETCD_* and KWOK reads KWOK_* variables as flags, and a KUBECONFIG in the
 * user's shell must not reach anything: the command line is the whole configuration.
 */
export function componentEnv(parent: NodeJS.ProcessEnv, layout: HostLayout): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { KWOK_WORKDIR: layout.kwokWorkDir };
  if (parent.PATH !== undefined) env.PATH = parent.PATH;
  if (parent.HOME !== undefined) env.HOME = parent.HOME;
  return env;
}
