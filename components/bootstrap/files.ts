/**
 * The files a node needs from the secret store, per role: one table (name, target path, mode,
 * what reloads it) that both sides read. The platform stores `secretFilesFor(...)` under the
 * names it lists; the node's user-data carries only the names and paths (see delivery.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import { kubeconfigDocument, type CertificateBundle, type ServiceAccountKeyPair } from "../pki";
import { BOOTSTRAP_TOKEN_PATH, DISCOVERY_KUBECONFIG_PATH, KUBERNETES_DIR, PKI_DIR } from "./constants";
import { checkBootstrapToken } from "./token";

/**
 * AWS masters: the slot's stable network interface (fixed IP) and its etcd volume, attached at
 * boot so a replaced instance keeps its etcd identity and data.
 */
export interface MasterAttachment {
  readonly region: string;
  readonly networkInterfaceId: string;
  readonly deviceIndex: number;
  /** The interface's fixed IP: kubelet node IP and the API/etcd advertise address. */
  readonly privateIp: string;
  readonly etcdVolumeId: string;
}

/** What a node is: the first master runs `kubeadm init`, the others join. */
/**
 * `serviceAddress`: a stable address the platform routes to this master (KVM: its own Service's
 * ClusterIP, since a pod's IP changes with every pod). The node puts it on `lo` and advertises it.
 */
export type BootstrapRole =
  | {
      readonly kind: "first-master";
      readonly master: string;
      readonly attach?: MasterAttachment;
      readonly serviceAddress?: string;
    }
  | {
      readonly kind: "master";
      readonly master: string;
      readonly attach?: MasterAttachment;
      readonly serviceAddress?: string;
    }
  | { readonly kind: "worker"; readonly pool: string };

/** A component the secret sync reloads when one of its files changed. */
export type ReloadTarget = "kubelet" | "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler";

/** The secret values a node's files are made of (plain: inside an apply, or in tests). */
export interface NodeSecretValues {
  /** The cluster CA certificate (public, delivered with the secrets so user-data stays small). */
  readonly caCertPem: string;
  /** ClusterPki.bundles: `apiserver`, `apiserver-kubelet-client`, `apiserver-etcd-client`, `controller-manager`, `scheduler`, `front-proxy-client`, `etcd-<master>`, `worker`, `admin`. */
  readonly bundles: Readonly<Record<string, CertificateBundle>>;
  readonly serviceAccountKey: ServiceAccountKeyPair;
  /** `[a-z0-9]{6}.[a-z0-9]{16}` (see bootstrapToken()). */
  readonly bootstrapToken: string;
}

/** Non-secret facts the file contents depend on. */
export interface NodeFileContext {
  readonly clusterId: string;
  /** `https://host:port` of the API (load balancer or Service). */
  readonly apiEndpoint: string;
}

/** One file a node fetches at boot and on every sync. */
export interface NodeFile {
  /**
   * Key in the store: SSM parameter `/g8s/<clusterId>/<storeRole>/<name>`, or the mounted Secret's
   * key. Files of one master only (its etcd certificate) carry the master's key: `master-0-etcd-server.crt`.
   */
  readonly name: string;
  readonly path: string;
  /** Private keys, kubeconfigs and the token 0600; certificates 0644. */
  readonly mode: "0600" | "0644";
  /** True for private keys, kubeconfigs and the bootstrap token. */
  readonly secret: boolean;
  /** Components restarted when the file changes on a running node. */
  readonly reload: readonly ReloadTarget[];
  /** A kubeconfig whose server must be the node's own API server (kubeadm checks this for controller-manager and scheduler). */
  readonly localApiServer?: boolean;
  readonly content: (values: NodeSecretValues, context: NodeFileContext) => string;
}

/** A file the platform must store for a role, with its value. */
export interface SecretFile {
  readonly name: string;
  readonly path: string;
  readonly mode: "0600" | "0644";
  readonly secret: boolean;
  readonly value: pulumi.Input<string>;
}

/** Where a role's files live in the store: every master shares `master`, every pool `worker`. */
export type StoreRole = "master" | "worker";

/** The store role of a node (`/g8s/<clusterId>/<storeRole>/<file>` on AWS). */
export function secretRoleOf(role: BootstrapRole): StoreRole {
  return role.kind === "worker" ? "worker" : "master";
}

function bundleOf(values: NodeSecretValues, key: string): CertificateBundle {
  const found = values.bundles[key];
  if (found === undefined) {
    throw new RangeError(
      `ClusterPki has no certificate '${key}': pass ClusterPki.bundles (and the right master names)`,
    );
  }
  return found;
}

/**
 * A kubeconfig that names its client certificate and key by path, so it holds no key material
 * and a renewed certificate needs no new kubeconfig. The CA is embedded (kubeadm compares it).
 */
export const fileKubeconfig = kubeconfigDocument;

const CLIENT_DIR = `${PKI_DIR}/g8s`;

