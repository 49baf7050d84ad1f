/**
 * The host cluster's certificates: two CAs (cluster and etcd), every serving and client
 * certificate the components need, and the service-account signing key. The table is a pure
 * function; `ensureHostPki` makes the files agree with it (on components/pki/local/x509.ts).
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import {
  createSelfSignedCa,
  generateKeyPair,
  issueCertificate,
  parseCertificate,
  type CertificateInfo,
  type CertificateUsage,
} from "../../components/pki/local/x509";
import { CLUSTER_DOMAIN, DEFAULT_SERVICE_CIDR, firstServiceIp, LISTEN_HOST, type HostLayout } from "./config";

/** The two CAs: `ca` signs what talks to the API, `etcd/ca` what talks to etcd. */
export type CaName = "ca" | "etcd/ca";

export interface CaSpec {
  readonly name: CaName;
  readonly commonName: string;
}

/** One leaf certificate: file name under pki/ (without .crt/.key), issuer and request fields. */
export interface LeafSpec {
  readonly name: string;
  readonly ca: CaName;
  readonly commonName: string;
  readonly organizations: readonly string[];
  readonly usages: readonly CertificateUsage[];
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

const DAY_MS = 24 * 3600 * 1000;
/** CAs live ten years: a developer's host dir should not need a new CA. */
export const CA_VALIDITY_DAYS = 3650;
/** Leaves live a year and are issued anew by `up` when less than RENEW_BEFORE_DAYS remain. */
export const LEAF_VALIDITY_DAYS = 365;
export const RENEW_BEFORE_DAYS = 30;

/** The user name (certificate CN) KWOK acts as; a ClusterRole grants it what a kubelet does to pods and nodes. */
export const KWOK_USER = "g8s-host-kwok";
/** The admin of the host cluster: group system:masters. */
export const ADMIN_USER = "g8s-host-admin";

export const CAS: readonly CaSpec[] = [
  { name: "ca", commonName: "g8s-host-ca" },
  { name: "etcd/ca", commonName: "g8s-host-etcd-ca" },
];

const LOOPBACK = { dnsNames: ["localhost"], ipAddresses: [LISTEN_HOST] };

/**
 * The real node of `up --real-node` (realNode.ts): the API certificate also names the host's
 * address on the node's bridge, and the node's kubelet gets a client certificate.
 */
export interface RealNodeCertificates {
  /** The host's address on the bridge, where the node reaches the API server. */
  readonly apiAddress: string;
  /** Under pki/ (without .crt/.key). */
  readonly certName: string;
  /** The Kubernetes node name: the certificate is `system:node:<name>` in `system:nodes`. */
  readonly nodeName: string;
}

/** Every leaf certificate of a host cluster. */
export function certificateTable(
  serviceCidr: string = DEFAULT_SERVICE_CIDR,
  realNode?: RealNodeCertificates,
): LeafSpec[] {
  const leaf = (
    name: string,
    ca: CaName,
    commonName: string,
    usages: CertificateUsage[],
    extra: Partial<Pick<LeafSpec, "organizations" | "dnsNames" | "ipAddresses">> = {},
  ): LeafSpec => ({
    name,
    ca,
    commonName,
    usages,
    organizations: extra.organizations ?? [],
    dnsNames: extra.dnsNames ?? [],
    ipAddresses: extra.ipAddresses ?? [],
  });
  const svc = "kubernetes.default.svc";
  return [
    // etcd serves clients and peers on loopback; its peer certificate is also a client one.
    leaf("etcd/server", "etcd/ca", "g8s-host-etcd", ["server", "client"], LOOPBACK),
    leaf("etcd/peer", "etcd/ca", "g8s-host-etcd-peer", ["server", "client"], LOOPBACK),
    // What `g8s host up/status` uses to ask etcd for /health.
    leaf("etcd/healthcheck-client", "etcd/ca", "g8s-host-etcd-healthcheck-client", ["client"]),
    leaf("apiserver-etcd-client", "etcd/ca", "kube-apiserver-etcd-client", ["client"]),
    leaf("apiserver", "ca", "kube-apiserver", ["server"], {
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", svc, `${svc}.${CLUSTER_DOMAIN}`],
      ipAddresses: [LISTEN_HOST, firstServiceIp(serviceCidr), ...(realNode ? [realNode.apiAddress] : [])],
    }),
    leaf("apiserver-kubelet-client", "ca", "kube-apiserver-kubelet-client", ["client"], {
      organizations: ["system:masters"],
    }),
    leaf("admin", "ca", ADMIN_USER, ["client"], { organizations: ["system:masters"] }),
    leaf("controller-manager", "ca", "system:kube-controller-manager", ["client"]),
    leaf("scheduler", "ca", "system:kube-scheduler", ["client"]),
    leaf("kwok", "ca", KWOK_USER, ["client"]),
    // Serving certificates of the controller manager's and scheduler's health ports, so their
    // /healthz is checked with TLS verification like everything else.
    leaf("controller-manager-server", "ca", "kube-controller-manager", ["server"], LOOPBACK),
    leaf("scheduler-server", "ca", "kube-scheduler", ["server"], LOOPBACK),
    // What the Node authorizer and NodeRestriction know a kubelet by.
    ...(realNode
      ? [
          leaf(realNode.certName, "ca", `system:node:${realNode.nodeName}`, ["client"], {
            organizations: ["system:nodes"],
          }),
        ]
      : []),
  ];
}

/**
 * Why a certificate must be issued (again), or undefined when the one on disk is good: missing
 * or unreadable, its CA was just made, it expires within RENEW_BEFORE_DAYS, or it no longer
 * matches the table (subject, SANs, usages: the table changed).
 */
export function reissueReason(
  spec: LeafSpec | CaSpec,
  current: CertificateInfo | undefined,
  now: Date,
  caRenewed: boolean,
): string | undefined {
  if (!current) return "missing";
  if (caRenewed) return "new CA";
  if (current.notAfter.getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY_MS) return "expires soon";
  if (current.notBefore.getTime() > now.getTime()) return "not yet valid";
  if (current.subject.commonName !== spec.commonName) return "subject changed";
  if (!("ca" in spec)) return current.isCa ? undefined : "not a CA";
  const same = (a: readonly string[], b: readonly string[]) => [...a].sort().join(",") === [...b].sort().join(",");
  if (!same(current.subject.organizations, spec.organizations)) return "subject changed";
  if (!same(current.dnsNames, spec.dnsNames) || !same(current.ipAddresses, spec.ipAddresses)) return "SANs changed";
  if (!same(current.usages, spec.usages)) return "usages changed";
  return undefined;
}

/** What ensureHostPki did. */
export interface PkiResult {
  /** Names of the certificates (and `sa`) written this time, each with its reason. */
  readonly issued: readonly { readonly name: string; readonly reason: string }[];
}

/** A file's text, or undefined when it does not exist. */
export async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

function parseOptional(pem: string | undefined): CertificateInfo | undefined {
  if (pem === undefined) return undefined;
  try {
    return parseCertificate(pem);
  } catch {
    return undefined; // unreadable counts as missing: issue it again
  }
}

/** Writes through a temporary file and a rename, so a crash never leaves half a key. */
export async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, data, { mode });
  await fs.rename(tmp, file);
}

