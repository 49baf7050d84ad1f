/**
 * What the node image (`kubernetes.packages: image`, built by `npm run toolchain`) holds besides
 * kubelet, kubeadm and kubectl: the image references kubeadm and the flannel DaemonSet name. They
 * are constants here because a Pulumi program renders user-data without the toolchain; a unit test
 * holds them against the manifest the build writes (.tools/share/node-images/images.json).
 */

/** The etcd image of the node image: the toolchain's etcd, tagged as registry.k8s.io tags etcd. */
export const NODE_IMAGE_ETCD_TAG = "3.6.16-0";
/**
 * The CoreDNS image of the node image. Pinned in the kubeadm configuration like etcd's, so that
 * `kubeadm upgrade` to the next minor (whose default CoreDNS the image does not hold) keeps it.
 */
export const NODE_IMAGE_COREDNS_TAG = "v1.12.1";
/** flanneld (VXLAN) and flannel's install-conf; the CNI plugins themselves are in the node image's /opt/cni/bin. */
export const NODE_IMAGE_FLANNEL = "g8s.local/flannel:v0.28.10";

/**
 * The sandbox (pause) image kubeadm of a minor expects; containerd must use the same, or kubeadm
 * warns and, on a node that pulls nothing, pods never start.
 */
export function pauseImageOf(kubernetesVersion: string): string {
  const m = /^(\d+)\.(\d+)\./.exec(kubernetesVersion);
  if (!m) throw new RangeError(`kubernetes.version must be x.y.z (got '${kubernetesVersion}')`);
  const minor = Number(m[2]);
  return `registry.k8s.io/pause:${minor >= 34 ? "3.10.1" : "3.10"}`;
}
