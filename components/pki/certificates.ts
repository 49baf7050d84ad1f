/**
 * The certificate set of a guest cluster as plain data: one table both backends read, so the
 * vault and the tls backend issue the same names, subjects and usages. Pure functions only.
 */
import type * as pulumi from "@pulumi/pulumi";
import {
  ADMIN_GROUP,
  DEFAULT_CERTIFICATE_AUTHORITY_ID,
  apiDnsName,
  cidr,
  clusterDomain,
  durationSeconds,
  type ClusterSpec,
} from "../spec";

/** The Kubernetes in-cluster DNS domain (kubelet `clusterDomain`, kubeadm `networking.dnsDomain`). */
export const DEFAULT_SERVICE_DNS_DOMAIN = "cluster.local";
/** CN the API server must accept in `--requestheader-allowed-names` (front proxy, aggregation layer). */
export const FRONT_PROXY_CLIENT_CN = "front-proxy-client";
/** CN of the admin kubeconfig's client certificate; O carries the RBAC group. */
export const ADMIN_CN = "kubernetes-admin";
export { ADMIN_GROUP } from "../spec";
/** Group of the shared worker (kubelet) identity. */
export const NODES_GROUP = "system:nodes";
/** Key sizes: RSA for every consumer's sake (etcd, kubelet, CNI plugins all accept it). */
export const CA_KEY_BITS = 4096;
export const LEAF_KEY_BITS = 2048;

/**
 * The Vault role that issues a certificate: one per cluster component, and one per user (its
 * O carries the user's groups). No `network` role: the CNI (flannel, Calico) reaches the API
 * with its ServiceAccount token, so no component consumed a network certificate.
 */
export type PkiRole = "api" | "etcd" | "worker" | "admin" | "user";
/** The component roles; users get a role each (`user-<name>`). */
export const PKI_ROLES: readonly Exclude<PkiRole, "user">[] = ["api", "etcd", "worker", "admin"];

export type Usage = "server" | "client";

/** One certificate to issue: the fields of a certificate request plus who consumes it. */
export interface CertificateSpec {
  /** Stable key: the child resource names end in it (`${name}-cert-<key>`); never derived from list order. */
  readonly key: string;
  readonly role: PkiRole;
  readonly commonName: string;
  /** Subject O values (RBAC groups for client certificates). */
  readonly organizations: readonly string[];
  readonly dnsNames: readonly pulumi.Input<string>[];
  readonly ipAddresses: readonly pulumi.Input<string>[];
  readonly usages: readonly Usage[];
  readonly ttlSeconds: number;
  /** Who reads it, for the README's table. */
  readonly consumer: string;
}

/** What the certificate set depends on besides the spec. */
export interface CertificateInputs {
  readonly spec: ClusterSpec;
  readonly masterNames: readonly string[];
  readonly masterAddresses: Readonly<Record<string, pulumi.Input<string>>>;
  readonly apiNames: readonly pulumi.Input<string>[];
  readonly apiAddresses: readonly pulumi.Input<string>[];
  readonly serviceDnsDomain: string;
}

/** The first address of the service range: the `kubernetes` Service's ClusterIP. */
export function firstServiceIp(serviceCidr: string): string {
  const range = cidr.parseCidr(serviceCidr);
  if (typeof range === "string") throw new RangeError(`kubernetes.serviceCidr ${range}`);
  return cidr.nthAddress(range, 1);
}

/** The names every API server certificate carries, before Args add load-balancer names. */
export function apiServerDnsNames(spec: ClusterSpec, serviceDnsDomain: string): string[] {
  return [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    `kubernetes.default.svc.${serviceDnsDomain}`,
    apiDnsName(spec),
    "localhost",
  ];
}

/** Names of a master's etcd member certificate (server and peer). */
export function etcdDnsNames(spec: ClusterSpec, master: string): string[] {
  return [master, `${master}.${clusterDomain(spec)}`, `etcd.${clusterDomain(spec)}`, "localhost"];
}

