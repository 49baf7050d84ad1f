/** Services, the API Ingress and the NetworkPolicies of a guest namespace, as pure specs. */
import type * as k8s from "@pulumi/kubernetes";
import {
  API_PORT,
  ETCD_CLIENT_PORT,
  ETCD_PEER_PORT,
  KUBELET_PORT,
  apiDnsName,
  ingressPorts,
  type KvmClusterSpec,
} from "../spec";
import { K8S_NAMES, masterSelector, workerSelector } from "./naming";

type ServiceSpec = k8s.types.input.core.v1.ServiceSpec;
type IngressSpec = k8s.types.input.networking.v1.IngressSpec;
type NetworkPolicySpec = k8s.types.input.networking.v1.NetworkPolicySpec;

/** The API Service, of type `kvm.apiService`, to the masters' 6443. */
export function apiServiceSpec(spec: KvmClusterSpec): ServiceSpec {
  return {
    type: spec.kvm.apiService,
    selector: masterSelector(spec),
    ports: [{ name: "https", port: API_PORT, targetPort: API_PORT, protocol: "TCP" }],
  };
}

/**
 * Headless Service of the masters (the StatefulSet's serviceName): DNS names
 * `master-<n>.etcd.<namespace>.svc` for etcd peers, published before the pods are ready
 * because etcd members must find each other to become ready.
 */
export function etcdServiceSpec(spec: KvmClusterSpec): ServiceSpec {
  return {
    clusterIP: "None",
    publishNotReadyAddresses: true,
    selector: masterSelector(spec),
    ports: [
      { name: "etcd-client", port: ETCD_CLIENT_PORT, targetPort: ETCD_CLIENT_PORT, protocol: "TCP" },
      { name: "etcd-peer", port: ETCD_PEER_PORT, targetPort: ETCD_PEER_PORT, protocol: "TCP" },
    ],
  };
}

/**
 * The Service of one master (`master-<n>`): a ClusterIP that follows the pod, the master's stable
 * address (a pod's IP changes with every pod). The master advertises it (API, etcd), so it is in
 * the API and etcd certificates, and the VM holds it on `lo`.
 */
export function masterServiceSpec(spec: KvmClusterSpec, slot: number): ServiceSpec {
  return {
    type: "ClusterIP",
    publishNotReadyAddresses: true,
    selector: { ...masterSelector(spec), [POD_NAME_LABEL]: `${K8S_NAMES.masters}-${slot}` },
    ports: [
      { name: "api", port: API_PORT, targetPort: API_PORT, protocol: "TCP" },
      { name: "etcd-client", port: ETCD_CLIENT_PORT, targetPort: ETCD_CLIENT_PORT, protocol: "TCP" },
      { name: "etcd-peer", port: ETCD_PEER_PORT, targetPort: ETCD_PEER_PORT, protocol: "TCP" },
      { name: "kubelet", port: KUBELET_PORT, targetPort: KUBELET_PORT, protocol: "TCP" },
    ],
  };
}

/** The label the StatefulSet controller puts on each pod: its name. */
const POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name";

/** Headless Service of the workers (the pools' serviceName): `pool-<name>-<n>.workers.<namespace>.svc`. */
export function workersServiceSpec(spec: KvmClusterSpec): ServiceSpec {
  return {
    clusterIP: "None",
    publishNotReadyAddresses: true,
    selector: workerSelector(spec),
    ports: [{ name: "kubelet", port: KUBELET_PORT, targetPort: KUBELET_PORT, protocol: "TCP" }],
  };
}

/**
 * The guest's ingress controller, which listens on node ports of every worker: http/https to
 * `ingress.httpNodePort/httpsNodePort` of all workers. Type: `kvm.apiService` (one knob for how
 * the host exposes the guest).
 */
export function ingressServiceSpec(spec: KvmClusterSpec): ServiceSpec {
  return {
    type: spec.kvm.apiService,
    selector: workerSelector(spec),
    ports: [...ingressPorts(spec).map((p) => ({ name: p.key, port: p.port, targetPort: p.nodePort, protocol: "TCP" }))],
  };
}

/** ingress-nginx: hand the TLS stream to the API server untouched (SNI routing, no termination). */
export const SSL_PASSTHROUGH_ANNOTATIONS = {
  "nginx.ingress.kubernetes.io/ssl-passthrough": "true",
  "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",
} as const;

/** Host Ingress `api.<id>.<baseDomain>` → the API Service, TLS passed through. */
export function apiIngressSpec(spec: KvmClusterSpec, className: string): IngressSpec {
  const host = apiDnsName(spec);
  return {
    ingressClassName: className,
    tls: [{ hosts: [host] }],
    rules: [
      {
        host,
        http: {
          paths: [
            {
              path: "/",
              pathType: "Prefix",
              backend: { service: { name: K8S_NAMES.api, port: { number: API_PORT } } },
            },
          ],
        },
      },
    ],
  };
}

/**
 * The NetworkPolicies of the guest namespace, keyed by the stable suffix of their names. They
 * add up: nothing enters but the traffic of the guest's own pods, the API on the masters and
 * (with ingress) the ingress node ports on the workers. The API and ingress ports accept any
 * source: traffic from Services of type NodePort/LoadBalancer and from the host's ingress
 * controller arrives from node or external addresses that no namespace selector matches.
 * Egress is not restricted (nodes pull images and resolve names).
 */
export function networkPolicySpecs(spec: KvmClusterSpec): Record<string, NetworkPolicySpec> {
  const policies: Record<string, NetworkPolicySpec> = {
    "default-deny": { podSelector: {}, policyTypes: ["Ingress"] },
    // etcd, kubelet, the CNI overlay: everything among this guest's pods, nothing from other namespaces.
    "same-cluster": { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: {} }] }] },
    api: {
      podSelector: { matchLabels: masterSelector(spec) },
      policyTypes: ["Ingress"],
      ingress: [{ ports: [{ protocol: "TCP", port: API_PORT }] }],
    },
  };
  if (spec.ingress.enabled) {
    policies.ingress = {
      podSelector: { matchLabels: workerSelector(spec) },
      policyTypes: ["Ingress"],
      ingress: [
        {
          ports: [
            { protocol: "TCP", port: spec.ingress.httpNodePort },
            { protocol: "TCP", port: spec.ingress.httpsNodePort },
          ],
        },
      ],
    };
  }
  return policies;
}
