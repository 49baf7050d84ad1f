/**
 * The structure of a ClusterSpec (`g8s:cluster`) and of `g8s:reconcile`: types, single-field
 * formats and defaults. Rules that relate several fields live in rules.ts and run on the
 * defaulted result. Every object is strict: an unknown key (a typo such as `nodepools`) is an
 * error, never silently ignored.
 */
import { z } from "zod";
import * as D from "./defaults";
import { CLUSTER_TAG_KEY, userNameProblem } from "./conventions";
import { parseCidr } from "./cidr";
import { formatDuration, parseDuration } from "./duration";

/** A string refinement whose checker returns an explanation, or undefined when the value is fine. */
function checked(check: (value: string) => string | undefined) {
  return z.string().superRefine((value, ctx) => {
    const problem = check(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  });
}

const DNS_LABEL_RE = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;
const DNS_NAME_RE = /^(?=.{1,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function checkDnsLabel(value: string, maxLength = 63): string | undefined {
  if (DNS_LABEL_RE.test(value) && value.length <= maxLength) return undefined;
  return (
    `must be a DNS label of at most ${maxLength} characters: lowercase letters, digits and '-', ` +
    `starting with a letter and not ending with '-' (got '${value}')`
  );
}

export function checkDnsName(value: string): string | undefined {
  if (DNS_NAME_RE.test(value)) return undefined;
  return `must be a lowercase DNS name with at least two labels, like k8s.example.com (got '${value}')`;
}

/** An S3-compatible endpoint: `https://host[:port]`, or `http://` (a store on a trusted network), no path. */
export function checkObjectStoreEndpoint(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `must be a URL like https://s3.example.com (got '${value}')`;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return `must start with https:// (got '${value}')`;
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "" || url.username !== "" || value.endsWith("/")) {
    return `must be scheme, host and port only, without a path, query or credentials (got '${value}'): the bucket is etcd.backup.objectStore.bucket`;
  }
  return undefined;
}

/** S3's bucket naming rules (the strict ones every S3-compatible store accepts). */
export function checkBucketName(value: string): string | undefined {
  if (/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(value) && !value.startsWith("xn--")) return undefined;
  return `must be an S3 bucket name: 3 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit (got '${value}')`;
}

export function checkKubernetesVersion(value: string): string | undefined {
  const supported = D.SUPPORTED_KUBERNETES_MINORS.join(", ");
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(value);
  if (!m) return `must be a concrete version x.y.z such as ${D.DEFAULT_KUBERNETES_VERSION} (got '${value}')`;
  const minor = `${Number(m[1])}.${Number(m[2])}`;
  if (!(D.SUPPORTED_KUBERNETES_MINORS as readonly string[]).includes(minor)) {
    return `${value} is not supported: use a ${supported} release`;
  }
  return undefined;
}

function cidrWithPrefix(min: number, max: number, why: string) {
  return checked((value) => {
    const cidr = parseCidr(value);
    if (typeof cidr === "string") return cidr;
    if (cidr.prefix < min || cidr.prefix > max) {
      return `must be between /${min} and /${max} (got /${cidr.prefix}): ${why}`;
    }
    return undefined;
  });
}

const anyCidr = checked((value) => {
  const cidr = parseCidr(value);
  return typeof cidr === "string" ? cidr : undefined;
});

function duration(minSeconds: number, maxSeconds: number) {
  return checked((value) => {
    const seconds = parseDuration(value);
    if (seconds === undefined) return `must be a duration like 24h, 90m or 1h30m (got '${value}')`;
    if (seconds < minSeconds || seconds > maxSeconds) {
      return `must be between ${formatDuration(minSeconds)} and ${formatDuration(maxSeconds)} (got ${value})`;
    }
    return undefined;
  });
}

const LABEL_KEY_RE = /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE_RE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;

const labelKey = checked((key) =>
  LABEL_KEY_RE.test(key) ? undefined : `'${key}' is not a valid Kubernetes label or taint key`,
);
const labelValue = checked((value) =>
  LABEL_VALUE_RE.test(value) ? undefined : `'${value}' is not a valid Kubernetes label value`,
);

const labels = z.record(labelKey, labelValue).default({});

const taint = z.strictObject({
  key: labelKey,
  value: labelValue.optional(),
  effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
});

const count = (min: number, max: number) => z.number().int().min(min).max(max);

const masterCount = z
  .number()
  .int()
  .default(D.DEFAULT_MASTER_COUNT)
  .superRefine((value, ctx) => {
    if (!(D.ALLOWED_MASTER_COUNTS as readonly number[]).includes(value)) {
      ctx.addIssue({ code: "custom", message: `must be 1, 3 or 5 (got ${value}): etcd needs an odd quorum` });
    }
  });

const INSTANCE_TYPE_RE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;
const instanceType = checked((value) =>
  INSTANCE_TYPE_RE.test(value) ? undefined : `must be an EC2 instance type like m6i.large (got '${value}')`,
);

const nodePort = count(D.NODE_PORT_MIN, D.NODE_PORT_MAX);

const kubernetes = z
  .strictObject({
    version: checked(checkKubernetesVersion).default(D.DEFAULT_KUBERNETES_VERSION),
    serviceCidr: cidrWithPrefix(12, 24, "the API server allocates service IPs from at most a /12").default(
      D.DEFAULT_SERVICE_CIDR,
    ),
    podCidr: cidrWithPrefix(8, 22, "every node takes a /24 of the pod range").default(D.DEFAULT_POD_CIDR),
    /** The pod network between nodes. */
    cni: z.enum(D.CNI_CHOICES).default(D.DEFAULT_CNI),
    /** `image`: the node image holds kubelet, kubeadm, kubectl and every image; nothing is installed or pulled at boot. */
    packages: z.enum(D.PACKAGE_SOURCES).default(D.DEFAULT_PACKAGE_SOURCE),
  })
  .prefault({});

/** A user's name is the certificate's CN and part of a resource name: no spaces, no upper case. */
const pkiUser = z.strictObject({
  name: checked(userNameProblem),
  groups: z.array(z.string().trim().min(1)).default([]),
});

/** The id of a rotated key or CA: the end of its resource name. */
const rotationId = checked((value) =>
  /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/.test(value)
    ? undefined
    : `must be a short name of lowercase letters, digits and '-' (a resource name ends in it), like 2026-12 (got '${value}')`,
);

const pki = z
  .strictObject({
    backend: z.enum(["vault", "tls", "local"]).default(D.DEFAULT_PKI_BACKEND),
    vault: z
      .strictObject({
        address: checked((value) =>
          /^https?:\/\/[^\s/]+(:\d+)?\/?$/.test(value)
            ? undefined
            : `must be the Vault server URL, like https://vault.example.com (got '${value}')`,
        ).optional(),
        /** Vault Enterprise namespace, if any. */
        namespace: z.string().min(1).optional(),
      })
      .optional(),
    certTtl: duration(D.MIN_CERT_TTL_SECONDS, D.MAX_CERT_TTL_SECONDS).default(D.DEFAULT_CERT_TTL),
    caTtl: duration(24 * 60 * 60, 20 * 365 * 24 * 60 * 60).default(D.DEFAULT_CA_TTL),
    /** People and tools that get a kubeconfig with a client certificate; RBAC binds their name or groups. */
    users: z.array(pkiUser).default([]),
    /** Root CAs by id: those every component trusts, and the one that issues (local and tls backends). */
    certificateAuthorities: z
      .strictObject({
        trusted: z
          .array(rotationId)
          .min(1)
          .max(D.MAX_TRUSTED_CERTIFICATE_AUTHORITIES)
          .default([D.DEFAULT_CERTIFICATE_AUTHORITY_ID]),
        issuing: rotationId.default(D.DEFAULT_CERTIFICATE_AUTHORITY_ID),
      })
      .prefault({}),
    /** Service-account token keys: those the API server accepts, and the one that signs. */
    serviceAccountKeys: z
      .strictObject({
        trusted: z
          .array(rotationId)
          .min(1)
          .max(D.MAX_TRUSTED_SERVICE_ACCOUNT_KEYS)
          .default([D.DEFAULT_SERVICE_ACCOUNT_KEY_ID]),
        signing: rotationId.default(D.DEFAULT_SERVICE_ACCOUNT_KEY_ID),
      })
      .prefault({}),
  })
  .prefault({});

const ingress = z
  .strictObject({
    enabled: z.boolean().default(D.DEFAULT_INGRESS_ENABLED),
    httpNodePort: nodePort.default(D.DEFAULT_INGRESS_HTTP_NODE_PORT),
    httpsNodePort: nodePort.default(D.DEFAULT_INGRESS_HTTPS_NODE_PORT),
  })
  .prefault({});

/** Snapshots of every master's etcd member on a timer, on the master's etcd volume. */
const etcd = z
  .strictObject({
    backup: z
      .strictObject({
        enabled: z.boolean().default(D.DEFAULT_ETCD_BACKUP_ENABLED),
        interval: duration(D.MIN_ETCD_BACKUP_INTERVAL_SECONDS, D.MAX_ETCD_BACKUP_INTERVAL_SECONDS).default(
          D.DEFAULT_ETCD_BACKUP_INTERVAL,
        ),
        retention: count(1, D.MAX_ETCD_BACKUP_RETENTION).default(D.DEFAULT_ETCD_BACKUP_RETENTION),
        objectStore: z
          .strictObject({
            /** Default: on for aws (g8s makes the bucket), on elsewhere when an endpoint is given. */
            enabled: z.boolean().optional(),
            endpoint: checked(checkObjectStoreEndpoint).optional(),
            bucket: checked(checkBucketName).optional(),
            region: z
              .string()
              .regex(/^[a-z0-9-]{1,32}$/, "must be a region name such as us-east-1 or eu-central-1")
              .optional(),
            prefix: z
              .string()
              .regex(
                /^([a-z0-9][a-z0-9._-]*\/)*$/,
                "must be '' or path segments of lowercase letters, digits, '.', '_' and '-', each ending in '/' (like backups/etcd/)",
              )
              .optional(),
            credentialsSecret: z
              .string()
              .regex(
                /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/,
                "must be a Kubernetes Secret name: lowercase letters, digits, '.' and '-'",
              )
              .optional(),
            expireAfterDays: count(1, D.MAX_ETCD_OBJECT_EXPIRY_DAYS).default(D.DEFAULT_ETCD_OBJECT_EXPIRY_DAYS),
          })
          .prefault({}),
      })
      .prefault({}),
  })
  .prefault({});

const tags = z
  .record(
    checked((key) =>
      key.length > 128
        ? `tag key '${key.slice(0, 20)}…' is longer than 128 characters`
        : key === CLUSTER_TAG_KEY
          ? `'${CLUSTER_TAG_KEY}' is set by g8s to the cluster id: remove it`
          : undefined,
    ),
    z.string().max(256),
  )
  .default({});

const common = {
  id: checked((value) => checkDnsLabel(value, D.MAX_CLUSTER_ID_LENGTH)),
  baseDomain: checked(checkDnsName),
  kubernetes,
  pki,
  ingress,
  etcd,
  /** Extra tags/labels on every cloud resource, merged under `g8s.io/cluster`. */
  tags,
};

const poolName = checked((value) => checkDnsLabel(value, 20));

export const awsClusterSchema = z.strictObject({
  ...common,
  provider: z.literal("aws"),
  aws: z.strictObject({
    region: checked((value) =>
      /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/.test(value)
        ? undefined
        : `must be an AWS region like eu-central-1 (got '${value}')`,
    ),
    availabilityZones: count(1, D.MAX_AWS_AVAILABILITY_ZONES).default(D.DEFAULT_AWS_AVAILABILITY_ZONES),
    vpcCidr: cidrWithPrefix(
      D.MIN_AWS_VPC_PREFIX,
      D.MAX_AWS_VPC_PREFIX,
      "AWS allows /16 at most and g8s carves two subnets per availability zone",
    ).default(D.DEFAULT_AWS_VPC_CIDR),
    natGateways: z.enum(["perAz", "single"]).default(D.DEFAULT_AWS_NAT_GATEWAYS),
    /** Make the API load balancer internet-facing (default: internal). */
    publicApi: z.boolean().default(false),
    /** CIDRs allowed to reach the API on 6443 besides the nodes and the load balancer. */
    apiAllowedCidrs: z.array(anyCidr).default([]),
  }),
  masters: z
    .strictObject({
      count: masterCount,
      instanceType: instanceType.default(D.DEFAULT_AWS_MASTER_INSTANCE_TYPE),
      etcdVolumeGiB: count(10, 1000).default(D.DEFAULT_AWS_ETCD_VOLUME_GIB),
    })
    .prefault({}),
  nodePools: z
    .array(
      z.strictObject({
        name: poolName,
        instanceType: instanceType.default(D.DEFAULT_AWS_WORKER_INSTANCE_TYPE),
        min: count(0, 1000),
        max: count(1, 1000),
        /** Initial desired capacity; the cluster autoscaler owns it afterwards. Default: min. */
        desired: count(0, 1000).optional(),
        spot: z.boolean().default(false),
        rootVolumeGiB: count(20, 16384).default(D.DEFAULT_AWS_ROOT_VOLUME_GIB),
        labels,
        taints: z.array(taint).default([]),
      }),
    )
    .min(1)
    .max(D.MAX_NODE_POOLS),
});

const kvmResources = (cpus: number, memoryGiB: number, diskGiB: number) => ({
  cpus: count(1, D.MAX_KVM_CPUS).default(cpus),
  memoryGiB: count(1, D.MAX_KVM_MEMORY_GIB).default(memoryGiB),
  diskGiB: count(D.MIN_KVM_DISK_GIB, D.MAX_KVM_DISK_GIB).default(diskGiB),
});

export const kvmClusterSchema = z.strictObject({
  ...common,
  provider: z.literal("kvm"),
  kvm: z.strictObject({
    storage: z.enum(["persistentVolume", "hostPath"]).default(D.DEFAULT_KVM_STORAGE),
    /** Storage class of the node disks' PVCs; default: the host cluster's default class. */
    storageClass: z.string().min(1).optional(),
    image: z.string().min(1).default(D.DEFAULT_KVM_IMAGE),
    namespacePrefix: z.string().default(D.DEFAULT_KVM_NAMESPACE_PREFIX),
    apiService: z.enum(["ClusterIP", "NodePort", "LoadBalancer"]).default(D.DEFAULT_KVM_API_SERVICE),
    /** `tcg` emulates (no /dev/kvm needed, ~50x slower CPU); `auto` uses KVM when the guest boots under it. */
    accel: z.enum(D.KVM_ACCELERATIONS).default(D.DEFAULT_KVM_ACCEL),
  }),
  masters: z
    .strictObject({
      count: masterCount,
      ...kvmResources(D.DEFAULT_KVM_MASTER_CPUS, D.DEFAULT_KVM_MASTER_MEMORY_GIB, D.DEFAULT_KVM_MASTER_DISK_GIB),
    })
    .prefault({}),
  nodePools: z
    .array(
      z.strictObject({
        name: poolName,
        count: count(0, 100),
        ...kvmResources(D.DEFAULT_KVM_WORKER_CPUS, D.DEFAULT_KVM_WORKER_MEMORY_GIB, D.DEFAULT_KVM_WORKER_DISK_GIB),
        labels,
        taints: z.array(taint).default([]),
      }),
    )
    .min(1)
    .max(D.MAX_NODE_POOLS),
});

/** What the reconciler does with a stack (`g8s:reconcile.mode`); the daemon's default mode is one of these too. */
export const RECONCILE_MODES = ["correct", "detect", "off"] as const;

export const reconcileSchema = z
  .strictObject({
    mode: z.enum(RECONCILE_MODES).default(D.DEFAULT_RECONCILE_MODE),
    interval: duration(D.MIN_RECONCILE_INTERVAL_SECONDS, D.MAX_RECONCILE_INTERVAL_SECONDS).default(
      D.DEFAULT_RECONCILE_INTERVAL,
    ),
  })
  .prefault({});

export const PROVIDERS = ["aws", "kvm", "libvirt"] as const;
export type Provider = (typeof PROVIDERS)[number];
/** Providers whose components exist; `libvirt` is reserved. */
export const IMPLEMENTED_PROVIDERS = ["aws", "kvm"] as const;

export const clusterSchemas = { aws: awsClusterSchema, kvm: kvmClusterSchema } as const;

declare const PARSED: unique symbol;
/**
 * What only `parseClusterSpec` returns: the components take a spec from the parser and from
 * nowhere else, so no component re-checks a rule of the spec (an object literal is not a
 * ClusterSpec; a test that wants a broken spec has to say so with a cast).
 */
interface Parsed {
  readonly [PARSED]: true;
}
export type AwsClusterSpec = z.output<typeof awsClusterSchema> & Parsed;
export type KvmClusterSpec = z.output<typeof kvmClusterSchema> & Parsed;
export type ClusterSpec = AwsClusterSpec | KvmClusterSpec;
export type AwsNodePoolSpec = AwsClusterSpec["nodePools"][number];
export type KvmNodePoolSpec = KvmClusterSpec["nodePools"][number];
export type NodePoolSpec = AwsNodePoolSpec | KvmNodePoolSpec;
export type Taint = z.output<typeof taint>;
export type PkiSpec = ClusterSpec["pki"];
export type ReconcileSpec = z.output<typeof reconcileSchema>;
export type ReconcileMode = ReconcileSpec["mode"];
