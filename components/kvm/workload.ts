/**
 * The pod of a guest node: one QEMU container running the node's VM, as a StatefulSet spec.
 * Pure functions; the components (controlPlane.ts, nodePool.ts) create the resources.
 */
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { OBJECT_STORE_KEY_FILES } from "../bootstrap/etcdBackup";
import {
  API_PORT,
  ETCD_CLIENT_PORT,
  ETCD_PEER_PORT,
  KUBELET_PORT,
  OBJECT_STORE_SECRET_KEYS,
  etcdObjectStore,
  type KvmClusterSpec,
} from "../spec";
import * as C from "./constants";
import { clusterLabels, kvmNamespace } from "./naming";

type KvmAccel = KvmClusterSpec["kvm"]["accel"];

type StatefulSetSpec = k8s.types.input.apps.v1.StatefulSetSpec;
type EnvVar = k8s.types.input.core.v1.EnvVar;
type PersistentVolumeClaim = k8s.types.input.core.v1.PersistentVolumeClaim;
type Volume = k8s.types.input.core.v1.Volume;
type VolumeMount = k8s.types.input.core.v1.VolumeMount;

/** One set of identical guest nodes: the masters or one pool. */
export interface NodeSetOptions {
  readonly spec: KvmClusterSpec;
  readonly role: "master" | "worker";
  /** Pods' selector labels (immutable once the StatefulSet exists). */
  readonly selector: Record<string, string>;
  readonly replicas: number;
  readonly cpus: number;
  readonly memoryGiB: number;
  readonly diskGiB: number;
  /** The governing headless Service. */
  readonly serviceName: pulumi.Input<string>;
  /** Name of the Secret holding the user-data. */
  readonly userDataSecret: pulumi.Input<string>;
  /** Name of the Secret holding the node's certificate files. */
  readonly nodeSecretsSecret: pulumi.Input<string>;
}

/** The container's memory (request = limit) in MiB: guest RAM plus QEMU's overhead. */
export function podMemoryMiB(cpus: number, memoryGiB: number): number {
  return memoryGiB * 1024 + C.QEMU_OVERHEAD_MIB + cpus * C.QEMU_OVERHEAD_PER_CPU_MIB;
}

/**
 * Requests and limits, equal, so the pod is in the Guaranteed QoS class (whole CPUs can be pinned).
 * `/dev/kvm` is requested unless the guest is emulated (`kvm.accel: tcg`), which then schedules
 * onto hosts without KVM too; `auto` requests it and falls back to emulation inside the pod.
 */
export function podResources(cpus: number, memoryGiB: number, accel: KvmAccel): Record<string, string> {
  return {
    cpu: String(cpus),
    memory: `${podMemoryMiB(cpus, memoryGiB)}Mi`,
    ...(accel === "tcg" ? {} : { [C.KVM_DEVICE_RESOURCE]: "1" }),
    [C.TUN_DEVICE_RESOURCE]: "1",
  };
}

/** The TCP port whose readiness shows the guest is up: the API on masters, the kubelet on workers. */
export function readinessPort(role: "master" | "worker"): number {
  return role === "master" ? API_PORT : KUBELET_PORT;
}

