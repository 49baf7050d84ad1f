/**
 * AwsCluster (`g8s:aws:Cluster`): everything a guest cluster needs on AWS, composed from the
 * components of this folder under one explicit `aws.Provider` (region from the spec,
 * `defaultTags` = `g8s.io/cluster: <id>` + spec.tags). It takes rendered user-data and the
 * node secrets as inputs; it renders nothing itself.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { CLUSTER_TAG_KEY, type AwsClusterSpec } from "../spec";
import { apiEndpointOf, masterAddresses } from "./common";
import { AwsControlPlane, type MasterRefs } from "./controlPlane";
import { AwsIngress } from "./ingress";
import { AwsNetwork } from "./network";
import { AwsNodePool } from "./nodePool";
import { createSecurityGroups } from "./securityGroups";
import { checkNodeSecrets, createSecretStore, type NodeSecrets, type SecretStore } from "./secrets";

/**
 * Rendered user-data per node group, from the bootstrap (GuestCluster wires it), as base64 of
 * the bytes EC2 receives (possibly gzip: bootstrap's `awsUserData` keeps them within 16 KB).
 */
export interface AwsUserData {
  /** Base64 user-data of master slot `slot` (0 … masters.count - 1); `refs` names its etcd volume and interface. */
  master(slot: number, refs: MasterRefs): pulumi.Input<string>;
  /** Base64 user-data of the pool named `poolName` (its labels and taints included). */
  pool(poolName: string): pulumi.Input<string>;
}

export interface AwsClusterArgs {
  /** The validated spec (parseClusterSpec) of an aws cluster. */
  readonly spec: AwsClusterSpec;
  /** Rendered user-data: references to secrets (SSM parameter names), never secret values. */
  readonly userData: AwsUserData;
  /**
   * Secret files for the nodes, per role: file name → content. Each becomes the SecureString
   * `/g8s/<id>/<role>/<file>` (see `parameterName`), readable only by that role's instances.
   */
  readonly nodeSecrets: NodeSecrets;
  /** Route53 hosted zone id of `spec.baseDomain`. Default: looked up by name (public zone). */
  readonly zoneId?: pulumi.Input<string>;
  /** AMI of every node. Default: DEFAULT_AWS_IMAGE (Ubuntu 24.04 LTS amd64, via Canonical's SSM parameter). */
  readonly imageId?: pulumi.Input<string>;
  /** Extra tags on every resource, besides `g8s.io/cluster` and spec.tags. Default: none. */
  readonly tags?: Readonly<Record<string, string>>;
}

/** What AwsCluster builds once the zone lookup has answered (its `initialize()` data). */
export interface AwsClusterData {
  /** Names of the zones in slot order. */
  readonly availabilityZones: string[];
  readonly network: AwsNetwork;
  readonly controlPlane: AwsControlPlane;
  readonly pools: Record<string, AwsNodePool>;
  readonly ingress?: AwsIngress;
}

/** What the constructor hands to `initialize()`: the Args and the children made before the lookup. */
interface Prepared {
  readonly name: string;
  readonly args: AwsClusterArgs;
  /** `{ parent, provider }` of the cluster's direct children. */
  readonly child: pulumi.CustomResourceOptions;
  readonly secrets: SecretStore;
  readonly zoneId: pulumi.Input<string>;
}

/** The provider's default tags: the cluster tag and the spec's tags. */
export function defaultTagsOf(spec: AwsClusterSpec): Record<string, string> {
  return { [CLUSTER_TAG_KEY]: spec.id, ...spec.tags };
}

/** Zones to use: the region's standard zones (no opt-in Local/Wavelength zones), by name. */
export async function lookupZoneNames(spec: AwsClusterSpec, opts: pulumi.InvokeOptions): Promise<string[]> {
  const zones = await aws.getAvailabilityZones(
    { state: "available", filters: [{ name: "opt-in-status", values: ["opt-in-not-required"] }] },
    opts,
  );
  return [...zones.names].sort().slice(0, spec.aws.availabilityZones);
}

export class AwsCluster extends pulumi.ComponentResource<AwsClusterData | undefined> {
  /** `https://api.<id>.<baseDomain>:6443`. Known before anything is created. */
  public readonly apiEndpoint: pulumi.Output<string>;
  /** Per master key (`master-<slot>`): its fixed private IP. Known before anything is created. */
  public readonly masterAddresses: Readonly<Record<string, string>>;
  public readonly apiLoadBalancerDnsName: pulumi.Output<string>;
  /** The ingress load balancer's DNS name; undefined without ingress. */
  public readonly ingressDnsName: pulumi.Output<string | undefined>;
  public readonly vpcId: pulumi.Output<string>;
  public readonly privateSubnetIds: pulumi.Output<string[]>;
  public readonly publicSubnetIds: pulumi.Output<string[]>;
  /** Names of the zones in slot order (looked up with aws.getAvailabilityZones). */
  public readonly availabilityZones: pulumi.Output<string[]>;
  public readonly provider: aws.Provider;
  /**
   * What carries PKI material to the nodes: every SSM parameter of node files. A certificate
   * renewal updates them and nothing else of the cluster.
   */
  public readonly pkiCarriers: readonly pulumi.Resource[];
  /** Set by the constructor for `initialize()`; undefined only if the constructor threw. */
  private prepared?: Prepared;

