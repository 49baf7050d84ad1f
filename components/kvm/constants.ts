/**
 * Fixed values of the KVM platform: the contract with the QEMU node image and sizing rules.
 * These are not spec defaults (those live in components/spec/defaults.ts), and the ports and
 * labels every platform shares are in components/spec/conventions.ts; nothing here is
 * configurable from a stack file.
 */
import { DEFAULT_SECRET_SHARE_TAG } from "../bootstrap/constants";

/**
 * QEMU's own memory on top of the guest RAM: a fixed part (QEMU binary, device emulation, 9p
 * server, the entrypoint) plus a part per vCPU (vCPU threads and their stacks). The container's
 * memory request and limit are `memoryGiB * 1024 + QEMU_OVERHEAD_MIB + cpus * QEMU_OVERHEAD_PER_CPU_MIB` MiB.
 */
export const QEMU_OVERHEAD_MIB = 256;
export const QEMU_OVERHEAD_PER_CPU_MIB = 16;

/**
 * `/dev/kvm` and `/dev/net/tun` come from a device plugin (KubeVirt's virt-handler or the
 * standalone kvm device plugin), one of each per pod. Only nodes that have KVM advertise the
 * resource, so the scheduler never places a VM where it cannot run, and the container needs
 * no `privileged`.
 */
export const KVM_DEVICE_RESOURCE = "devices.kubevirt.io/kvm";
export const TUN_DEVICE_RESOURCE = "devices.kubevirt.io/tun";

/** Size of the etcd data disk of every master (the KVM spec has no field for it). */
export const ETCD_DISK_GIB = 10;
/**
 * The etcd disk as the guest sees it: the image's entrypoint attaches it with virtio serial
 * `g8s-etcd` (README "Image contract"); the masters' bootstrap mounts it for etcd's data.
 */
export const ETCD_DISK_GUEST_DEVICE = "/dev/disk/by-id/virtio-g8s-etcd";

/** Seconds the entrypoint has to shut the guest down cleanly (ACPI power-down) after SIGTERM. */
export const TERMINATION_GRACE_SECONDS = 120;

/** Root of hostPath storage on every host node: `<root>/<namespace>/<pod>/{disk,etcd}`. */
export const HOST_PATH_ROOT = "/var/lib/g8s";

/** Mount paths inside the QEMU container: the image contract (README "Image contract"). */
export const MOUNT = {
  /** The VM disk (qcow2 created by the entrypoint on first boot, `G8S_DISK_GIB` large). */
  disk: "/var/lib/g8s/disk",
  /** The etcd data disk of a master. */
  etcd: "/var/lib/g8s/etcd",
  /** The cloud-init user-data Secret: `user-data-<ordinal>` (masters) or `user-data` (pools). */
  userData: "/etc/g8s/user-data",
  /** The node secrets Secret, shared live into the VM with 9p (`-virtfs`, read-only). */
  nodeSecrets: "/etc/g8s/node-secrets",
} as const;

/**
 * The 9p mount tag of the node secrets share; the guest mounts it with `trans=virtio` (the
 * bootstrap's `bootcmd` for `mounted-secret` delivery, whose default tag this is).
 */
export const SECRETS_SHARE_TAG = DEFAULT_SECRET_SHARE_TAG;

/** Mode of the files of the Secret volumes (0400: read by QEMU, running as root in the container). */
export const SECRET_FILE_MODE = 0o400;
