/**
 * ClusterPki: the cert operator's job as a component. A root CA per cluster (in Vault, or
 * in Pulumi state with the tls and local backends), mutual-TLS certificates for every Kubernetes
 * component, client certificates whose O carries RBAC groups, rotation at half the TTL.
 */
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type * as vault from "@pulumi/vault";
import { DEFAULT_SERVICE_ACCOUNT_KEY_ID, clusterDomain, durationSeconds, masterKeys, type ClusterSpec } from "../spec";
import { caSpecMismatch } from "./expiry";
import type { IssuedCertificate, PkiBackend } from "./backend";
import {
  DEFAULT_SERVICE_DNS_DOMAIN,
  LEAF_KEY_BITS,
  certificateSet,
  checkMasterNames,
  checkUser,
  pemBundle,
  userCertificate,
  type CertificateSpec,
} from "./certificates";
import { renderKubeconfig } from "./kubeconfig";
import { createLocalBackend, createLocalServiceAccountKey } from "./local/backend";
import { createTlsBackend } from "./tls";
import { createVaultBackend, createVaultProvider } from "./vault";

export interface ClusterPkiArgs {
  /** The validated cluster spec (parseClusterSpec); ClusterPki reads id, baseDomain, kubernetes, masters and pki. */
  readonly spec: ClusterSpec;
  /** API endpoint of the kubeconfigs, e.g. `https://api.eu1prod.k8s.example.com:6443`. */
  readonly apiEndpoint: pulumi.Input<string>;
  /** Extra DNS SANs of the API server certificate: load balancer / Service names. Default: none. */
  readonly apiNames?: readonly pulumi.Input<string>[];
  /** Extra IP SANs of the API server certificate (a load balancer or Service IP). Default: none. */
  readonly apiAddresses?: readonly pulumi.Input<string>[];
  /**
   * Stable keys of the masters, one etcd certificate each (`${name}-cert-etcd-<master>`).
   * Default: `master-0` … `master-<masters.count - 1>`. Order does not matter; a key must never change.
   */
  readonly masterNames?: readonly string[];
  /** A master's IP, added to its etcd certificate's IP SANs. Default: none (127.0.0.1 only). */
  readonly masterAddresses?: Readonly<Record<string, pulumi.Input<string>>>;
  /** In-cluster DNS domain of `kubernetes.default.svc.<domain>`. Default: `cluster.local`. */
  readonly serviceDnsDomain?: string;
  /** Vault token (vault backend only; index.ts passes the secret `g8s:vaultToken`). Default: the provider's VAULT_TOKEN handling. */
  readonly vaultToken?: pulumi.Input<string>;
  /**
   * The time rotation windows are computed from (tls backend). Default: `new Date()`. The local
   * backend ignores it: its providers judge renewal on the engine's clock in every diff.
   */
  readonly now?: Date;
}

/** Certificate, key and CA of one component, as written to a node. */
export interface CertificateBundle {
  readonly certPem: string;
  readonly keyPem: string;
  readonly caPem: string;
}

/**
 * What the reconciler needs to renew and watch one certificate (stack output `pki`): plain
 * values, no secret. Times are RFC 3339, "" when unknown; `renewAt` "" means g8s never renews
 * it by itself (a tls or vault CA), `urns` are the resources an update renewing it must include.
 */
export interface CertificateRecord {
  readonly notBefore: string;
  readonly notAfter: string;
  readonly renewAt: string;
  readonly urns: readonly string[];
}

/** The key of the CA in `certificateRecords()`: never a component certificate's key. */
export const CA_RECORD_KEY = "ca";

export interface ServiceAccountKeyPair {
  readonly publicKeyPem: string;
  readonly privateKeyPem: string;
}

/** The resource name suffix of a component certificate. */
export function certificateChildName(cert: CertificateSpec): string {
  return cert.role === "user" ? cert.key : `cert-${cert.key}`;
}

export class ClusterPki extends pulumi.ComponentResource {
  /** The cluster CA certificate (PEM); public. */
  public readonly caCertPem: pulumi.Output<string>;
  /** Per certificate key (`apiserver`, `etcd-master-0`, `worker`, …): cert, key and CA. Secret. */
  public readonly bundles: pulumi.Output<Record<string, CertificateBundle>>;
  /** Per certificate key: when it expires (RFC 3339). Public, for time-to-expiry metrics. */
  public readonly notAfter: pulumi.Output<Record<string, string>>;
  /** The service-account token signing key pair. Secret. */
  public readonly serviceAccountKey: pulumi.Output<ServiceAccountKeyPair>;
  /** kubeconfig of `kubernetes-admin` (O=system:masters). Secret. */
  public readonly adminKubeconfig: pulumi.Output<string>;

