/**
 * Kubeconfigs for people: a short-lived client certificate issued from the cluster's own CA,
 * which the stack's state holds (local and tls backends), for a user name and RBAC groups.
 * The caller reads the state (Engine.stackResources) and the validated spec; this module finds
 * the CA and the endpoint in it, checks the request and issues. Nothing it handles is logged.
 */
import { createPrivateKey } from "node:crypto";
import { parse } from "yaml";
import { renderKubeconfig } from "../../components/pki/kubeconfig";
import { LOCAL_TYPES } from "../../components/pki/local/resources";
import { validityWindow } from "../../components/pki/local/renewal";
import { generateKeyPair, issueCertificate, parseCertificate } from "../../components/pki/local/x509";
import {
  ADMIN_GROUP,
  DEFAULT_LOCAL_BACKDATE_SECONDS,
  MAX_USER_KUBECONFIG_TTL_SECONDS,
  MIN_USER_KUBECONFIG_TTL_SECONDS,
  formatDuration,
  parseApiEndpoint,
  parseDuration,
  userNameProblem,
  type ClusterSpec,
} from "../../components/spec";
import type { StateResource } from "../reconciler/types";

/** A request that cannot be served, or a state that holds no CA to serve it: said as it is, never with a secret. */
export class AccessError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AccessError";
  }
}

export interface UserRequest {
  readonly user: string;
  readonly groups: readonly string[];
  readonly ttlSeconds: number;
}

/** `--server URL` of the commands that reach a cluster's API another way than its own name. */
export function serverFlagProblem(server: string | undefined): string | undefined {
  if (server === undefined) return undefined;
  try {
    parseApiEndpoint(server);
    return undefined;
  } catch {
    return `--server '${server}': an https URL like https://api.example.com:6443`;
  }
}

/** What is wrong with a request, one line per problem naming the flag and the fix. */
export function requestProblems(user: string, groups: readonly string[], ttl: string, server?: string): string[] {
  const problems: string[] = [];
  const serverProblem = serverFlagProblem(server);
  if (serverProblem !== undefined) problems.push(serverProblem);
  const nameProblem = userNameProblem(user);
  if (nameProblem !== undefined) problems.push(`--user ${nameProblem}`);
  for (const group of groups) {
    if (group.trim() === "" || group !== group.trim())
      problems.push(`--group '${group}': a group is a non-empty name without surrounding spaces`);
    else if (group === ADMIN_GROUP) {
      problems.push(
        `--group ${ADMIN_GROUP} is the admin kubeconfig's group (stack output adminKubeconfig): bind a group to cluster-admin with a ClusterRoleBinding instead`,
      );
    } else if (group.startsWith("system:")) {
      problems.push(
        `--group '${group}': system: groups belong to the API server's own identities; pick a group of your own`,
      );
    }
  }
  const seconds = parseDuration(ttl);
  if (seconds === undefined) problems.push(`--ttl '${ttl}' is not a duration like 8h or 1h30m`);
  else if (seconds < MIN_USER_KUBECONFIG_TTL_SECONDS || seconds > MAX_USER_KUBECONFIG_TTL_SECONDS) {
    problems.push(
      `--ttl ${ttl}: between ${formatDuration(MIN_USER_KUBECONFIG_TTL_SECONDS)} and ${formatDuration(MAX_USER_KUBECONFIG_TTL_SECONDS)} ` +
        `(a client certificate cannot be revoked: its end is the revocation; for lasting access list the user in pki.users)`,
    );
  }
  return problems;
}