/**
 * Makes pki/ agree with the table: creates what is missing, renews what expires soon or no
 * longer matches, and leaves everything else untouched (a warm start issues nothing). The
 * service-account key is made once and never replaced: it signs every token in etcd.
 */
export async function ensureHostPki(
  layout: HostLayout,
  now: Date = new Date(),
  realNode?: RealNodeCertificates,
): Promise<PkiResult> {
  const issued: { name: string; reason: string }[] = [];
  const notBefore = new Date(now.getTime() - 60_000); // tolerate a little clock skew between processes
  const cas = new Map<CaName, { certPem: string; keyPem: string; renewed: boolean }>();

  for (const ca of CAS) {
    const certPem = await readOptional(layout.cert(ca.name));
    const keyPem = await readOptional(layout.key(ca.name));
    const reason = keyPem === undefined ? "missing" : reissueReason(ca, parseOptional(certPem), now, false);
    if (reason === undefined && certPem !== undefined && keyPem !== undefined) {
      cas.set(ca.name, { certPem, keyPem, renewed: false });
      continue;
    }
    const key = await generateKeyPair();
    const cert = await createSelfSignedCa({
      commonName: ca.commonName,
      privateKeyPem: key.privateKeyPem,
      notBefore,
      notAfter: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS),
    });
    await writeFileAtomic(layout.key(ca.name), key.privateKeyPem, 0o600);
    await writeFileAtomic(layout.cert(ca.name), cert, 0o644);
    cas.set(ca.name, { certPem: cert, keyPem: key.privateKeyPem, renewed: true });
    issued.push({ name: ca.name, reason: reason ?? "missing" });
  }

  for (const spec of certificateTable(DEFAULT_SERVICE_CIDR, realNode)) {
    const ca = cas.get(spec.ca) as { certPem: string; keyPem: string; renewed: boolean };
    const keyExists = (await readOptional(layout.key(spec.name))) !== undefined;
    const current = keyExists ? parseOptional(await readOptional(layout.cert(spec.name))) : undefined;
    const reason = reissueReason(spec, current, now, ca.renewed);
    if (reason === undefined) continue;
    const key = await generateKeyPair();
    const cert = await issueCertificate({
      caCertPem: ca.certPem,
      caPrivateKeyPem: ca.keyPem,
      publicKeyPem: key.publicKeyPem,
      commonName: spec.commonName,
      organizations: spec.organizations,
      dnsNames: spec.dnsNames,
      ipAddresses: spec.ipAddresses,
      usages: spec.usages,
      notBefore,
      notAfter: new Date(now.getTime() + LEAF_VALIDITY_DAYS * DAY_MS),
    });
    await writeFileAtomic(layout.key(spec.name), key.privateKeyPem, 0o600);
    await writeFileAtomic(layout.cert(spec.name), cert, 0o644);
    issued.push({ name: spec.name, reason });
  }

  const saKey = path.join(layout.pkiDir, "sa.key");
  const saPub = path.join(layout.pkiDir, "sa.pub");
  if ((await readOptional(saKey)) === undefined || (await readOptional(saPub)) === undefined) {
    // RSA: RS256 tokens are what every OIDC consumer of service-account tokens accepts.
    const key = await generateKeyPair("rsa-2048");
    await writeFileAtomic(saKey, key.privateKeyPem, 0o600);
    await writeFileAtomic(saPub, key.publicKeyPem, 0o644);
    issued.push({ name: "sa", reason: "missing" });
  }
  return { issued };
}
