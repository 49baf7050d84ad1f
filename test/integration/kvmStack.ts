/** The stack file of a small KVM guest cluster for tests and benchmarks on the local host cluster. */
import { stringify } from "yaml";

/**
 * 1 master, 1 worker pool of 1, local PKI (no provider plugin but Kubernetes), hostPath disks
 * (the host cluster has no storage provisioner), reconciled every 10 s in `mode`.
 */
export function kvmStackFile(
  id: string,
  podCidr: string,
  mode: "correct" | "detect" = "correct",
  extra: Record<string, unknown> = {},
): string {
  return stringify({
    config: {
      "g8s:cluster": {
        id,
        provider: "kvm",
        baseDomain: "k8s.test.internal",
        kubernetes: { version: "1.31.4", serviceCidr: "172.30.0.0/16", podCidr },
        kvm: { storage: "hostPath" },
        masters: { count: 1, cpus: 2, memoryGiB: 4, diskGiB: 20 },
        nodePools: [{ name: "default", count: 1, cpus: 2, memoryGiB: 4, diskGiB: 20 }],
        pki: { backend: "local", certTtl: "24h" },
        ingress: { enabled: false },
      },
      "g8s:reconcile": { mode, interval: "10s" },
      ...extra,
    },
  });
}
