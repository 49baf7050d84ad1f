/**
 * KvmCluster (`g8s:kvm:Cluster`): the KVM operator's job as a component. A guest cluster's
 * nodes as QEMU pods on a host Kubernetes cluster: namespace, masters, node pools, Services,
 * NetworkPolicies and an optional API Ingress, all through one host-cluster provider.
 * It takes rendered user-data and node files; it renders neither.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { KvmClusterSpec } from "../spec";
import { KvmControlPlane, createNodeSecrets } from "./controlPlane";
import {
  K8S_NAMES,
  apiServiceNames,
  checkNodeSecretNames,
  clusterLabels,
  kvmApiEndpoint,
  kvmNamespace,
  type KvmApiIngressArgs,
} from "./naming";
import {
  SSL_PASSTHROUGH_ANNOTATIONS,
  apiIngressSpec,
  ingressServiceSpec,
  networkPolicySpecs,
  workersServiceSpec,
} from "./network";
import { KvmNodePool } from "./nodePool";

/** Rendered cloud-init user-data per node; references only by contract, stored as Secrets anyway. */
export interface KvmUserData {
  /**
   * The user-data of master slot `slot` (0 … masters.count - 1; pod `master-<slot>`), given its
   * Service address (what the master advertises; see KvmCluster.masterAddresses).
   */
  master(slot: number, serviceAddress: pulumi.Output<string>): pulumi.Input<string>;
  /** The user-data of every node of pool `poolName`. */
  pool(poolName: string): pulumi.Input<string>;
}

/** Certificate and key files per role: file name (a Secret key, no '/') → content. */
export interface KvmNodeSecrets {
  /** Shared into every master VM (all masters' etcd certificates included; each picks its own). */
  readonly master: Readonly<Record<string, pulumi.Input<string>>>;
  /** Shared into every worker VM of every pool. */
  readonly worker: Readonly<Record<string, pulumi.Input<string>>>;
}

export interface KvmClusterArgs {
  /** The validated spec (parseClusterSpec, provider `kvm`). */
  readonly spec: KvmClusterSpec;
  /** kubeconfig of the host cluster (secret; index.ts passes `g8s:hostKubeconfig`). Default: the ambient kubeconfig. */
  readonly hostKubeconfig?: pulumi.Input<string>;
  /** Rendered user-data of each master slot and each pool. */
  readonly userData: KvmUserData;
  /** Certificates and keys of masters and workers; updated in place, they reach running VMs without a restart. */
  readonly nodeSecrets: KvmNodeSecrets;
  /** A host Ingress `api.<id>.<baseDomain>` with TLS passthrough (ingress-nginx). Default: none. */
  readonly apiIngress?: KvmApiIngressArgs;
}

/** Checks what the spec schema cannot: the kind of spec and the node file names. */
export function checkKvmClusterArgs(args: KvmClusterArgs): string | undefined {
  if ((args.spec as { provider: string }).provider !== "kvm") {
    return `KvmCluster needs a spec with provider 'kvm' (got '${(args.spec as { provider: string }).provider}')`;
  }
  return (
    checkNodeSecretNames("master", Object.keys(args.nodeSecrets.master)) ??
    checkNodeSecretNames("worker", Object.keys(args.nodeSecrets.worker))
  );
}

export class KvmCluster extends pulumi.ComponentResource {
  /** The guest's namespace on the host cluster, `<namespacePrefix><id>`. */
  public readonly namespace: pulumi.Output<string>;
  /** The API endpoint (`kvmApiEndpoint`): the Ingress host, else `https://api.<namespace>.svc:6443`. */
  public readonly apiEndpoint: pulumi.Output<string>;
  /** The API Service's load-balancer hostname or IP (apiService LoadBalancer, once assigned). */
  public readonly apiLoadBalancerAddress: pulumi.Output<string | undefined>;
  /** The host-cluster provider every child uses. */
  public readonly hostProvider: k8s.Provider;
  /** Each master's stable address (its Service's ClusterIP), slot order: for the API and etcd certificates. */
  public readonly masterAddresses: pulumi.Output<string>[];
  /**
   * What carries PKI material to the nodes: the masters' and workers' node-file Secrets. A
   * certificate renewal updates them and nothing else of the cluster.
   */
  public readonly pkiCarriers: readonly pulumi.Resource[];