/** The issuing CA as the admin certificate was last signed with: certificate and PKCS#8 key. */
export interface SigningCa {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Per backend whose CA lives in the state: the admin certificate's resource type and the input holding the CA key. */
const ADMIN_CERTIFICATE = {
  local: { type: LOCAL_TYPES.certificate, keyInput: "caKeyPem" },
  tls: { type: "tls:index/locallySignedCert:LocallySignedCert", keyInput: "caPrivateKeyPem" },
} as const;

const ADMIN_CERTIFICATE_SUFFIX = "-cert-admin";

/**
 * The CA that issues the cluster's certificates now: the admin certificate's CA inputs, which
 * follow `pki.certificateAuthorities.issuing` (a rotation reissues the admin certificate from
 * the new CA in the same update). Read from the admin certificate rather than the CA resources
 * so every backend that keeps its CA in the state is read the same way.
 */
export function signingCaFromState(
  resources: readonly StateResource[],
  backend: keyof typeof ADMIN_CERTIFICATE,
  stack: string,
): SigningCa {
  const { type, keyInput } = ADMIN_CERTIFICATE[backend];
  const admin = resources.find((r) => r.type === type && r.urn.endsWith(ADMIN_CERTIFICATE_SUFFIX));
  if (admin === undefined) {
    throw new AccessError(
      `stack ${stack} has no admin certificate (${type} *${ADMIN_CERTIFICATE_SUFFIX}) in its state: ` +
        `apply the stack first (g8s reconcile ${stack})`,
    );
  }
  const certPem = admin.inputs.caCertPem;
  const key = admin.inputs[keyInput];
  if (typeof certPem !== "string" || typeof key !== "string") {
    throw new AccessError(`stack ${stack}: the admin certificate's inputs lack the CA (caCertPem, ${keyInput})`);
  }
  let keyPem: string;
  try {
    // pulumi-tls keeps PKCS#1 (RSA PRIVATE KEY); issueCertificate takes PKCS#8.
    keyPem = createPrivateKey(key).export({ type: "pkcs8", format: "pem" }).toString();
  } catch {
    throw new AccessError(`stack ${stack}: the admin certificate's ${keyInput} is not a private key`);
  }
  return { certPem: firstPem(certPem), keyPem };
}

function firstPem(bundle: string): string {
  const end = "-----END CERTIFICATE-----";
  const at = bundle.indexOf(end);
  return at < 0 ? bundle : `${bundle.slice(0, at + end.length)}\n`;
}

/** Where the cluster answers and what its clients trust: read from the admin kubeconfig the stack exports. */
export interface ClusterEndpoint {
  readonly server: string;
  readonly trustBundlePem: string;
  /** Set when `server` is not the address the API server's certificate names (see reachedAt). */
  readonly tlsServerName?: string;
}

/**
 * The endpoint reached at `server` instead (a load balancer, a tunnel, another network's address):
 * the API server's certificate is still checked for the stack's own API host name.
 */
export function reachedAt(endpoint: ClusterEndpoint, server: string): ClusterEndpoint {
  const own = parseApiEndpoint(endpoint.server).host;
  return own === parseApiEndpoint(server).host ? { ...endpoint, server } : { ...endpoint, server, tlsServerName: own };
}

/** The `adminKubeconfig` output of the stack's state; undefined before the stack exports one. */
export function adminKubeconfigOutput(resources: readonly StateResource[]): string | undefined {
  const text = resources.find((r) => r.type === "pulumi:pulumi:Stack")?.outputs.adminKubeconfig;
  return typeof text === "string" && text !== "" ? text : undefined;
}

export function endpointFromState(resources: readonly StateResource[], stack: string): ClusterEndpoint {
  const text = adminKubeconfigOutput(resources);
  if (text === undefined) {
    throw new AccessError(
      `stack ${stack} exports no adminKubeconfig yet: apply the stack first (g8s reconcile ${stack})`,
    );
  }
  const doc = parse(text) as {
    clusters?: { cluster?: { server?: unknown; "certificate-authority-data"?: unknown } }[];
  } | null;
  const cluster = doc?.clusters?.[0]?.cluster;
  if (typeof cluster?.server !== "string" || typeof cluster["certificate-authority-data"] !== "string") {
    throw new AccessError(`stack ${stack}: its adminKubeconfig output names no server and CA`);
  }
  return {
    server: cluster.server,
    trustBundlePem: Buffer.from(cluster["certificate-authority-data"], "base64").toString("utf8"),
  };
}

export interface IssuedKubeconfig {
  /** The kubeconfig: holds the private key, for the person who asked and nobody else. */
  readonly kubeconfig: string;
  /** Lowercase hex, as openssl prints it (lowercase): for the audit line. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * A fresh key pair and a client certificate (CN the user, O the groups, clientAuth only) from
 * the cluster's CA, valid from 30 s ago for the TTL, in a kubeconfig for the cluster's endpoint.
 * The key is made here and leaves only inside the kubeconfig. Refused when the CA ends first.
 */
export async function issueUserKubeconfig(
  spec: Pick<ClusterSpec, "id">,
  ca: SigningCa,
  endpoint: ClusterEndpoint,
  request: UserRequest,
  now: Date,
): Promise<IssuedKubeconfig> {
  const window = validityWindow(now, request.ttlSeconds, DEFAULT_LOCAL_BACKDATE_SECONDS);
  const caEnds = parseCertificate(ca.certPem).notAfter;
  if (caEnds.getTime() < window.notAfter.getTime()) {
    throw new AccessError(
      `the cluster's CA is valid only until ${caEnds.toISOString()}, before the certificate would end: ` +
        `rotate the CA (pki.certificateAuthorities) or ask for a shorter --ttl`,
    );
  }
  const keys = await generateKeyPair();
  const certPem = await issueCertificate({
    commonName: request.user,
    organizations: [...request.groups],
    caCertPem: ca.certPem,
    caPrivateKeyPem: ca.keyPem,
    publicKeyPem: keys.publicKeyPem,
    usages: ["client"],
    ...window,
  });
  const info = parseCertificate(certPem);
  return {
    kubeconfig: renderKubeconfig({
      clusterName: spec.id,
      server: endpoint.server,
      caCertPem: endpoint.trustBundlePem,
      tlsServerName: endpoint.tlsServerName,
      userName: request.user,
      clientCertPem: certPem,
      clientKeyPem: keys.privateKeyPem,
    }),
    serial: info.serial,
    notBefore: info.notBefore,
    notAfter: info.notAfter,
  };
}