/** Every certificate Pulumi issues for a cluster, in a stable order (the order never names a resource). */
export function certificateSet(input: CertificateInputs): CertificateSpec[] {
  const { spec } = input;
  const ttlSeconds = durationSeconds(spec.pki.certTtl);
  const domain = clusterDomain(spec);
  const cert = (
    c: Omit<CertificateSpec, "ttlSeconds" | "organizations" | "dnsNames" | "ipAddresses"> & Partial<CertificateSpec>,
  ) => ({ organizations: [], dnsNames: [], ipAddresses: [], ttlSeconds, ...c }) as CertificateSpec;
  return [
    cert({
      key: "apiserver",
      role: "api",
      commonName: "kube-apiserver",
      dnsNames: [...apiServerDnsNames(spec, input.serviceDnsDomain), ...input.apiNames],
      ipAddresses: [firstServiceIp(spec.kubernetes.serviceCidr), "127.0.0.1", ...input.apiAddresses],
      usages: ["server"],
      consumer: "kube-apiserver (serving)",
    }),
    cert({
      key: "apiserver-kubelet-client",
      role: "api",
      commonName: "kube-apiserver-kubelet-client",
      usages: ["client"],
      consumer: "kube-apiserver → kubelet (logs, exec)",
    }),
    cert({
      key: "apiserver-etcd-client",
      role: "etcd",
      commonName: "kube-apiserver-etcd-client",
      usages: ["client"],
      consumer: "kube-apiserver → etcd",
    }),
    cert({
      key: "controller-manager",
      role: "api",
      commonName: "system:kube-controller-manager",
      usages: ["client"],
      consumer: "kube-controller-manager → kube-apiserver",
    }),
    cert({
      key: "scheduler",
      role: "api",
      commonName: "system:kube-scheduler",
      usages: ["client"],
      consumer: "kube-scheduler → kube-apiserver",
    }),
    cert({
      key: "front-proxy-client",
      role: "api",
      commonName: FRONT_PROXY_CLIENT_CN,
      usages: ["client"],
      consumer: "kube-apiserver → aggregated API servers",
    }),
    ...input.masterNames.map((master) =>
      cert({
        key: `etcd-${master}`,
        role: "etcd",
        commonName: `${master}.${domain}`,
        dnsNames: etcdDnsNames(spec, master),
        ipAddresses: [
          ...(input.masterAddresses[master] === undefined ? [] : [input.masterAddresses[master]]),
          "127.0.0.1",
        ],
        usages: ["server", "client"],
        consumer: `etcd on ${master} (serving and peer)`,
      }),
    ),
    cert({
      key: "worker",
      role: "worker",
      commonName: `worker.${domain}`,
      organizations: [NODES_GROUP],
      dnsNames: [`worker.${domain}`],
      usages: ["server", "client"],
      consumer: "kubelet on every worker",
    }),
    cert({
      key: "admin",
      role: "admin",
      commonName: ADMIN_CN,
      organizations: [ADMIN_GROUP],
      usages: ["client"],
      consumer: "admin kubeconfig",
    }),
  ];
}

/** The certificate of a user kubeconfig: CN is the user name, O the RBAC groups. */
export function userCertificate(spec: ClusterSpec, user: string, groups: readonly string[]): CertificateSpec {
  return {
    key: `user-${user}`,
    role: "user",
    commonName: user,
    organizations: [...groups],
    dnsNames: [],
    ipAddresses: [],
    usages: ["client"],
    ttlSeconds: durationSeconds(spec.pki.certTtl),
    consumer: `kubeconfig of ${user}`,
  };
}

/**
 * What a Vault role needs to issue its certificates and nothing else. Names are exact
 * (`allow_bare_domains`, no subdomains, no globs, never `allow_any_name`), so a component's
 * token can only obtain the names of its own certificates.
 */
export interface RolePolicy {
  readonly role: PkiRole | `user-${string}`;
  readonly allowedDomains: pulumi.Input<string>[];
  readonly organizations: string[];
  readonly server: boolean;
  readonly client: boolean;
  readonly allowLocalhost: boolean;
  readonly allowIpSans: boolean;
  /** True unless a name is not a host name (a user CN like `jane@example.com`). */
  readonly enforceHostnames: boolean;
}

const HOSTNAME_RE = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The role that issues exactly `certs` (all with `role`). */
export function rolePolicy(role: RolePolicy["role"], certs: readonly CertificateSpec[]): RolePolicy {
  const names: pulumi.Input<string>[] = [];
  const add = (n: pulumi.Input<string>) => {
    if (n !== "localhost" && !names.includes(n)) names.push(n);
  };
  for (const c of certs) {
    add(c.commonName);
    c.dnsNames.forEach(add);
  }
  const organizations = [...new Set(certs.flatMap((c) => c.organizations))];
  return {
    role,
    allowedDomains: names,
    organizations,
    server: certs.some((c) => c.usages.includes("server")),
    client: certs.some((c) => c.usages.includes("client")),
    allowLocalhost: certs.some((c) => c.dnsNames.includes("localhost")),
    allowIpSans: certs.some((c) => c.ipAddresses.length > 0),
    enforceHostnames: names.every((n) => typeof n !== "string" || HOSTNAME_RE.test(n)),
  };
}

/** One Vault role per component, each issuing only its component's certificates. */
export function componentRoles(certs: readonly CertificateSpec[]): RolePolicy[] {
  return PKI_ROLES.map((role) =>
    rolePolicy(
      role,
      certs.filter((c) => c.role === role),
    ),
  );
}

/**
 * What a cluster's root CA keeps from its creation, per backend: the inputs whose change would
 * reissue it under a new name or replace it (the tls and vault backends replace; Vault with a new
 * key), which invalidates at once every certificate the nodes hold. A change of `pki.caTtl` or
 * `baseDomain` (the CA's CN) therefore never reaches a live CA: it applies to the next CA, and
 * ClusterPki warns that it waits for one. Renewal (local: same key, same subject) is not affected.
 */
