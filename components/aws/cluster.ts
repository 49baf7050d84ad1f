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
import { ControlPlane, type MasterRefs } from "./controlPlane";
import { Ingress } from "./ingress";
import { Network, checkZoneNames } from "./network";
import { NodePool } from "./nodePool";
import { createSecurityGroups } from "./securityGroups";
import { checkNodeSecrets, createSecretStore, type NodeSecrets } from "./secrets";

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

/** What the composed components produce, once the zones are known. */
interface Built {
  readonly network: Network;
  readonly controlPlane: ControlPlane;
  readonly pools: Record<string, NodePool>;
  readonly ingress?: Ingress;
}

/** The provider's default tags: the cluster tag and the spec's tags. */
export function defaultTagsOf(spec: AwsClusterSpec): Record<string, string> {
  return { [CLUSTER_TAG_KEY]: spec.id, ...spec.tags };
}

/** Zones to use: the region's standard zones (no opt-in Local/Wavelength zones), by name. */
export async function lookupZoneNames(
  spec: AwsClusterSpec,
  parent: pulumi.Resource,
  provider: aws.Provider,
): Promise<string[]> {
  const zones = await aws.getAvailabilityZones(
    { state: "available", filters: [{ name: "opt-in-status", values: ["opt-in-not-required"] }] },
    { parent, provider },
  );
  return [...zones.names].sort().slice(0, spec.aws.availabilityZones);
}

export class AwsCluster extends pulumi.ComponentResource {
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

  constructor(name: string, args: AwsClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("g8s:aws:Cluster", name, {}, opts);
    const { spec } = args;
    const problem = checkNodeSecrets(args.nodeSecrets);
    if (problem !== undefined) throw new pulumi.ResourceError(problem, this);

    this.provider = new aws.Provider(
      `${name}-provider`,
      { region: spec.aws.region as aws.Region, defaultTags: { tags: defaultTagsOf(spec) } },
      { parent: this },
    );
    const provider = this.provider;
    const base = { spec, tags: args.tags };
    const secrets = createSecretStore(`${name}-secrets`, { ...base, nodeSecrets: args.nodeSecrets }, this, provider);
    const zoneId =
      args.zoneId ??
      aws.route53.getZoneOutput({ name: spec.baseDomain, privateZone: false }, { parent: this, provider }).zoneId;

    // Children are keyed by zone name, known only from the data source: build the rest once it answers.
    const zoneNames = lookupZoneNames(spec, this, provider);
    const built: Promise<Built> = zoneNames.then((availabilityZoneNames) => {
      const problem = checkZoneNames({ ...base, provider, availabilityZoneNames });
      if (problem !== undefined) throw new pulumi.ResourceError(problem, this);
      const network = new Network(`${name}-net`, { ...base, provider, availabilityZoneNames }, { parent: this });
      const groups = createSecurityGroups(`${name}`, { ...base, vpcId: network.vpcId }, network, provider);
      const controlPlane = new ControlPlane(
        `${name}-cp`,
        {
          ...base,
          provider,
          vpcId: network.vpcId,
          zones: network.zones,
          mastersSecurityGroupId: groups.masters.id,
          apiLoadBalancerSecurityGroupId: groups.apiLb.id,
          secrets,
          zoneId,
          userData: (slot, refs) => args.userData.master(slot, refs),
          imageId: args.imageId,
        },
        { parent: this },
      );
      const privateSubnetIds = network.zones.map((z) => z.privateSubnetId);
      const pools = Object.fromEntries(
        spec.nodePools.map((pool) => [
          pool.name,
          // Keyed by pool name: reordering spec.nodePools renames nothing.
          new NodePool(
            `${name}-pool-${pool.name}`,
            {
              ...base,
              provider,
              pool,
              privateSubnetIds,
              workersSecurityGroupId: groups.workers.id,
              secrets,
              userData: args.userData.pool(pool.name),
              imageId: args.imageId,
            },
            { parent: this },
          ),
        ]),
      );
      let ingress: Ingress | undefined;
      if (spec.ingress.enabled) {
        const ingressGroup = groups.ingressLb;
        if (ingressGroup === undefined) throw new Error("internal: ingress without its security group");
        ingress = new Ingress(
          `${name}-ingress`,
          {
            ...base,
            provider,
            vpcId: network.vpcId,
            publicSubnetIds: network.zones.map((z) => z.publicSubnetId),
            securityGroupId: ingressGroup.id,
            autoScalingGroupNames: Object.fromEntries(
              Object.entries(pools).map(([pool, p]) => [pool, p.autoScalingGroupName]),
            ),
            zoneId,
          },
          { parent: this },
        );
      }
      return { network, controlPlane, pools, ingress };
    });

    const from = <T>(pick: (b: Built) => pulumi.Input<T>): pulumi.Output<T> =>
      pulumi.output(built).apply((b) => pick(b)) as pulumi.Output<T>;
    this.apiEndpoint = pulumi.output(apiEndpointOf(spec));
    this.masterAddresses = masterAddresses(spec);
    this.apiLoadBalancerDnsName = from((b) => b.controlPlane.apiLoadBalancerDnsName);
    this.ingressDnsName = from<string | undefined>((b) => b.ingress?.loadBalancerDnsName);
    this.vpcId = from((b) => b.network.vpcId);
    this.privateSubnetIds = from((b) => b.network.privateSubnetIds);
    this.publicSubnetIds = from((b) => b.network.publicSubnetIds);
    this.availabilityZones = pulumi.output(zoneNames);
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
}
