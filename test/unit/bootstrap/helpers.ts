import { KVM_ETCD_DISK_GUEST_DEVICE } from "../../../components/kvm";
import { masterKeys, parseClusterSpec, type ClusterSpec } from "../../../components/spec";
import type { CertificateBundle } from "../../../components/pki";
import type { BootstrapConfig, NodeSecretValues, SecretDelivery } from "../../../components/bootstrap";
import { masterRoles, type BootstrapRole, type MasterAttachment } from "../../../components/bootstrap";
import { awsSpec, kvmSpec } from "../spec/helpers";

const pools = [
  { name: "general", labels: { "example.com/tier": "general" }, taints: [] },
  {
    name: "gpu",
    labels: { "example.com/tier": "gpu", "example.com/accelerator": "a10g" },
    taints: [
      { key: "example.com/gpu", value: "true", effect: "NoSchedule" },
      { key: "example.com/dedicated", effect: "NoExecute" },
    ],
  },
];

export function awsClusterSpec(masters: 1 | 3 | 5): ClusterSpec {
  const raw = awsSpec();
  raw.masters = { count: masters };
  raw.nodePools = pools.map((p) => ({ ...p, min: 1, max: 5 }));
  return parseClusterSpec(raw, "stacks/Pulumi.t.yaml");
}

export function kvmClusterSpec(masters: 1 | 3 | 5): ClusterSpec {
  const raw = kvmSpec();
  raw.masters = { count: masters };
  raw.nodePools = pools.map((p) => ({ ...p, count: 2 }));
  raw.kubernetes = { ...(raw.kubernetes as object), version: "1.34.12", packages: "image" };
  return parseClusterSpec(raw, "stacks/Pulumi.t.yaml");
}

export const AWS_DELIVERY: SecretDelivery = { kind: "aws-ssm", region: "eu-central-1" };
export const KVM_DELIVERY: SecretDelivery = { kind: "mounted-secret" };

export function awsConfig(masters: 1 | 3 | 5): BootstrapConfig {
  return {
    spec: awsClusterSpec(masters),
    apiEndpoint: "https://api.eu1prod.k8s.example.com:6443",
    apiCertSans: ["eu1prod-api-0123456789.elb.eu-central-1.amazonaws.com"],
    delivery: AWS_DELIVERY,
  };
}

export function kvmConfig(masters: 1 | 3 | 5): BootstrapConfig {
  return {
    spec: kvmClusterSpec(masters),
    apiEndpoint: "https://api.g8s-edge7.svc:6443",
    delivery: KVM_DELIVERY,
    // As components/cluster.ts passes it: the QEMU pod's second disk.
    etcdDisk: KVM_ETCD_DISK_GUEST_DEVICE,
  };
}

/** AWS masters attach their slot's interface and etcd volume (fake ids). */
export function fakeAttachment(slot: number): MasterAttachment {
  return {
    region: "eu-central-1",
    networkInterfaceId: `eni-0abc${slot}`,
    deviceIndex: 1,
    privateIp: `10.1.0.${10 + slot}`,
    etcdVolumeId: `vol-0def${slot}`,
  };
}

/** Every node role of a config: its masters (attached on AWS), then one worker per pool. */
export function rolesOf(config: BootstrapConfig): BootstrapRole[] {
  const aws = config.delivery.kind === "aws-ssm";
  return [
    ...masterRoles(masterKeys(config.spec)).map((r, slot) =>
      aws && r.kind !== "worker" ? { ...r, attach: fakeAttachment(slot) } : r,
    ),
    ...config.spec.nodePools.map((p) => ({ kind: "worker", pool: p.name }) as const),
  ];
}

function fakeBundle(key: string): CertificateBundle {
  return {
    certPem: `-----BEGIN CERTIFICATE-----\nFAKECERT${key}\n-----END CERTIFICATE-----\n`,
    keyPem: `-----BEGIN RSA PRIVATE KEY-----\nSECRETKEY${key.replace(/[^a-z0-9]/g, "")}x7Qz\n-----END RSA PRIVATE KEY-----\n`,
    caPem: FAKE_CA,
  };
}

export const FAKE_CA = "-----BEGIN CERTIFICATE-----\nFAKECLUSTERCA\n-----END CERTIFICATE-----\n";
export const FAKE_TOKEN = "s3cr3t.t0k3nvaluex9q2w7";

/** Recognisable fake secrets for every certificate key ClusterPki issues. */
export function fakeSecrets(masterNames: readonly string[]): NodeSecretValues {
  const keys = [
    "apiserver",
    "apiserver-kubelet-client",
    "apiserver-etcd-client",
    "controller-manager",
    "scheduler",
    "front-proxy-client",
    ...masterNames.map((m) => `etcd-${m}`),
    "worker",
    "admin",
  ];
  return {
    caCertPem: FAKE_CA,
    bundles: Object.fromEntries(keys.map((k) => [k, fakeBundle(k)])),
    serviceAccountKey: {
      publicKeyPem: "-----BEGIN PUBLIC KEY-----\nFAKESAPUB\n-----END PUBLIC KEY-----\n",
      privateKeyPem: "-----BEGIN PRIVATE KEY-----\nSECRETSAKEYq8Rw\n-----END PRIVATE KEY-----\n",
    },
    bootstrapToken: FAKE_TOKEN,
  };
}