export const CA_FIXED_INPUTS = {
  local: ["commonName", "organizations", "ttlSeconds", "keyAlgorithm"],
  tlsKey: ["algorithm", "rsaBits", "ecdsaCurve"],
  tls: ["subject", "validityPeriodHours", "isCaCertificate", "allowedUses", "privateKeyPem"],
  vault: ["commonName", "organization", "ttl", "keyType", "keyBits"],
} as const;

/** Subject O of every g8s cluster CA (tls and local backends). */
export const CA_ORGANIZATION = "g8s";

/** A CA's resource name: `<name>-ca` for the first (as before ids), else `<name>-ca-<id>`. */
export function caResourceName(name: string, id: string): string {
  return id === DEFAULT_CERTIFICATE_AUTHORITY_ID ? `${name}-ca` : `${name}-ca-${id}`;
}

/** A tls CA's key: `<name>-ca-key` for the first (as before ids), else `<name>-ca-key-<id>`. */
export function caKeyResourceName(name: string, id: string): string {
  return id === DEFAULT_CERTIFICATE_AUTHORITY_ID ? `${name}-ca-key` : `${name}-ca-key-${id}`;
}

/**
 * The trusted CA ids of `pki.certificateAuthorities`, the issuing one first: the order of every
 * trust bundle.
 */
export function trustOrder(spec: Pick<ClusterSpec, "pki">): string[] {
  const { trusted, issuing } = spec.pki.certificateAuthorities;
  return [issuing, ...trusted.filter((id) => id !== issuing)];
}

/**
 * PEM texts as one bundle, each ending in a newline; a single PEM as it is (a cluster that never
 * rotated sees no change at all).
 */
export function pemBundle(pems: readonly string[]): string {
  return pems.length === 1 ? pems[0] : pems.map((pem) => (pem.endsWith("\n") ? pem : `${pem}\n`)).join("");
}

/** The Vault mount of a cluster's PKI. */
export function mountPath(spec: Pick<ClusterSpec, "id">): string {
  return `pki-${spec.id}`;
}

/** The tls provider's `allowed_uses` for a leaf certificate. */
export function tlsAllowedUses(usages: readonly Usage[]): string[] {
  return [
    "digital_signature",
    "key_encipherment",
    ...(usages.includes("server") ? ["server_auth"] : []),
    ...(usages.includes("client") ? ["client_auth"] : []),
  ];
}

/** Vault's key usages for leaf certificates (ext key usages follow server_flag/client_flag). */
export const VAULT_KEY_USAGES = ["DigitalSignature", "KeyEncipherment"];

/**
 * The rotation window `now` falls in: windows are half a TTL long and counted from the Unix
 * epoch, so a certificate created in window w is replaced in window w+1, before less than half
 * of its lifetime remains.
 */
export function rotationWindow(now: Date, ttlSeconds: number): number {
  if (!(ttlSeconds > 0)) throw new RangeError(`TTL must be positive (got ${ttlSeconds})`);
  return Math.floor(now.getTime() / 1000 / (ttlSeconds / 2));
}

/** The `replacementTrigger` of tls certificates and their keys: changes when the window rolls over. */
export function rotationTrigger(now: Date, ttlSeconds: number): string {
  return `ttl=${ttlSeconds}s;window=${rotationWindow(now, ttlSeconds)}`;
}

/** Vault's `min_seconds_remaining`: renew once half the TTL is gone. */
export function minSecondsRemaining(ttlSeconds: number): number {
  return Math.floor(ttlSeconds / 2);
}

const USER_RE = /^[a-z0-9]([a-z0-9._@-]{0,62}[a-z0-9])?$/;

/** Checks a user kubeconfig request; returns the problem or undefined. */
export function checkUser(
  backend: ClusterSpec["pki"]["backend"],
  user: string,
  groups: readonly string[],
): string | undefined {
  if (!USER_RE.test(user)) {
    return (
      `userKubeconfig: user must be lowercase letters, digits, '.', '_', '@' or '-' ` +
      `(it names the certificate's resource) (got '${user}')`
    );
  }
  const bad = groups.find((g) => g.trim() === "" || g === ADMIN_GROUP);
  if (bad !== undefined) {
    return bad === ADMIN_GROUP
      ? `userKubeconfig(${user}): group ${ADMIN_GROUP} is reserved for the admin kubeconfig`
      : `userKubeconfig(${user}): groups must not be empty strings`;
  }
  if (backend === "tls" && groups.length > 1) {
    return (
      `userKubeconfig(${user}): the tls backend puts one group in O (pulumi-tls has a single subject ` +
      `organization) (got ${groups.length}): bind the user by name or use pki.backend vault`
    );
  }
  return undefined;
}

const MASTER_NAME_RE = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Checks the master keys a caller passes to ClusterPki (the spec itself comes from
 * parseClusterSpec, which has checked every field ClusterPki reads). Returns the first problem or
 * undefined.
 */
export function checkMasterNames(masterNames: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const master of masterNames) {
    if (!MASTER_NAME_RE.test(master)) {
      return `masterNames: '${master}' must be a DNS label (it is a SAN and names the etcd certificate)`;
    }
    if (seen.has(master)) return `masterNames: '${master}' is listed twice`;
    seen.add(master);
  }
  return undefined;
}
