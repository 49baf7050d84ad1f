/**
 * Every default of the ClusterSpec, in one place. The schema (schema.ts) and the README's
 * reference read these constants; nothing else hard-codes a default.
 */

/** Kubernetes minors g8s bootstraps and tests (kubeadm v1beta4 needs 1.31 or later). */
export const SUPPORTED_KUBERNETES_MINORS = ["1.31", "1.32", "1.33", "1.34", "1.35"] as const;
export const DEFAULT_KUBERNETES_VERSION = "1.31.4";
export const DEFAULT_SERVICE_CIDR = "172.31.0.0/16";
export const DEFAULT_POD_CIDR = "10.2.0.0/16";
/** Each node gets one /24 of the pod range (kube-controller-manager --node-cidr-mask-size). */
export const POD_CIDR_NODE_MASK = 24;
/** The pod network: Calico (its operator manifest is fetched at boot) or flannel VXLAN (from the node image). */
export const CNI_CHOICES = ["calico", "flannel"] as const;
export const DEFAULT_CNI = "calico";
/** Where kubelet, kubeadm, kubectl and the images come from: pkgs.k8s.io and registries, or the node image. */
export const PACKAGE_SOURCES = ["apt", "image"] as const;
export const DEFAULT_PACKAGE_SOURCE = "apt";
/**
 * The Kubernetes versions g8s's node image (`packages: image`) holds: its own, and the next
 * minor's, which its clusters upgrade to (tools/kubernetes-next). A unit test holds them against
 * the toolchain's build (.tools/versions.json).
 */
export const NODE_IMAGE_KUBERNETES_VERSIONS = ["1.34.12", "1.35.4"] as const;

export const DEFAULT_MASTER_COUNT = 3;
export const ALLOWED_MASTER_COUNTS = [1, 3, 5] as const;

export const MAX_CLUSTER_ID_LENGTH = 20;
export const MAX_NODE_POOLS = 20;

// AWS
export const DEFAULT_AWS_AVAILABILITY_ZONES = 3;
export const MAX_AWS_AVAILABILITY_ZONES = 6;
export const DEFAULT_AWS_VPC_CIDR = "10.1.0.0/16";
export const DEFAULT_AWS_NAT_GATEWAYS = "perAz";
export const DEFAULT_AWS_MASTER_INSTANCE_TYPE = "m6i.large";
export const DEFAULT_AWS_WORKER_INSTANCE_TYPE = "m6i.xlarge";
export const DEFAULT_AWS_ETCD_VOLUME_GIB = 20;
export const DEFAULT_AWS_ROOT_VOLUME_GIB = 50;
/** AWS accepts VPCs from /16 to /28; g8s needs room for a public and a private subnet per AZ. */
export const MIN_AWS_VPC_PREFIX = 16;
export const MAX_AWS_VPC_PREFIX = 22;

// KVM
export const DEFAULT_KVM_STORAGE = "persistentVolume";
export const DEFAULT_KVM_IMAGE = "g8s/qemu-node:1.0.0";
export const DEFAULT_KVM_NAMESPACE_PREFIX = "g8s-";
export const DEFAULT_KVM_API_SERVICE = "ClusterIP";
/** QEMU acceleration: KVM, emulation (TCG) where /dev/kvm is unusable, or KVM when it works. */
export const KVM_ACCELERATIONS = ["kvm", "tcg", "auto"] as const;
export const DEFAULT_KVM_ACCEL = "kvm";
export const DEFAULT_KVM_MASTER_CPUS = 2;
export const DEFAULT_KVM_MASTER_MEMORY_GIB = 4;
export const DEFAULT_KVM_MASTER_DISK_GIB = 20;
export const DEFAULT_KVM_WORKER_CPUS = 2;
export const DEFAULT_KVM_WORKER_MEMORY_GIB = 8;
export const DEFAULT_KVM_WORKER_DISK_GIB = 40;
export const MAX_KVM_CPUS = 64;
export const MAX_KVM_MEMORY_GIB = 512;
export const MIN_KVM_DISK_GIB = 10;
export const MAX_KVM_DISK_GIB = 2048;

