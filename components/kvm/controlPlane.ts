/** KvmControlPlane (`g8s:kvm:ControlPlane`): the masters as one StatefulSet of QEMU pods, with their Services. */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { KvmClusterSpec } from "../spec";
import { K8S_NAMES, clusterLabels, masterSelector } from "./naming";
import { apiServiceSpec, etcdServiceSpec, masterServiceSpec } from "./network";
import { nodeSetSpec } from "./workload";

/** The Args of KvmControlPlane; the host cluster's provider comes in its resource options (`{ provider }`). */
export interface KvmControlPlaneArgs {
  /** The validated spec; reads id, kvm and masters. */
  readonly spec: KvmClusterSpec;
  /** The guest's namespace on the host cluster. */
  readonly namespace: pulumi.Input<string>;
  /**
   * Rendered cloud-init user-data of master slot `n` (pod `master-<n>`), given that master's
   * Service address; references only, stored as a Secret anyway.
   */
  readonly userData: (slot: number, serviceAddress: pulumi.Output<string>) => pulumi.Input<string>;
  /** File name → content of the masters' certificates and keys, shared live into every master VM. */
  readonly nodeSecrets: Readonly<Record<string, pulumi.Input<string>>>;
}

/** Keys of the masters' user-data Secret: `user-data-<slot>`; the entrypoint picks its pod ordinal's. */
export function masterUserDataKey(slot: number): string {
  return `user-data-${slot}`;
}

export class KvmControlPlane extends pulumi.ComponentResource {
  /** Name of the API Service (in the guest's namespace). */
  public readonly apiServiceName: pulumi.Output<string>;
  /** The API Service's load-balancer hostname or IP (type LoadBalancer, once assigned), else undefined. */
  public readonly apiLoadBalancerAddress: pulumi.Output<string | undefined>;
  /** Name of the masters' StatefulSet. */
  public readonly statefulSetName: pulumi.Output<string>;
  /** Each master's Service ClusterIP (slot order): its stable, advertised address. */
  public readonly masterAddresses: pulumi.Output<string>[];
  /** The Secret of the masters' node files (certificates and keys among them). */
  public readonly nodeSecrets: k8s.core.v1.Secret;

  constructor(name: string, args: KvmControlPlaneArgs, opts?: pulumi.ComponentResourceOptions) {
    super("g8s:kvm:ControlPlane", name, {}, opts);
    const { spec, namespace } = args;
    // Every child inherits the host cluster's provider from this component's options.
    const child = { parent: this };
    const labels = clusterLabels(spec);

    const masterServices = Array.from(
      { length: spec.masters.count },
      (_, slot) =>
        new k8s.core.v1.Service(
          `${name}-node-${slot}`,
          {
            metadata: { name: `${K8S_NAMES.masters}-${slot}`, namespace, labels },
            spec: masterServiceSpec(spec, slot),
          },
          child,
        ),
    );
    this.masterAddresses = masterServices.map((s) => s.spec.clusterIP);
    const userData = new k8s.core.v1.Secret(
      `${name}-user-data`,
      {
        metadata: { name: K8S_NAMES.masterUserData, namespace, labels },
        type: "Opaque",
        stringData: pulumi.secret(
          Object.fromEntries(
            Array.from({ length: spec.masters.count }, (_, slot) => [
              masterUserDataKey(slot),
              args.userData(slot, this.masterAddresses[slot]),
            ]),
          ),
        ),
      },
      child,
    );
    const secrets = createNodeSecrets(
      `${name}-secrets`,
      K8S_NAMES.masterSecrets,
      spec,
      namespace,
      args.nodeSecrets,
      child,
    );
    const etcd = new k8s.core.v1.Service(
      `${name}-etcd`,
      { metadata: { name: K8S_NAMES.etcd, namespace, labels }, spec: etcdServiceSpec(spec) },
      child,
    );
    const api = new k8s.core.v1.Service(
      `${name}-api`,
      { metadata: { name: K8S_NAMES.api, namespace, labels }, spec: apiServiceSpec(spec) },
      child,
    );
    // The StatefulSet's name is part of every PVC name: renaming it loses the VM disks.
    const set = new k8s.apps.v1.StatefulSet(
      name,
      {
        metadata: { name: K8S_NAMES.masters, namespace, labels },
        spec: nodeSetSpec({
          spec,
          role: "master",
          selector: masterSelector(spec),
          replicas: spec.masters.count,
          cpus: spec.masters.cpus,
          memoryGiB: spec.masters.memoryGiB,
          diskGiB: spec.masters.diskGiB,
          serviceName: etcd.metadata.name,
          userDataSecret: userData.metadata.name,
          nodeSecretsSecret: secrets.metadata.name,
        }),
      },
      child,
    );
    // One master at a time may be drained; with 3 or 5 the rest keep quorum, with 1 a drain is an outage by choice.
    new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      {
        metadata: { name: K8S_NAMES.masters, namespace, labels },
        spec: { maxUnavailable: 1, selector: { matchLabels: masterSelector(spec) } },
      },
      child,
    );

    this.apiServiceName = api.metadata.name;
    this.apiLoadBalancerAddress = api.status.apply((s) => {
      const first = s?.loadBalancer?.ingress?.[0];
      return first?.hostname || first?.ip || undefined;
    });
    this.statefulSetName = set.metadata.name;
    this.nodeSecrets = secrets;
    this.registerOutputs({
      apiServiceName: this.apiServiceName,
      apiLoadBalancerAddress: this.apiLoadBalancerAddress,
      statefulSetName: this.statefulSetName,
      masterAddresses: this.masterAddresses,
    });
  }
}

/**
 * The Secret of a role's node files (certificates, keys), mounted as a directory into the pods
 * and shared into the VMs. Only ever a Secret: never a ConfigMap, never an env var.
 * @internal
 */
export function createNodeSecrets(
  resourceName: string,
  k8sName: string,
  spec: KvmClusterSpec,
  namespace: pulumi.Input<string>,
  files: Readonly<Record<string, pulumi.Input<string>>>,
  opts: pulumi.CustomResourceOptions,
): k8s.core.v1.Secret {
  return new k8s.core.v1.Secret(
    resourceName,
    {
      metadata: { name: k8sName, namespace, labels: clusterLabels(spec) },
      type: "Opaque",
      stringData: pulumi.secret(pulumi.all({ ...files })),
    },
    opts,
  );
}