function cert(name: string, path: string, reload: ReloadTarget[], pick: (v: NodeSecretValues) => string): NodeFile {
  return { name, path, mode: "0644", secret: false, reload, content: pick };
}

function key(name: string, path: string, reload: ReloadTarget[], pick: (v: NodeSecretValues) => string): NodeFile {
  return { name, path, mode: "0600", secret: true, reload, content: pick };
}

/** cert + key of a PKI bundle at `<base>.crt` / `<base>.key`. */
function pair(name: string, base: string, reload: ReloadTarget[], bundle: string): NodeFile[] {
  return [
    cert(`${name}.crt`, `${base}.crt`, reload, (v) => bundleOf(v, bundle).certPem),
    key(`${name}.key`, `${base}.key`, reload, (v) => bundleOf(v, bundle).keyPem),
  ];
}

function kubeconfigFile(
  name: string,
  userName: string,
  clientBase: string,
  reload: ReloadTarget[],
  localApiServer = false,
): NodeFile {
  return {
    name,
    path: `${KUBERNETES_DIR}/${name}`,
    mode: "0600",
    secret: true,
    reload,
    localApiServer,
    content: (v, c) =>
      fileKubeconfig({
        clusterName: c.clusterId,
        server: c.apiEndpoint,
        caCertPem: v.caCertPem,
        userName,
        user: { "client-certificate": `${clientBase}.crt`, "client-key": `${clientBase}.key` },
      }),
  };
}

const caFile = (name: string, path: string, reload: ReloadTarget[]) => cert(name, path, reload, (v) => v.caCertPem);

const discoveryFile: NodeFile = {
  name: "discovery.conf",
  path: DISCOVERY_KUBECONFIG_PATH,
  mode: "0600",
  secret: true,
  reload: [],
  content: (v, c) => {
    const problem = checkBootstrapToken(v.bootstrapToken);
    if (problem !== undefined) throw new RangeError(problem);
    return fileKubeconfig({
      clusterName: c.clusterId,
      server: c.apiEndpoint,
      caCertPem: v.caCertPem,
      userName: "tls-bootstrap-token-user",
      user: { token: v.bootstrapToken },
    });
  },
};

const kubeletFiles = (): NodeFile[] => [
  ...pair("kubelet-client", `${CLIENT_DIR}/kubelet-client`, ["kubelet"], "worker"),
  kubeconfigFile("kubelet.conf", "kubelet", `${CLIENT_DIR}/kubelet-client`, ["kubelet"]),
];

/**
 * Every file a node of `role` fetches, in a stable order. Masters: kubeadm's external-CA layout
 * (ca.crt without ca.key, so kubeadm generates no CA and no certificate) plus the kubeconfigs
 * kubeadm cannot create without the CA key. Workers: the CA, the kubelet identity, the
 * discovery kubeconfig.
 */
