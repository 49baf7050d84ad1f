/** Specs and fake inputs of the KVM component tests. */
import { parseClusterSpec, type KvmClusterSpec } from "../../../components/spec";
import { kvmSpec, withChange } from "../spec/helpers";

export const K8S = {
  provider: "pulumi:providers:kubernetes",
  namespace: "kubernetes:core/v1:Namespace",
  secret: "kubernetes:core/v1:Secret",
  configMap: "kubernetes:core/v1:ConfigMap",
  service: "kubernetes:core/v1:Service",
  statefulSet: "kubernetes:apps/v1:StatefulSet",
  pdb: "kubernetes:policy/v1:PodDisruptionBudget",
  networkPolicy: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
  ingress: "kubernetes:networking.k8s.io/v1:Ingress",
} as const;

/** edge7 with `masters` masters and two pools, `default` then `big`. */
export function kvmClusterSpec(
  masters: 1 | 3,
  change: (s: Record<string, any>) => void = () => undefined, // eslint-disable-line @typescript-eslint/no-explicit-any
): KvmClusterSpec {
  const spec = parseClusterSpec(
    withChange(kvmSpec(), (s) => {
      s.kvm = { storageClass: "fast-ssd" };
      s.masters = { count: masters, cpus: 2, memoryGiB: 4, diskGiB: 20 };
      s.nodePools = [
        { name: "default", count: 2, cpus: 2, memoryGiB: 8, diskGiB: 40 },
        { name: "big", count: 1, cpus: 8, memoryGiB: 32, diskGiB: 100 },
      ];
      s.ingress = { enabled: true, httpNodePort: 30080, httpsNodePort: 30443 };
      change(s);
    }),
  );
  if (spec.provider !== "kvm") throw new Error("not a kvm spec");
  return spec;
}

/** Secret values that must only ever appear in Secrets. */
export const FAKE = {
  kubeconfig: "FAKE-HOST-KUBECONFIG",
  masterKey: "FAKE-SECRET-apiserver-key",
  etcdKey: "FAKE-SECRET-etcd-master-0-key",
  workerKey: "FAKE-SECRET-worker-key",
} as const;

export const nodeSecrets = {
  master: { "ca.crt": "CA CERT", "apiserver.key": FAKE.masterKey, "etcd-master-0.key": FAKE.etcdKey },
  worker: { "ca.crt": "CA CERT", "kubelet.key": FAKE.workerKey },
};

export const userData = {
  master: (slot: number) => `#cloud-config master ${slot}`,
  pool: (poolName: string) => `#cloud-config pool ${poolName}`,
};
