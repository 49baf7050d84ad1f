/** The certificate table of components/pki/README.md, written out for the tests of both backends. */
import { parseClusterSpec, type ClusterSpec } from "../../../components/spec";
import { awsSpec, kvmSpec, withChange } from "../spec/helpers";

export const TLS = {
  key: "tls:index/privateKey:PrivateKey",
  csr: "tls:index/certRequest:CertRequest",
  cert: "tls:index/locallySignedCert:LocallySignedCert",
  selfSigned: "tls:index/selfSignedCert:SelfSignedCert",
} as const;

export const VAULT = {
  provider: "pulumi:providers:vault",
  mount: "vault:index/mount:Mount",
  policy: "vault:index/policy:Policy",
  root: "vault:pkiSecret/secretBackendRootCert:SecretBackendRootCert",
  urls: "vault:pkiSecret/secretBackendConfigUrls:SecretBackendConfigUrls",
  role: "vault:pkiSecret/secretBackendRole:SecretBackendRole",
  cert: "vault:pkiSecret/secretBackendCert:SecretBackendCert",
} as const;

export const LOCAL = {
  rootCa: "pulumi-nodejs:dynamic/g8s-pki:LocalRootCa",
  cert: "pulumi-nodejs:dynamic/g8s-pki:LocalCertificate",
  key: "pulumi-nodejs:dynamic/g8s-pki:LocalPrivateKey",
  secret: "pulumi-nodejs:dynamic/g8s-pki:LocalSecret",
} as const;

/** eu1prod (aws, vault backend, 3 masters, service range 172.31.0.0/16). */
export function vaultClusterSpec(): ClusterSpec {
  return parseClusterSpec(awsSpec());
}

/** edge7 (kvm, tls backend, 1 master, service range 172.30.0.0/16). */
export function tlsClusterSpec(): ClusterSpec {
  return parseClusterSpec(
    withChange(kvmSpec(), (s) => {
      s.masters = { count: 1 };
      s.kubernetes = { serviceCidr: "172.30.0.0/16", podCidr: "10.60.0.0/16" };
    }),
  );
}

export interface ExpectedCert {
  readonly key: string;
  readonly role: string;
  readonly cn: string;
  readonly o?: string;
  readonly dns: string[];
  readonly ip: string[];
  readonly server: boolean;
  readonly client: boolean;
}

const API_DNS = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"];

/** The expected set for a cluster, given the Args the tests pass. */
export function expectedCertificates(
  domain: string,
  firstServiceIp: string,
  masters: Record<string, string | undefined>,
  api: { names: string[]; addresses: string[] },
): ExpectedCert[] {
  return [
    {
      key: "apiserver",
      role: "api",
      cn: "kube-apiserver",
      dns: [...API_DNS, `api.${domain}`, "localhost", ...api.names],
      ip: [firstServiceIp, "127.0.0.1", ...api.addresses],
      server: true,
      client: false,
    },
    {
      key: "apiserver-kubelet-client",
      role: "api",
      cn: "kube-apiserver-kubelet-client",
      dns: [],
      ip: [],
      server: false,
      client: true,
    },
    {
      key: "apiserver-etcd-client",
      role: "etcd",
      cn: "kube-apiserver-etcd-client",
      dns: [],
      ip: [],
      server: false,
      client: true,
    },
    {
      key: "controller-manager",
      role: "api",
      cn: "system:kube-controller-manager",
      dns: [],
      ip: [],
      server: false,
      client: true,
    },
    { key: "scheduler", role: "api", cn: "system:kube-scheduler", dns: [], ip: [], server: false, client: true },
    { key: "front-proxy-client", role: "api", cn: "front-proxy-client", dns: [], ip: [], server: false, client: true },
    ...Object.entries(masters).map(([m, ip]) => ({
      key: `etcd-${m}`,
      role: "etcd",
      cn: `${m}.${domain}`,
      dns: [m, `${m}.${domain}`, `etcd.${domain}`, "localhost"],
      ip: [...(ip === undefined ? [] : [ip]), "127.0.0.1"],
      server: true,
      client: true,
    })),
    {
      key: "worker",
      role: "worker",
      cn: `worker.${domain}`,
      o: "system:nodes",
      dns: [`worker.${domain}`],
      ip: [],
      server: true,
      client: true,
    },
    {
      key: "admin",
      role: "admin",
      cn: "kubernetes-admin",
      o: "system:masters",
      dns: [],
      ip: [],
      server: false,
      client: true,
    },
  ];
}

/** Fake provider outputs: PEM-like texts that name their resource, so kubeconfigs and bundles can be checked. */
export function fakePkiOutputs(args: { type: string; name: string }): Record<string, unknown> {
  switch (args.type) {
    case TLS.key:
      return { privateKeyPem: `KEY ${args.name}`, publicKeyPem: `PUB ${args.name}` };
    case TLS.csr:
      return { certRequestPem: `CSR ${args.name}` };
    case TLS.cert:
      return { certPem: `CERT ${args.name}`, validityEndTime: "2025-03-02T10:00:00Z" };
    case TLS.selfSigned:
      return { certPem: `CA ${args.name}` };
    case VAULT.root:
      return { certificate: `CA ${args.name}` };
    case VAULT.cert:
      return { certificate: `CERT ${args.name}`, privateKey: `KEY ${args.name}`, expiration: 1740909600 };
    case LOCAL.rootCa:
      return { certPem: `CA ${args.name}`, keyPem: `CAKEY ${args.name}`, notAfter: "2035-02-27T10:00:00.000Z" };
    case LOCAL.cert:
      return { certPem: `CERT ${args.name}`, keyPem: `KEY ${args.name}`, notAfter: "2025-03-02T10:00:00.000Z" };
    case LOCAL.key:
      return { privateKeyPem: `KEY ${args.name}`, publicKeyPem: `PUB ${args.name}` };
    case LOCAL.secret:
      return { value: `SEED ${args.name} 5f0e2a9c` };
    default:
      return {};
  }
}