/** Environment of the QEMU container: the image contract. No secret ever goes here. */
export function containerEnv(o: NodeSetOptions): EnvVar[] {
  const env: EnvVar[] = [
    { name: "G8S_CLUSTER_ID", value: o.spec.id },
    { name: "G8S_ROLE", value: o.role },
    { name: "G8S_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "G8S_CPUS", value: String(o.cpus) },
    { name: "G8S_MEMORY_MIB", value: String(o.memoryGiB * 1024) },
    { name: "G8S_DISK_DIR", value: C.MOUNT.disk },
    { name: "G8S_DISK_GIB", value: String(o.diskGiB) },
    { name: "G8S_USER_DATA_DIR", value: C.MOUNT.userData },
    { name: "G8S_SHARE_DIR", value: C.MOUNT.nodeSecrets },
    { name: "G8S_SHARE_TAG", value: C.SECRETS_SHARE_TAG },
    { name: "G8S_NETWORK", value: "bridge" },
    { name: "G8S_ACCEL", value: o.spec.kvm.accel },
  ];
  if (o.role === "master") {
    env.push(
      { name: "G8S_ETCD_DIR", value: C.MOUNT.etcd },
      { name: "G8S_ETCD_DISK_GIB", value: String(C.ETCD_DISK_GIB) },
    );
  }
  return env;
}

/** The disks of a node: `disk`, plus `etcd` on masters. */
function diskNames(role: "master" | "worker"): ("disk" | "etcd")[] {
  return role === "master" ? ["disk", "etcd"] : ["disk"];
}

/** PVC templates (storage `persistentVolume`): one claim per disk, in the spec's storage class. */
export function volumeClaimTemplates(o: NodeSetOptions): PersistentVolumeClaim[] {
  return diskNames(o.role).map((disk) => ({
    metadata: { name: disk, labels: clusterLabels(o.spec) },
    spec: {
      accessModes: ["ReadWriteOnce"],
      volumeMode: "Filesystem",
      ...(o.spec.kvm.storageClass === undefined ? {} : { storageClassName: o.spec.kvm.storageClass }),
      resources: { requests: { storage: `${disk === "disk" ? o.diskGiB : C.ETCD_DISK_GIB}Gi` } },
    },
  }));
}

/** hostPath storage: one directory per namespace on the host node, a subdirectory per pod and disk. */
export function hostPathDir(spec: KvmClusterSpec): string {
  return `${C.HOST_PATH_ROOT}/${kvmNamespace(spec)}`;
}

/**
 * The share of the node's secret files: the role's Secret; on masters with an object store for
 * etcd snapshots, also the operator's credentialsSecret (its two keys as files the node's
 * g8s-object-store reads; kubelet adds them when the Secret appears later). Its values never
 * pass through Pulumi.
 */
function nodeSecretsVolume(o: NodeSetOptions): Volume {
  const credentials = o.role === "master" ? etcdObjectStore(o.spec)?.credentialsSecret : undefined;
  if (credentials === undefined) {
    return { name: "node-secrets", secret: { secretName: o.nodeSecretsSecret, defaultMode: C.SECRET_FILE_MODE } };
  }
  return {
    name: "node-secrets",
    projected: {
      defaultMode: C.SECRET_FILE_MODE,
      sources: [
        { secret: { name: o.nodeSecretsSecret } },
        {
          // Optional: a master boots without it (its snapshots stay on the volume, the copy
          // fails loudly and the last-good metric ages) rather than wait for a backup credential.
          secret: {
            name: credentials,
            optional: true,
            items: (["accessKeyId", "secretAccessKey"] as const).map((k) => ({
              key: OBJECT_STORE_SECRET_KEYS[k],
              path: OBJECT_STORE_KEY_FILES[k],
            })),
          },
        },
      ],
    },
  };
}

export function podVolumes(o: NodeSetOptions): Volume[] {
  const volumes: Volume[] = [
    // Mounted as directories (never subPath) so kubelet's updates of the Secrets reach the VM.
    { name: "user-data", secret: { secretName: o.userDataSecret, defaultMode: C.SECRET_FILE_MODE } },
    nodeSecretsVolume(o),
  ];
  if (o.spec.kvm.storage === "hostPath") {
    volumes.push({ name: "host-storage", hostPath: { path: hostPathDir(o.spec), type: "DirectoryOrCreate" } });
  }
  return volumes;
}

export function volumeMounts(o: NodeSetOptions): VolumeMount[] {
  const disks: VolumeMount[] = diskNames(o.role).map((disk) =>
    o.spec.kvm.storage === "hostPath"
      ? // A subdirectory of the host directory per pod: <root>/<namespace>/<pod>/<disk>.
        { name: "host-storage", mountPath: C.MOUNT[disk], subPathExpr: `$(G8S_POD_NAME)/${disk}` }
      : { name: disk, mountPath: C.MOUNT[disk] },
  );
  return [
    ...disks,
    { name: "user-data", mountPath: C.MOUNT.userData, readOnly: true },
    { name: "node-secrets", mountPath: C.MOUNT.nodeSecrets, readOnly: true },
  ];
}

function containerPorts(role: "master" | "worker"): { name: string; containerPort: number; protocol: string }[] {
  const kubelet = { name: "kubelet", containerPort: KUBELET_PORT, protocol: "TCP" };
  if (role === "worker") return [kubelet];
  return [
    { name: "api", containerPort: API_PORT, protocol: "TCP" },
    { name: "etcd-client", containerPort: ETCD_CLIENT_PORT, protocol: "TCP" },
    { name: "etcd-peer", containerPort: ETCD_PEER_PORT, protocol: "TCP" },
    kubelet,
  ];
}

/** The StatefulSet spec of a set of guest nodes. */
export function nodeSetSpec(o: NodeSetOptions): StatefulSetSpec {
  const resources = podResources(o.cpus, o.memoryGiB, o.spec.kvm.accel);
  return {
    replicas: o.replicas,
    serviceName: o.serviceName,
    // Parallel: a restarted master must not wait for master-0's readiness, which needs quorum.
    podManagementPolicy: "Parallel",
    selector: { matchLabels: o.selector },
    // OnDelete: a changed template (cpus, memory, the QEMU image) restarts no VM by itself. The
    // reconciler restarts them one at a time, each guest node drained first and the cluster
    // healthy again before the next (automation/access/roll.ts); a rolling update would stop a
    // VM with its pods still on it.
    updateStrategy: { type: "OnDelete" },
    // Disks outlive a `pulumi destroy` of the StatefulSet; a removed worker's disk goes with it
    // (a new node must not boot an old identity), a removed master's etcd data stays.
    persistentVolumeClaimRetentionPolicy: {
      whenDeleted: "Retain",
      whenScaled: o.role === "master" ? "Retain" : "Delete",
    },
    ...(o.spec.kvm.storage === "persistentVolume" ? { volumeClaimTemplates: volumeClaimTemplates(o) } : {}),
    template: {
      metadata: { labels: { ...clusterLabels(o.spec), ...o.selector } },
      spec: {
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        terminationGracePeriodSeconds: C.TERMINATION_GRACE_SECONDS,
        affinity: {
          podAntiAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [
              {
                weight: 100,
                podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: o.selector } },
              },
            ],
          },
        },
        containers: [
          {
            name: "qemu",
            image: o.spec.kvm.image,
            env: containerEnv(o),
            ports: containerPorts(o.role),
            resources: { requests: resources, limits: resources },
            // NET_ADMIN: the entrypoint bridges the pod's interface to the VM's tap device.
            securityContext: { privileged: false, capabilities: { add: ["NET_ADMIN"] } },
            readinessProbe: {
              tcpSocket: { port: readinessPort(o.role) },
              initialDelaySeconds: 30,
              periodSeconds: 10,
              failureThreshold: 3,
            },
            volumeMounts: volumeMounts(o),
          },
        ],
        volumes: podVolumes(o),
      },
    },
  };
}
