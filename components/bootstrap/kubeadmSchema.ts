/**
 * A strict schema of the kubeadm v1beta4 configuration kinds, written by hand from the Go types
 * (cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go at Kubernetes 1.31, plus the
 * bootstraptoken/v1 BootstrapToken and corev1 Taint/EnvVar it embeds). Every object is strict,
 * so a misspelt or removed field fails. Used by the tests; kept in the component so the README
 * can point at one place. Required/optional follows the Go `json` tags (no omitempty = required).
 */
import { z } from "zod";

const arg = z.strictObject({ name: z.string().min(1), value: z.string() });
const args = z.array(arg);
const duration = z.string().regex(/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/, "a Go duration like 4m0s");
const envVar = z.strictObject({
  name: z.string().min(1),
  value: z.string().optional(),
  valueFrom: z.record(z.string(), z.unknown()).optional(),
});
const hostPathMount = z.strictObject({
  name: z.string().min(1),
  hostPath: z.string().min(1),
  mountPath: z.string().min(1),
  readOnly: z.boolean().optional(),
  pathType: z
    .enum(["", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"])
    .optional(),
});
const controlPlaneComponent = {
  extraArgs: args.optional(),
  extraVolumes: z.array(hostPathMount).optional(),
  extraEnvs: z.array(envVar).optional(),
};
const imageMeta = { imageRepository: z.string().optional(), imageTag: z.string().optional() };
const apiEndpoint = z.strictObject({
  advertiseAddress: z.string().optional(),
  bindPort: z.number().int().min(1).max(65535).optional(),
});
const taint = z.strictObject({
  key: z.string().min(1),
  value: z.string().optional(),
  effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
  timeAdded: z.string().optional(),
});
const nodeRegistration = z.strictObject({
  name: z.string().optional(),
  criSocket: z.string().optional(),
  // `json:"taints"` without omitempty: nil means "default control-plane taint", [] means none.
  taints: z.array(taint).nullable(),
  kubeletExtraArgs: args.optional(),
  ignorePreflightErrors: z.array(z.string()).optional(),
  imagePullPolicy: z.enum(["Always", "IfNotPresent", "Never"]).optional(),
  imagePullSerial: z.boolean().optional(),
});
const timeouts = z.strictObject({
  controlPlaneComponentHealthCheck: duration.optional(),
  kubeletHealthCheck: duration.optional(),
  kubernetesAPICall: duration.optional(),
  etcdAPICall: duration.optional(),
  tlsBootstrap: duration.optional(),
  discovery: duration.optional(),
  upgradeManifests: duration.optional(),
});
const patches = z.strictObject({ directory: z.string().optional() });
const typeMeta = (kind: string) => ({ apiVersion: z.literal("kubeadm.k8s.io/v1beta4"), kind: z.literal(kind) });

const bootstrapToken = z.strictObject({
  token: z.string().regex(/^[a-z0-9]{6}\.[a-z0-9]{16}$/),
  description: z.string().optional(),
  ttl: duration.optional(),
  expires: z.string().optional(),
  usages: z.array(z.string()).optional(),
  groups: z.array(z.string()).optional(),
});

export const clusterConfigurationSchema = z.strictObject({
  ...typeMeta("ClusterConfiguration"),
  etcd: z
    .strictObject({
      local: z
        .strictObject({
          ...imageMeta,
          dataDir: z.string().min(1),
          extraArgs: args.optional(),
          extraEnvs: z.array(envVar).optional(),
          serverCertSANs: z.array(z.string()).optional(),
          peerCertSANs: z.array(z.string()).optional(),
        })
        .optional(),
      external: z
        .strictObject({
          endpoints: z.array(z.string()).min(1),
          caFile: z.string(),
          certFile: z.string(),
          keyFile: z.string(),
        })
        .optional(),
    })
    .refine((e) => !(e.local && e.external), "etcd.local and etcd.external are mutually exclusive")
    .optional(),
  networking: z
    .strictObject({
      serviceSubnet: z.string().optional(),
      podSubnet: z.string().optional(),
      dnsDomain: z.string().optional(),
    })
    .optional(),
  kubernetesVersion: z
    .string()
    .regex(/^v\d+\.\d+\.\d+$/)
    .optional(),
  controlPlaneEndpoint: z.string().optional(),
  apiServer: z.strictObject({ ...controlPlaneComponent, certSANs: z.array(z.string()).optional() }).optional(),
  controllerManager: z.strictObject(controlPlaneComponent).optional(),
  scheduler: z.strictObject(controlPlaneComponent).optional(),
  dns: z.strictObject({ ...imageMeta, disabled: z.boolean().optional() }).optional(),
  proxy: z.strictObject({ disabled: z.boolean().optional() }).optional(),
  certificatesDir: z.string().optional(),
  imageRepository: z.string().optional(),
  featureGates: z.record(z.string(), z.boolean()).optional(),
  clusterName: z.string().optional(),
  encryptionAlgorithm: z.enum(["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384"]).optional(),
  certificateValidityPeriod: duration.optional(),
  caCertificateValidityPeriod: duration.optional(),
});

export const initConfigurationSchema = z.strictObject({
  ...typeMeta("InitConfiguration"),
  bootstrapTokens: z.array(bootstrapToken).optional(),
  dryRun: z.boolean().optional(),
  nodeRegistration: nodeRegistration.optional(),
  localAPIEndpoint: apiEndpoint.optional(),
  certificateKey: z.string().optional(),
  skipPhases: z.array(z.string()).optional(),
  patches: patches.optional(),
  timeouts: timeouts.optional(),
});

export const joinConfigurationSchema = z.strictObject({
  ...typeMeta("JoinConfiguration"),
  dryRun: z.boolean().optional(),
  nodeRegistration: nodeRegistration.optional(),
  caCertPath: z.string().optional(),
  discovery: z
    .strictObject({
      bootstrapToken: z
        .strictObject({
          token: z.string(),
          apiServerEndpoint: z.string().optional(),
          caCertHashes: z.array(z.string().regex(/^sha256:[0-9a-f]{64}$/)).optional(),
          unsafeSkipCAVerification: z.boolean().optional(),
        })
        .optional(),
      file: z.strictObject({ kubeConfigPath: z.string().min(1) }).optional(),
      tlsBootstrapToken: z.string().optional(),
    })
    .refine(
      (d) => (d.bootstrapToken === undefined) !== (d.file === undefined),
      "exactly one of bootstrapToken and file",
    ),
  controlPlane: z
    .strictObject({ localAPIEndpoint: apiEndpoint.optional(), certificateKey: z.string().optional() })
    .optional(),
  skipPhases: z.array(z.string()).optional(),
  patches: patches.optional(),
  timeouts: timeouts.optional(),
});

/**
 * The KubeletConfiguration fields g8s sets (kubelet.config.k8s.io/v1beta1 has many more; this
 * schema is strict over the subset so an unexpected field is noticed, not silently accepted).
 */
export const kubeletConfigurationSubsetSchema = z.strictObject({
  apiVersion: z.literal("kubelet.config.k8s.io/v1beta1"),
  kind: z.literal("KubeletConfiguration"),
  cgroupDriver: z.enum(["systemd", "cgroupfs"]),
  clusterDomain: z.string().min(1),
  rotateCertificates: z.boolean(),
  failCgroupV1: z.boolean(),
});

/** The part of kube-proxy's configuration (kubeproxy.config.k8s.io/v1alpha1) g8s sets. */
export const kubeProxyConfigurationSubsetSchema = z.strictObject({
  apiVersion: z.literal("kubeproxy.config.k8s.io/v1alpha1"),
  kind: z.literal("KubeProxyConfiguration"),
  conntrack: z.strictObject({ maxPerCore: z.number().int().min(0) }),
});

/** The schema of a document by kind; undefined for a kind kubeadm v1beta4 does not define. */
export function kubeadmSchemaOf(kind: unknown): z.ZodType | undefined {
  switch (kind) {
    case "ClusterConfiguration":
      return clusterConfigurationSchema;
    case "InitConfiguration":
      return initConfigurationSchema;
    case "JoinConfiguration":
      return joinConfigurationSchema;
    case "KubeletConfiguration":
      return kubeletConfigurationSubsetSchema;
    case "KubeProxyConfiguration":
      return kubeProxyConfigurationSubsetSchema;
    default:
      return undefined;
  }
}