export function nodeFiles(role: BootstrapRole): NodeFile[] {
  if (role.kind === "worker") {
    return [caFile("ca.crt", `${PKI_DIR}/ca.crt`, ["kubelet"]), ...kubeletFiles(), discoveryFile];
  }
  const api: ReloadTarget[] = ["kube-apiserver"];
  const etcdBundle = `etcd-${role.master}`;
  return [
    caFile("ca.crt", `${PKI_DIR}/ca.crt`, ["kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]),
    ...pair("apiserver", `${PKI_DIR}/apiserver`, api, "apiserver"),
    ...pair("apiserver-kubelet-client", `${PKI_DIR}/apiserver-kubelet-client`, api, "apiserver-kubelet-client"),
    ...pair("apiserver-etcd-client", `${PKI_DIR}/apiserver-etcd-client`, api, "apiserver-etcd-client"),
    caFile("front-proxy-ca.crt", `${PKI_DIR}/front-proxy-ca.crt`, api),
    ...pair("front-proxy-client", `${PKI_DIR}/front-proxy-client`, api, "front-proxy-client"),
    // The API server signs projected tokens with sa.key (kubeadm's --service-account-signing-key-file),
    // the controller manager legacy ones: a new signing key must reach both.
    key(
      "sa.key",
      `${PKI_DIR}/sa.key`,
      ["kube-apiserver", "kube-controller-manager"],
      (v) => v.serviceAccountKey.privateKeyPem,
    ),
    cert("sa.pub", `${PKI_DIR}/sa.pub`, api, (v) => v.serviceAccountKey.publicKeyPem),
    // etcd reloads its serving and peer certificates on every new TLS handshake: no restart.
    // etcd reads its trusted CA file only at start (etcd-io/etcd#11555): a new bundle (a CA
    // rotation) restarts it; its own certificates it reloads by itself.
    caFile("etcd-ca.crt", `${PKI_DIR}/etcd/ca.crt`, ["etcd", "kube-apiserver"]),
    ...pair(`${role.master}-etcd-server`, `${PKI_DIR}/etcd/server`, [], etcdBundle),
    ...pair(`${role.master}-etcd-peer`, `${PKI_DIR}/etcd/peer`, [], etcdBundle),
    ...pair("etcd-healthcheck-client", `${PKI_DIR}/etcd/healthcheck-client`, [], "apiserver-etcd-client"),
    ...kubeletFiles(),
    ...pair("admin", `${CLIENT_DIR}/admin`, [], "admin"),
    ...pair(
      "controller-manager",
      `${CLIENT_DIR}/controller-manager`,
      ["kube-controller-manager"],
      "controller-manager",
    ),
    ...pair("scheduler", `${CLIENT_DIR}/scheduler`, ["kube-scheduler"], "scheduler"),
    kubeconfigFile("admin.conf", "kubernetes-admin", `${CLIENT_DIR}/admin`, []),
    // kubeadm init with an external CA refuses to start without super-admin.conf (seen on a real
    // node). The admin identity is already O=system:masters, so it serves for both files.
    kubeconfigFile("super-admin.conf", "kubernetes-admin", `${CLIENT_DIR}/admin`, []),
    kubeconfigFile(
      "controller-manager.conf",
      "system:kube-controller-manager",
      `${CLIENT_DIR}/controller-manager`,
      ["kube-controller-manager"],
      true,
    ),
    kubeconfigFile("scheduler.conf", "system:kube-scheduler", `${CLIENT_DIR}/scheduler`, ["kube-scheduler"], true),
    // Every master keeps the token valid in the cluster (g8s-bootstrap-token); the others also join with it.
    {
      name: "bootstrap-token",
      path: BOOTSTRAP_TOKEN_PATH,
      mode: "0600",
      secret: true,
      reload: [],
      content: (v) => {
        const problem = checkBootstrapToken(v.bootstrapToken);
        if (problem !== undefined) throw new RangeError(problem);
        return `${v.bootstrapToken}\n`;
      },
    },
    ...(role.kind === "master" ? [discoveryFile] : []),
  ];
}

/** Secret inputs as ClusterPki exposes them. */
export interface NodeSecretInputs {
  readonly caCertPem: pulumi.Input<string>;
  readonly bundles: pulumi.Input<Record<string, CertificateBundle>>;
  readonly serviceAccountKey: pulumi.Input<ServiceAccountKeyPair>;
  readonly bootstrapToken: pulumi.Input<string>;
}

/** The store roles' files for a cluster: the union over every master (first or not) or one worker. */
function storeFiles(storeRole: StoreRole, masterNames: readonly string[]): NodeFile[] {
  const roles: BootstrapRole[] =
    storeRole === "worker"
      ? [{ kind: "worker", pool: "*" }]
      : masterNames.flatMap((master) => [
          { kind: "first-master", master } as const,
          { kind: "master", master } as const,
        ]);
  const byName = new Map<string, NodeFile>();
  for (const file of roles.flatMap(nodeFiles)) if (!byName.has(file.name)) byName.set(file.name, file);
  return [...byName.values()];
}

/** Plain values of the files of a store role (tests, and any platform that works inside an apply). */
export function storeFileValues(
  storeRole: StoreRole,
  masterNames: readonly string[],
  values: NodeSecretValues,
  context: NodeFileContext,
): SecretFile[] {
  return storeFiles(storeRole, masterNames).map((f) => ({
    name: f.name,
    path: f.path,
    mode: f.mode,
    secret: f.secret,
    value: f.content(values, context),
  }));
}

/**
 * Which files the platform must store for a store role, each value a Pulumi secret: SSM
 * SecureString parameters `/g8s/<clusterId>/<storeRole>/<name>` on AWS, keys of the role's
 * mounted Secret on KVM. Masters: the union over `masterNames` (each master's etcd files are
 * prefixed with its key).
 */
export function secretFilesFor(
  storeRole: StoreRole,
  masterNames: readonly string[],
  inputs: NodeSecretInputs,
  context: NodeFileContext,
): SecretFile[] {
  const values = pulumi
    .all([inputs.caCertPem, inputs.bundles, inputs.serviceAccountKey, inputs.bootstrapToken])
    .apply(([caCertPem, bundles, serviceAccountKey, bootstrapToken]) => ({
      caCertPem,
      bundles,
      serviceAccountKey,
      bootstrapToken,
    }));
  return storeFiles(storeRole, masterNames).map((f) => ({
    name: f.name,
    path: f.path,
    mode: f.mode,
    secret: f.secret,
    value: pulumi.secret(values.apply((v) => f.content(v, context))),
  }));
}

/** `secretFilesFor` for both store roles as name → value maps (the shape of AwsClusterArgs.nodeSecrets). */
export function nodeSecretsFor(
  masterNames: readonly string[],
  inputs: NodeSecretInputs,
  context: NodeFileContext,
): Record<StoreRole, Record<string, pulumi.Output<string>>> {
  const asMap = (role: StoreRole) =>
    Object.fromEntries(
      secretFilesFor(role, masterNames, inputs, context).map((f) => [f.name, f.value as pulumi.Output<string>]),
    );
  return { master: asMap("master"), worker: asMap("worker") };
}