  constructor(name: string, args: KvmClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("g8s:kvm:Cluster", name, {}, { ...opts, transformations: [...(opts?.transformations ?? []), forcePatch] });
    const problem = checkKvmClusterArgs(args);
    if (problem !== undefined) throw new pulumi.ResourceError(problem, this);
    const { spec } = args;

    const provider = createHostProvider(name, args.hostKubeconfig, this);
    // Direct children name the provider; the sub-components' children inherit it through `parent`.
    const child = { parent: this, provider };
    const ns = createNamespace(name, spec, child);
    const namespace = ns.metadata.name;

    createNetworkPolicies(name, spec, namespace, child);
    const controlPlane = new KvmControlPlane(
      `${name}-master`,
      {
        spec,
        namespace,
        userData: (slot, address) => args.userData.master(slot, address),
        nodeSecrets: args.nodeSecrets.master,
      },
      child,
    );

    const workerSecrets = createNodeSecrets(
      `${name}-worker-secrets`,
      K8S_NAMES.workerSecrets,
      spec,
      namespace,
      args.nodeSecrets.worker,
      child,
    );
    const workers = new k8s.core.v1.Service(
      `${name}-workers`,
      { metadata: { name: K8S_NAMES.workers, namespace, labels: clusterLabels(spec) }, spec: workersServiceSpec(spec) },
      child,
    );
    for (const pool of spec.nodePools) {
      // Keyed by pool name: reordering nodePools changes nothing.
      new KvmNodePool(
        `${name}-pool-${pool.name}`,
        {
          spec,
          pool,
          namespace,
          userData: args.userData.pool(pool.name),
          nodeSecretsSecret: workerSecrets.metadata.name,
          serviceName: workers.metadata.name,
        },
        child,
      );
    }
    if (spec.ingress.enabled) {
      new k8s.core.v1.Service(
        `${name}-ingress`,
        {
          metadata: { name: K8S_NAMES.ingress, namespace, labels: clusterLabels(spec) },
          spec: ingressServiceSpec(spec),
        },
        child,
      );
    }
    if (args.apiIngress !== undefined) {
      // The Ingress routes to the API Service by name: create it after the control plane.
      createApiIngress(name, spec, namespace, args.apiIngress, { ...child, dependsOn: [controlPlane] });
    }

    this.hostProvider = provider;
    this.masterAddresses = controlPlane.masterAddresses;
    this.pkiCarriers = [controlPlane.nodeSecrets, workerSecrets];
    this.namespace = namespace;
    const endpoint = kvmApiEndpoint(spec, args.apiIngress);
    this.apiEndpoint = controlPlane.apiServiceName.apply(() => endpoint);
    this.apiLoadBalancerAddress = controlPlane.apiLoadBalancerAddress;
    this.registerOutputs({
      namespace: this.namespace,
      apiEndpoint: this.apiEndpoint,
      apiLoadBalancerAddress: this.apiLoadBalancerAddress,
    });
  }
}

/** DNS names GuestCluster adds to the API certificate's SANs (`ClusterPki` `apiNames`). */
export function kvmApiNames(spec: KvmClusterSpec): string[] {
  return apiServiceNames(spec);
}

/**
 * The host cluster's provider, `${name}-host`: from the kubeconfig (kept secret) when given,
 * else the ambient kubeconfig (KUBECONFIG, ~/.kube/config, in-cluster).
 * @internal
 */
export function createHostProvider(
  name: string,
  kubeconfig: pulumi.Input<string> | undefined,
  parent: pulumi.Resource,
): k8s.Provider {
  return new k8s.Provider(
    `${name}-host`,
    {
      // Secrets are updated in place, never replaced: a renewed certificate reaches the running VM
      // through the mounted Secret, and a replaced Secret would make its StatefulSet's inputs
      // unknown and replace the StatefulSet too (every VM restarted).
      enableSecretMutable: true,
      ...(kubeconfig === undefined ? {} : { kubeconfig: pulumi.secret(kubeconfig) }),
    },
    { parent },
  );
}

/** The annotation that makes the Kubernetes provider apply an object with force. */
export const PATCH_FORCE_ANNOTATION = "pulumi.com/patchForce";

/**
 * g8s owns every host object it creates: Server-Side Apply with force takes fields back from
 * other field managers (`kubectl scale`, `kubectl set image`, `kubectl edit`), so drift
 * correction never stops on a field conflict. An annotation on each object rather than the
 * provider's environment, so a by-hand `pulumi up -s <stack>` does the same (the pinned
 * provider has no provider argument for it). Applied to every Kubernetes object of the component.
 * @internal
 */
export function forcePatch(args: pulumi.ResourceTransformationArgs): pulumi.ResourceTransformationResult | undefined {
  if (!args.type.startsWith("kubernetes:")) return undefined;
  const metadata = (args.props.metadata ?? {}) as Record<string, unknown>;
  const annotations = { ...((metadata.annotations as Record<string, string> | undefined) ?? {}) };
  annotations[PATCH_FORCE_ANNOTATION] = "true";
  return { props: { ...args.props, metadata: { ...metadata, annotations } }, opts: args.opts };
}

/**
 * The guest's namespace. Pod security level `privileged`: the QEMU container adds NET_ADMIN,
 * which the baseline level forbids.
 * @internal
 */
export function createNamespace(
  name: string,
  spec: KvmClusterSpec,
  opts: pulumi.CustomResourceOptions,
): k8s.core.v1.Namespace {
  return new k8s.core.v1.Namespace(
    `${name}-namespace`,
    {
      metadata: {
        name: kvmNamespace(spec),
        labels: { ...clusterLabels(spec), "pod-security.kubernetes.io/enforce": "privileged" },
      },
    },
    // Deleting it deletes every node, disk and Secret of the cluster: only a confirmed
    // g8s:decommission lifts this (the reconciler unprotects, then destroys).
    { ...opts, protect: true },
  );
}

/** @internal */
export function createNetworkPolicies(
  name: string,
  spec: KvmClusterSpec,
  namespace: pulumi.Input<string>,
  opts: pulumi.CustomResourceOptions,
): k8s.networking.v1.NetworkPolicy[] {
  return Object.entries(networkPolicySpecs(spec)).map(
    ([key, policySpec]) =>
      new k8s.networking.v1.NetworkPolicy(
        `${name}-netpol-${key}`,
        { metadata: { name: key, namespace, labels: clusterLabels(spec) }, spec: policySpec },
        opts,
      ),
  );
}

/** @internal */
export function createApiIngress(
  name: string,
  spec: KvmClusterSpec,
  namespace: pulumi.Input<string>,
  apiIngress: KvmApiIngressArgs,
  opts: pulumi.CustomResourceOptions,
): k8s.networking.v1.Ingress {
  return new k8s.networking.v1.Ingress(
    `${name}-api-ingress`,
    {
      metadata: {
        name: K8S_NAMES.api,
        namespace,
        labels: clusterLabels(spec),
        annotations: { ...SSL_PASSTHROUGH_ANNOTATIONS },
      },
      spec: apiIngressSpec(spec, apiIngress.className),
    },
    opts,
  );
}
