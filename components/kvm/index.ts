/**
 * KVM platform: guest clusters as QEMU pods on a host Kubernetes cluster. Exported names carry
 * `Kvm`/`kvm` so they never collide with other providers' components in components/index.ts.
 */
export {
  KvmCluster,
  checkKvmClusterArgs,
  kvmApiNames,
  type KvmClusterArgs,
  type KvmNodeSecrets,
  type KvmUserData,
} from "./cluster";
export { KvmControlPlane, type KvmControlPlaneArgs } from "./controlPlane";
export { KvmNodePool, type KvmNodePoolArgs } from "./nodePool";
export { kvmApiEndpoint, kvmNamespace, type KvmApiIngressArgs } from "./naming";
export { ETCD_DISK_GUEST_DEVICE as KVM_ETCD_DISK_GUEST_DEVICE } from "./constants";