  constructor(name: string, args: AwsClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    // No Args to the base class: they would become the component's recorded inputs, and every
    // change of user-data would show as an update of the component.
    super("g8s:aws:Cluster", name, {}, opts);
    const { spec } = args;
    const problem = checkNodeSecrets(args.nodeSecrets);
    if (problem !== undefined) throw new pulumi.ResourceError(problem, this);

    this.provider = new aws.Provider(
      `${name}-provider`,
      { region: spec.aws.region as aws.Region, defaultTags: { tags: defaultTagsOf(spec) } },
      { parent: this },
    );
    // Direct children name the provider; theirs and the sub-components' inherit it through `parent`.
    const child = { parent: this, provider: this.provider };
    const secrets = createSecretStore(
      `${name}-secrets`,
      { spec, tags: args.tags, nodeSecrets: args.nodeSecrets },
      child,
    );
    const zoneId =
      args.zoneId ?? aws.route53.getZoneOutput({ name: spec.baseDomain, privateZone: false }, child).zoneId;
    this.prepared = { name, args, child, secrets, zoneId };
    this.pkiCarriers = Object.values(secrets.parameters).flatMap((byFile) => Object.values(byFile));

    const data = pulumi.output(this.getData()).apply((d) => {
      if (d === undefined) throw new Error("internal: AwsCluster was not initialized");
      return d;
    });
    this.apiEndpoint = pulumi.output(apiEndpointOf(spec));
    this.masterAddresses = masterAddresses(spec);
    this.apiLoadBalancerDnsName = data.apply((d) => d.controlPlane.apiLoadBalancerDnsName);
    this.ingressDnsName = data.apply((d) => pulumi.output(d.ingress?.loadBalancerDnsName));
    this.vpcId = data.apply((d) => d.network.vpcId);
    this.privateSubnetIds = data.apply((d) => d.network.privateSubnetIds);
    this.publicSubnetIds = data.apply((d) => d.network.publicSubnetIds);
    this.availabilityZones = data.apply((d) => d.availabilityZones);
    this.registerOutputs({
      apiEndpoint: this.apiEndpoint,
      apiLoadBalancerDnsName: this.apiLoadBalancerDnsName,
      ingressDnsName: this.ingressDnsName,
      vpcId: this.vpcId,
      privateSubnetIds: this.privateSubnetIds,
      publicSubnetIds: this.publicSubnetIds,
      availabilityZones: this.availabilityZones,
    });
  }

  /**
   * The children keyed by zone name, built once `aws.getAvailabilityZones` answers. The base
   * class calls this from its constructor, before AwsCluster's constructor body has run; the
   * first `await` resumes after the whole synchronous constructor, when `prepared` is set.
   */
  protected override async initialize(): Promise<AwsClusterData | undefined> {
    await Promise.resolve();
    const prepared = this.prepared;
    if (prepared === undefined) return undefined; // the constructor threw; the program stops with its error
    const { spec } = prepared.args;
    // AwsNetwork refuses zone names that do not match the spec, before it creates anything.
    const availabilityZoneNames = await lookupZoneNames(spec, prepared.child);
    return { availabilityZones: availabilityZoneNames, ...createZonalChildren(prepared, availabilityZoneNames) };
  }
}

/**
 * @internal Network, security groups, control plane, pools and ingress of the zones
 * `availabilityZoneNames`, under `prepared.child` (the cluster and its provider).
 */
export function createZonalChildren(
  { name, args, child, secrets, zoneId }: Prepared,
  availabilityZoneNames: readonly string[],
): Omit<AwsClusterData, "availabilityZones"> {
  const { spec } = args;
  const base = { spec, tags: args.tags };
  const network = new AwsNetwork(`${name}-net`, { ...base, availabilityZoneNames }, child);
  const groups = createSecurityGroups(name, { ...base, vpcId: network.vpcId }, { parent: network });
  const controlPlane = new AwsControlPlane(
    `${name}-cp`,
    {
      ...base,
      vpcId: network.vpcId,
      zones: network.zones,
      mastersSecurityGroupId: groups.masters.id,
      apiLoadBalancerSecurityGroupId: groups.apiLb.id,
      secrets,
      zoneId,
      userData: (slot, refs) => args.userData.master(slot, refs),
      imageId: args.imageId,
    },
    child,
  );
  const privateSubnetIds = network.zones.map((z) => z.privateSubnetId);
  const pools = Object.fromEntries(
    spec.nodePools.map((pool) => [
      pool.name,
      // Keyed by pool name: reordering spec.nodePools renames nothing.
      new AwsNodePool(
        `${name}-pool-${pool.name}`,
        {
          ...base,
          pool,
          privateSubnetIds,
          workersSecurityGroupId: groups.workers.id,
          secrets,
          userData: args.userData.pool(pool.name),
          imageId: args.imageId,
        },
        child,
      ),
    ]),
  );
  let ingress: AwsIngress | undefined;
  if (spec.ingress.enabled) {
    const ingressGroup = groups.ingressLb;
    if (ingressGroup === undefined) throw new Error("internal: ingress without its security group");
    ingress = new AwsIngress(
      `${name}-ingress`,
      {
        ...base,
        vpcId: network.vpcId,
        publicSubnetIds: network.zones.map((z) => z.publicSubnetId),
        securityGroupId: ingressGroup.id,
        autoScalingGroupNames: Object.fromEntries(
          Object.entries(pools).map(([pool, p]) => [pool, p.autoScalingGroupName]),
        ),
        zoneId,
      },
      child,
    );
  }
  return { network, controlPlane, pools, ingress };
}
