/** KvmNodePool (`g8s:kvm:NodePool`): one pool of workers as a StatefulSet of QEMU pods. */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { KvmClusterSpec, KvmNodePoolSpec } from "../spec";
import { clusterLabels, poolSelector, poolSetName, poolUserDataName } from "./naming";
import { nodeSetSpec } from "./workload";

/** The Args of KvmNodePool; the host cluster's provider comes in its resource options (`{ provider }`). */
export interface KvmNodePoolArgs {
  /** The validated spec; reads id and kvm. */
  readonly spec: KvmClusterSpec;
  /** The pool, one of `spec.nodePools`. */
  readonly pool: KvmNodePoolSpec;
  /** The guest's namespace on the host cluster. */
  readonly namespace: pulumi.Input<string>;
  /** Rendered cloud-init user-data of this pool's nodes; references only, stored as a Secret anyway. */
  readonly userData: pulumi.Input<string>;
  /** Name of the workers' node-secrets Secret (shared by all pools). */
  readonly nodeSecretsSecret: pulumi.Input<string>;
  /** Name of the workers' headless Service. */
  readonly serviceName: pulumi.Input<string>;
}

export class KvmNodePool extends pulumi.ComponentResource {
  /** Name of the pool's StatefulSet: `pool-<poolName>`. */
  public readonly statefulSetName: pulumi.Output<string>;

  constructor(name: string, args: KvmNodePoolArgs, opts?: pulumi.ComponentResourceOptions) {
    super("g8s:kvm:NodePool", name, {}, opts);
    const { spec, pool, namespace } = args;
    // Every child inherits the host cluster's provider from this component's options.
    const child = { parent: this };
    const labels = clusterLabels(spec);

    const userData = new k8s.core.v1.Secret(
      `${name}-user-data`,
      {
        metadata: { name: poolUserDataName(pool.name), namespace, labels },
        type: "Opaque",
        stringData: pulumi.secret(pulumi.all({ "user-data": args.userData })),
      },
      child,
    );
    // Keyed by pool name (never list position); part of every PVC name, so it must never change.
    const set = new k8s.apps.v1.StatefulSet(
      name,
      {
        metadata: { name: poolSetName(pool.name), namespace, labels },
        spec: nodeSetSpec({
          spec,
          role: "worker",
          selector: poolSelector(spec, pool.name),
          replicas: pool.count,
          cpus: pool.cpus,
          memoryGiB: pool.memoryGiB,
          diskGiB: pool.diskGiB,
          serviceName: args.serviceName,
          userDataSecret: userData.metadata.name,
          nodeSecretsSecret: args.nodeSecretsSecret,
        }),
      },
      child,
    );
    this.statefulSetName = set.metadata.name;
    this.registerOutputs({ statefulSetName: this.statefulSetName });
  }
}
