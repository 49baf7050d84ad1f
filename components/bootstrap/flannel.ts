/**
 * flannel (`kubernetes.cni: flannel`): VXLAN between nodes, a bridge on each node, node subnets
 * from the controller manager's `node.spec.podCIDR` (kubeadm's `networking.podSubnet`). Applied by
 * the first master with the other add-ons; nothing is fetched: the image is in the node image and
 * the CNI plugins (bridge, host-local, loopback, portmap and g8s's flannel plugin) in its
 * /opt/cni/bin. VXLAN is UDP, which every host network carries (the KVM platform's pods included).
 */
import { FLANNEL_VXLAN_PORT, type ClusterSpec } from "../spec";
import { NODE_IMAGE_FLANNEL } from "./nodeImage";

export const FLANNEL_NAMESPACE = "kube-flannel";
const NAME = "flannel";
const CONFIG_MAP = "kube-flannel-cfg";
/** Where kubelet's CNI finds the network; `10-` sorts before anything an image may bring. */
export const FLANNEL_CNI_CONFIG_PATH = "/etc/cni/net.d/10-flannel.conflist";

/** The CNI network list: g8s's flannel plugin (bridge + host-local for the node's subnet) and port mappings. */
export function flannelCniConfig(): object {
  return {
    cniVersion: "1.0.0",
    name: "cbr0",
    plugins: [
      { type: "flannel", delegate: { hairpinMode: true, isDefaultGateway: true } },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
}

/** flanneld's network: the cluster's pod range, VXLAN. */
export function flannelNetConfig(spec: ClusterSpec): object {
  return { Network: spec.kubernetes.podCidr, Backend: { Type: "vxlan", Port: FLANNEL_VXLAN_PORT } };
}

/** Namespace, RBAC, configuration and the DaemonSet, in apply order. */
export function flannelDocuments(spec: ClusterSpec): object[] {
  const labels = { app: NAME };
  const hostPath = (name: string, path: string, type?: string) => ({
    name,
    hostPath: { path, ...(type ? { type } : {}) },
  });
  return [
    {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: FLANNEL_NAMESPACE, labels: { "pod-security.kubernetes.io/enforce": "privileged" } },
    },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: NAME, namespace: FLANNEL_NAMESPACE } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: NAME },
      rules: [
        { apiGroups: [""], resources: ["pods"], verbs: ["get"] },
        { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
        { apiGroups: [""], resources: ["nodes/status"], verbs: ["patch"] },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: NAME },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: NAME },
      subjects: [{ kind: "ServiceAccount", name: NAME, namespace: FLANNEL_NAMESPACE }],
    },
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: CONFIG_MAP, namespace: FLANNEL_NAMESPACE, labels },
      data: {
        "cni-conf.json": JSON.stringify(flannelCniConfig(), null, 2),
        "net-conf.json": JSON.stringify(flannelNetConfig(spec), null, 2),
      },
    },
    {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: NAME, namespace: FLANNEL_NAMESPACE, labels },
      spec: {
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            hostNetwork: true,
            priorityClassName: "system-node-critical",
            serviceAccountName: NAME,
            // Every node, masters included: a node without flannel never gets Ready.
            tolerations: [{ operator: "Exists" }],
            initContainers: [
              {
                name: "install-cni-config",
                image: NODE_IMAGE_FLANNEL,
                command: ["/opt/bin/install-conf", "/etc/kube-flannel/cni-conf.json", FLANNEL_CNI_CONFIG_PATH],
                volumeMounts: [
                  { name: "cni-config", mountPath: "/etc/cni/net.d" },
                  { name: "flannel-config", mountPath: "/etc/kube-flannel/" },
                ],
              },
            ],
            containers: [
              {
                name: "flanneld",
                image: NODE_IMAGE_FLANNEL,
                command: ["/opt/bin/flanneld", "--ip-masq", "--kube-subnet-mgr"],
                env: [
                  { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                  { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
                ],
                resources: { requests: { cpu: "50m", memory: "50Mi" } },
                securityContext: { privileged: false, capabilities: { add: ["NET_ADMIN", "NET_RAW"] } },
                volumeMounts: [
                  { name: "run", mountPath: "/run/flannel" },
                  { name: "flannel-config", mountPath: "/etc/kube-flannel/" },
                  { name: "xtables-lock", mountPath: "/run/xtables.lock" },
                ],
              },
            ],
            volumes: [
              hostPath("run", "/run/flannel"),
              hostPath("cni-config", "/etc/cni/net.d"),
              hostPath("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
              { name: "flannel-config", configMap: { name: CONFIG_MAP } },
            ],
          },
        },
      },
    },
  ];
}
