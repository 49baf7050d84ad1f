/**
 * Versions, paths and names of node bootstrap, as named constants. Nothing else in
 * components/bootstrap hard-codes a path a platform or a test needs to know (ports and labels
 * shared with the platforms are in components/spec/conventions.ts).
 */

/** kubeadm configuration API this module renders (kubeadm 1.31 and later read it). */
export const KUBEADM_API_VERSION = "kubeadm.k8s.io/v1beta4";
export const KUBELET_API_VERSION = "kubelet.config.k8s.io/v1beta1";

/** Calico, installed by the Tigera operator from the first master. Pinned: a change is a reviewed upgrade. */
export const CALICO_VERSION = "v3.28.2";
export const CALICO_OPERATOR_MANIFEST_URL = `https://raw.githubusercontent.com/projectcalico/calico/${CALICO_VERSION}/manifests/tigera-operator.yaml`;

export const CRI_SOCKET = "unix:///run/containerd/containerd.sock";

export const KUBERNETES_DIR = "/etc/kubernetes";
/** Every master's admin kubeconfig (kubeadm's name; g8s delivers it). */
export const ADMIN_KUBECONFIG_PATH = `${KUBERNETES_DIR}/admin.conf`;
export const PKI_DIR = "/etc/kubernetes/pki";
export const MANIFESTS_DIR = "/etc/kubernetes/manifests";
/** Where g8s keeps its own node files: kubeadm config, secret manifest, addon manifests. */
export const G8S_DIR = "/etc/g8s";
export const KUBEADM_CONFIG_PATH = `${G8S_DIR}/kubeadm.yaml`;
export const SECRET_MANIFEST_PATH = `${G8S_DIR}/secrets.tsv`;
export const ADDONS_PATH = `${G8S_DIR}/addons.yaml`;
export const SYNC_SCRIPT_PATH = "/usr/local/sbin/g8s-sync-secrets";
/** AWS: what a node runs when its bootstrap failed (marks the instance unhealthy: its group replaces it). */
export const BOOTSTRAP_FAILED_SCRIPT_PATH = "/usr/local/sbin/g8s-bootstrap-failed";
export const STATE_DIR = "/var/lib/g8s";
/**
 * Where an AWS master mounts its etcd volume. Not etcd's data directory itself: a fresh ext4 file
 * system holds `lost+found` (and fsck may recreate it), and kubeadm's `DirAvailable--<dataDir>`
 * preflight check refuses a data directory that is not empty, on init and on join.
 */
export const ETCD_VOLUME_MOUNT_PATH = "/var/lib/etcd-disk";
/** etcd's data directory (kubeadm's `etcd.local.dataDir`) on every platform: a subdirectory of the volume. */
export const ETCD_DATA_DIR = `${ETCD_VOLUME_MOUNT_PATH}/data`;
/** Bootstrap token file on every master (secret, delivered). */
export const BOOTSTRAP_TOKEN_PATH = `${KUBERNETES_DIR}/g8s/bootstrap-token`;
/** The masters' script that keeps the bootstrap token valid in the cluster (components/bootstrap/token.ts). */
export const BOOTSTRAP_TOKEN_SCRIPT_PATH = "/usr/local/sbin/g8s-bootstrap-token";
/**
 * The bootstrap token's TTL in the cluster. Every master's secret sync re-creates it once less than
 * half remains, so it never lapses while a master runs, and lapses within a day when none does.
 */
export const BOOTSTRAP_TOKEN_TTL_HOURS = 24;
/** The description g8s's bootstrap tokens carry: how the masters tell their own tokens from others. */
export const BOOTSTRAP_TOKEN_DESCRIPTION = "g8s node join";
/** Discovery kubeconfig of joining nodes: CA, endpoint and the bootstrap token (secret, delivered). */
export const DISCOVERY_KUBECONFIG_PATH = `${KUBERNETES_DIR}/g8s/discovery.conf`;

/** Default mount point of the KVM platform's secret share inside the VM. */
export const DEFAULT_SECRET_MOUNT_PATH = "/mnt/g8s-secrets";
/** Default virtio 9p mount tag of that share (QEMU's `-virtfs …,mount_tag=`). */
export const DEFAULT_SECRET_SHARE_TAG = "g8s-secrets";
/** SSM Parameter Store prefix: `/g8s/<clusterId>/<role>/<file>`. */
export const SSM_PARAMETER_PREFIX = "/g8s";

/** How often running nodes re-fetch (AWS) or re-copy (KVM) their certificates. */
export const SECRET_SYNC_INTERVAL = "15min";
export const SECRET_SYNC_RANDOMIZED_DELAY = "5min";
export const SECRET_SYNC_UNIT = "g8s-secret-sync";

/** AWS EC2 user-data limit (bytes, before base64 by the launch template). */
export const AWS_USER_DATA_LIMIT = 16 * 1024;
/** Bootstrap token format (kubeadm: `[a-z0-9]{6}.[a-z0-9]{16}`). */
export const BOOTSTRAP_TOKEN_RE = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;