  private readonly backend: PkiBackend;
  /** Every certificate issued so far (users join as userKubeconfig issues them), and the CA. */
  private readonly issued = new Map<string, IssuedCertificate>();
  private readonly spec: ClusterSpec;
  private readonly apiEndpoint: pulumi.Input<string>;

  constructor(name: string, args: ClusterPkiArgs, opts?: pulumi.ComponentResourceOptions) {
    super("g8s:pki:ClusterPki", name, {}, opts);
    const masterNames = args.masterNames ?? masterKeys(args.spec);
    const problem = checkMasterNames(masterNames);
    if (problem !== undefined) throw new pulumi.ResourceError(problem, this);
    this.spec = args.spec;
    this.apiEndpoint = args.apiEndpoint;

    const certs = certificateSet({
      spec: args.spec,
      masterNames,
      masterAddresses: args.masterAddresses ?? {},
      apiNames: args.apiNames ?? [],
      apiAddresses: args.apiAddresses ?? [],
      serviceDnsDomain: args.serviceDnsDomain ?? DEFAULT_SERVICE_DNS_DOMAIN,
    });
    this.backend = createBackend(name, args, certs, this);
    this.caCertPem = this.backend.caCertPem;
    // CA_FIXED_INPUTS keep a live CA as it was made: say so when the spec has moved on.
    this.caCertPem.apply((pem) => {
      const mismatch = caSpecMismatch(pem, clusterDomain(args.spec), durationSeconds(args.spec.pki.caTtl));
      if (mismatch !== undefined) void pulumi.log.warn(mismatch, this);
    });

    const issued = Object.fromEntries(
      certs.map((cert) => [cert.key, this.backend.issue(cert, certificateChildName(cert))] as const),
    );
    for (const [key, c] of Object.entries(issued)) this.issued.set(key, c);
    this.bundles = pulumi.secret(
      pulumi.all(
        Object.fromEntries(
          Object.entries(issued).map(([key, c]) => [
            key,
            pulumi
              .all([c.certPem, c.keyPem, this.caCertPem])
              .apply(([certPem, keyPem, caPem]) => ({ certPem, keyPem, caPem })),
          ]),
        ),
      ),
    ) as pulumi.Output<Record<string, CertificateBundle>>;
    this.notAfter = pulumi.all(Object.fromEntries(Object.entries(issued).map(([key, c]) => [key, c.notAfter])));

    // The local backend must not need pulumi-tls (no provider plugin at all), so it makes its own.
    this.serviceAccountKey = serviceAccountKeys(name, args.spec, this);
    const admin = certs.find((c) => c.key === "admin");
    if (admin === undefined) throw new Error("internal: the certificate set has no admin certificate");
    this.adminKubeconfig = kubeconfigOf(args.spec.id, this.apiEndpoint, this.caCertPem, admin, issued.admin);

    this.registerOutputs({
      caCertPem: this.caCertPem,
      bundles: this.bundles,
      notAfter: this.notAfter,
      serviceAccountKey: this.serviceAccountKey,
      adminKubeconfig: this.adminKubeconfig,
    });
  }

  /**
   * Per certificate key, and the CA under `ca`: validity, renewal point and the URNs to renew it
   * (stack output `pki`). Call after the last `userKubeconfig`: later ones are not in it.
   */
  public certificateRecords(): pulumi.Output<Record<string, CertificateRecord>> {
    const others = Object.entries(this.backend.otherCas ?? {}).map(([id, c]) => [`${CA_RECORD_KEY}-${id}`, c] as const);
    const entries = [[CA_RECORD_KEY, this.backend.ca] as const, ...others, ...this.issued.entries()];
    return pulumi.all(Object.fromEntries(entries.map(([key, c]) => [key, recordOf(c)])));
  }