// PKI
export const DEFAULT_PKI_BACKEND = "vault";
export const DEFAULT_CERT_TTL = "24h";
export const MIN_CERT_TTL_SECONDS = 60 * 60; // 1h: rotation at half the TTL needs a margin over the reconcile interval
export const MAX_CERT_TTL_SECONDS = 30 * 24 * 60 * 60; // 30d
export const DEFAULT_CA_TTL = "87600h"; // 10 years
/** The id of a cluster's first root CA (resource `<name>-ca`, as before ids existed). */
export const DEFAULT_CERTIFICATE_AUTHORITY_ID = "initial";
/** At most this many root CAs are trusted at once: the current one and one or two being rotated. */
export const MAX_TRUSTED_CERTIFICATE_AUTHORITIES = 3;
/** The id of a cluster's first service-account key (resource `<name>-sa-key`, as before ids existed). */
export const DEFAULT_SERVICE_ACCOUNT_KEY_ID = "initial";
/** At most this many service-account keys are trusted at once: the current one and one or two being rotated. */
export const MAX_TRUSTED_SERVICE_ACCOUNT_KEYS = 3;
/** Key of the local backend's CA and leaf certificates: small, fast, accepted by every component. */
export const DEFAULT_LOCAL_KEY_ALGORITHM = "ecdsa-p256";
/** Key of the local backend's service-account signing key: RS256 tokens, which every OIDC consumer accepts. */
export const DEFAULT_LOCAL_SERVICE_ACCOUNT_KEY_ALGORITHM = "rsa-2048";
/** Local backend certificates start this long before issue, for nodes whose clock lags (Vault's not_before_duration). */
export const DEFAULT_LOCAL_BACKDATE_SECONDS = 30;
/** `g8s kubeconfig`: a person's certificate lasts a working day unless asked otherwise. */
export const DEFAULT_USER_KUBECONFIG_TTL = "8h";
/** Short-lived by design: a client certificate cannot be revoked, so its end is the revocation. */
export const MIN_USER_KUBECONFIG_TTL_SECONDS = 60;
export const MAX_USER_KUBECONFIG_TTL_SECONDS = 24 * 60 * 60;
/** Random bytes of a local backend `LocalSecret` (the bootstrap token's seed): 256 bits. */
export const DEFAULT_LOCAL_SECRET_BYTES = 32;

// Ingress
export const DEFAULT_INGRESS_ENABLED = true;

// etcd backups
export const DEFAULT_ETCD_BACKUP_ENABLED = true;
/** Time between two snapshots of each master's etcd member. */
export const DEFAULT_ETCD_BACKUP_INTERVAL = "6h";
export const MIN_ETCD_BACKUP_INTERVAL_SECONDS = 15 * 60;
export const MAX_ETCD_BACKUP_INTERVAL_SECONDS = 7 * 24 * 60 * 60;
/** Snapshots each master keeps (the newest): two days at the default interval. */
export const DEFAULT_ETCD_BACKUP_RETENTION = 8;
export const MAX_ETCD_BACKUP_RETENTION = 200;
/** AWS: the lifecycle rule of the snapshot bucket deletes a snapshot this many days after its upload. */
export const DEFAULT_ETCD_OBJECT_EXPIRY_DAYS = 30;
export const MAX_ETCD_OBJECT_EXPIRY_DAYS = 3650;
/** Outside AWS, the region an S3-compatible store signs with when etcd.backup.objectStore.region is not set. */
export const DEFAULT_OBJECT_STORE_REGION = "us-east-1";
export const DEFAULT_INGRESS_HTTP_NODE_PORT = 30080;
export const DEFAULT_INGRESS_HTTPS_NODE_PORT = 30443;
export const NODE_PORT_MIN = 30000;
export const NODE_PORT_MAX = 32767;

// Reconcile (g8s:reconcile)
export const DEFAULT_RECONCILE_MODE = "correct";
export const DEFAULT_RECONCILE_INTERVAL = "5m";
export const MIN_RECONCILE_INTERVAL_SECONDS = 10;
export const MAX_RECONCILE_INTERVAL_SECONDS = 24 * 60 * 60;