  /**
   * Issues a client certificate for `user` whose O carries `groups` (RBAC), as the child
   * `${name}-user-<user>`, and returns its kubeconfig (secret). Call once per user.
   */
  public userKubeconfig(user: string, groups: readonly string[]): pulumi.Output<string> {
    const problem = checkUser(this.spec.pki.backend, user, groups);
    if (problem !== undefined) throw new pulumi.ResourceError(problem, this);
    const cert = userCertificate(this.spec, user, groups);
    const issued = this.backend.issue(cert, certificateChildName(cert));
    this.issued.set(cert.key, issued);
    return kubeconfigOf(this.spec.id, this.apiEndpoint, this.caCertPem, cert, issued);
  }
}

function recordOf(c: Omit<IssuedCertificate, "keyPem">): pulumi.Output<CertificateRecord> {
  return pulumi
    .all([c.notBefore, c.notAfter, c.renewAt, pulumi.all(c.renewedBy.map((r) => r.urn))])
    .apply(([notBefore, notAfter, renewAt, urns]) => ({ notBefore, notAfter, renewAt, urns }));
}

function createBackend(name: string, args: ClusterPkiArgs, certs: CertificateSpec[], parent: ClusterPki): PkiBackend {
  if (args.spec.pki.backend === "vault") {
    const provider: vault.Provider = createVaultProvider(name, args.spec, args.vaultToken, parent);
    return createVaultBackend(name, args.spec, certs, parent, provider);
  }
  if (args.spec.pki.backend === "local") return createLocalBackend(name, args.spec, parent);
  return createTlsBackend(name, args.spec, parent, args.now ?? new Date());
}

/**
 * The service-account key pair nodes get: `privateKeyPem` the signing key's, `publicKeyPem` every
 * trusted key's public key, PEM after PEM (kube-apiserver's `--service-account-key-file` takes
 * several), so tokens of a key being rotated in or out keep working (`pki.serviceAccountKeys`).
 * @internal
 */
export function serviceAccountKeys(
  name: string,
  spec: ClusterSpec,
  parent: pulumi.Resource,
): pulumi.Output<ServiceAccountKeyPair> {
  const { trusted, signing } = spec.pki.serviceAccountKeys;
  const keys = new Map(
    trusted.map((id) => [id, createServiceAccountKey(serviceAccountKeyName(name, id), spec, parent)]),
  );
  const signer = keys.get(signing);
  if (signer === undefined)
    throw new pulumi.ResourceError(`pki.serviceAccountKeys.signing '${signing}' is not trusted`, parent);
  return pulumi.secret(
    pulumi
      .all([pulumi.all(trusted.map((id) => keys.get(id)?.publicKeyPem as pulumi.Output<string>)), signer.privateKeyPem])
      .apply(([publics, privateKeyPem]) => ({
        publicKeyPem: pemBundle(publics),
        privateKeyPem,
      })),
  );
}

/** A service-account key's resource name: `<name>-sa-key` for the first (as before ids), else `<name>-sa-key-<id>`. */
export function serviceAccountKeyName(name: string, id: string): string {
  return id === DEFAULT_SERVICE_ACCOUNT_KEY_ID ? `${name}-sa-key` : `${name}-sa-key-${id}`;
}

/**
 * One service-account key: from pulumi-tls with the vault and tls backends (Vault PKI issues
 * certificates, not bare keys), from the local backend's own provider with local. Never renewed
 * by time: a new key is a new id in `pki.serviceAccountKeys`.
 */
function createServiceAccountKey(
  resourceName: string,
  spec: ClusterSpec,
  parent: pulumi.Resource,
): { publicKeyPem: pulumi.Output<string>; privateKeyPem: pulumi.Output<string> } {
  if (spec.pki.backend === "local") return createLocalServiceAccountKey(resourceName, parent);
  const key = new tls.PrivateKey(resourceName, { algorithm: "RSA", rsaBits: LEAF_KEY_BITS }, { parent });
  return { publicKeyPem: key.publicKeyPem, privateKeyPem: key.privateKeyPem };
}

/** @internal */
export function kubeconfigOf(
  clusterId: string,
  server: pulumi.Input<string>,
  caCertPem: pulumi.Output<string>,
  cert: CertificateSpec,
  issued: { certPem: pulumi.Output<string>; keyPem: pulumi.Output<string> },
): pulumi.Output<string> {
  return pulumi.secret(
    pulumi.all([server, caCertPem, issued.certPem, issued.keyPem]).apply(([s, ca, certPem, keyPem]) =>
      renderKubeconfig({
        clusterName: clusterId,
        server: s,
        caCertPem: ca,
        userName: cert.commonName,
        clientCertPem: certPem,
        clientKeyPem: keyPem,
      }),
    ),
  );
}
