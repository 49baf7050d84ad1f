/**
 * AwsNetwork (`g8s:aws:Network`): the VPC of a guest cluster across its availability zones, a
 * public and a private subnet per zone (layout: common.ts `zoneSubnets`), the internet gateway,
 * NAT gateways (one per zone or a single one), route tables and an S3 gateway endpoint.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { kubernetesClusterTag, tagsOf, zoneSubnets, type AwsComponentArgs } from "./common";

export interface AwsNetworkArgs extends AwsComponentArgs {
  /**
   * Names of the availability zones to use, in slot order (slot i gets the i-th subnets of the
   * layout). Exactly `spec.aws.availabilityZones` of them; AwsCluster looks them up with
   * `aws.getAvailabilityZones`. Children are keyed by zone name.
   */
  readonly availabilityZoneNames: readonly string[];
}

/** One zone's subnets, as the other components consume them. */
export interface ZoneNetwork {
  readonly zone: string;
  readonly privateSubnetId: pulumi.Output<string>;
  readonly publicSubnetId: pulumi.Output<string>;
  readonly privateCidr: string;
  readonly publicCidr: string;
}

export interface NetworkResult {
  readonly vpc: aws.ec2.Vpc;
  /** Per zone slot, in slot order. */
  readonly zones: ZoneNetwork[];
  readonly natGateways: aws.ec2.NatGateway[];
  readonly privateRouteTables: aws.ec2.RouteTable[];
}

/** Checks the zone names against the spec before anything is created. */
export function checkZoneNames(args: AwsNetworkArgs): string | undefined {
  const wanted = args.spec.aws.availabilityZones;
  const names = args.availabilityZoneNames;
  if (names.length !== wanted) {
    return (
      `aws.availabilityZones is ${wanted} but region ${args.spec.aws.region} offers ${names.length} usable zone(s)` +
      (names.length > 0 ? ` (${names.join(", ")})` : "") +
      `: set aws.availabilityZones to at most ${names.length}`
    );
  }
  if (new Set(names).size !== names.length) return `availability zone names must be unique (got ${names.join(", ")})`;
  return undefined;
}

/** @internal */
export function createNetwork(name: string, args: AwsNetworkArgs, opts: pulumi.CustomResourceOptions): NetworkResult {
  const { spec } = args;
  const clusterTag = kubernetesClusterTag(spec.id);
  const vpc = new aws.ec2.Vpc(
    `${name}-vpc`,
    {
      cidrBlock: spec.aws.vpcCidr,
      enableDnsSupport: true,
      enableDnsHostnames: true,
      tags: tagsOf(args, `${name}-vpc`),
    },
    opts,
  );
  const inVpc = { parent: vpc };

  const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: tagsOf(args, `${name}-igw`) }, inVpc);

  const publicRouteTable = new aws.ec2.RouteTable(
    `${name}-rt-public`,
    { vpcId: vpc.id, tags: tagsOf(args, `${name}-rt-public`) },
    inVpc,
  );
  new aws.ec2.Route(
    `${name}-route-public-internet`,
    { routeTableId: publicRouteTable.id, destinationCidrBlock: "0.0.0.0/0", gatewayId: igw.id },
    { parent: publicRouteTable },
  );

  const zones: ZoneNetwork[] = [];
  const publicSubnets: aws.ec2.Subnet[] = [];
  args.availabilityZoneNames.forEach((zone, index) => {
    const cidrs = zoneSubnets(spec.aws.vpcCidr, index);
    // Names are keyed by zone name: renaming one would replace the subnet and everything in it.
    const privateName = `${name}-subnet-private-${zone}`;
    const publicName = `${name}-subnet-public-${zone}`;
    const privateSubnet = new aws.ec2.Subnet(
      privateName,
      {
        vpcId: vpc.id,
        availabilityZone: zone,
        cidrBlock: cidrs.private,
        mapPublicIpOnLaunch: false,
        tags: { ...tagsOf(args, privateName), "kubernetes.io/role/internal-elb": "1", [clusterTag]: "owned" },
      },
      inVpc,
    );
    const publicSubnet = new aws.ec2.Subnet(
      publicName,
      {
        vpcId: vpc.id,
        availabilityZone: zone,
        cidrBlock: cidrs.public,
        mapPublicIpOnLaunch: false,
        tags: { ...tagsOf(args, publicName), "kubernetes.io/role/elb": "1", [clusterTag]: "owned" },
      },
      inVpc,
    );
    new aws.ec2.RouteTableAssociation(
      `${name}-rta-public-${zone}`,
      { subnetId: publicSubnet.id, routeTableId: publicRouteTable.id },
      { parent: publicSubnet },
    );
    publicSubnets.push(publicSubnet);
    zones.push({
      zone,
      privateSubnetId: privateSubnet.id,
      publicSubnetId: publicSubnet.id,
      privateCidr: cidrs.private,
      publicCidr: cidrs.public,
    });
  });

  // NAT: one per zone (a zone outage leaves the others online) or a single one in the first zone.
  const natZones = spec.aws.natGateways === "perAz" ? zones : zones.slice(0, 1);
  const natGateways = natZones.map((z, index) => {
    const eip = new aws.ec2.Eip(
      `${name}-eip-nat-${z.zone}`,
      { domain: "vpc", tags: tagsOf(args, `${name}-eip-nat-${z.zone}`) },
      inVpc,
    );
    return new aws.ec2.NatGateway(
      `${name}-nat-${z.zone}`,
      {
        allocationId: eip.id,
        subnetId: publicSubnets[index].id,
        connectivityType: "public",
        tags: tagsOf(args, `${name}-nat-${z.zone}`),
      },
      { parent: vpc, dependsOn: [igw] },
    );
  });

  // A private route table per zone in both NAT modes, so switching modes changes routes only.
  const privateRouteTables = zones.map((z, index) => {
    const table = new aws.ec2.RouteTable(
      `${name}-rt-private-${z.zone}`,
      { vpcId: vpc.id, tags: tagsOf(args, `${name}-rt-private-${z.zone}`) },
      inVpc,
    );
    const nat = natGateways[spec.aws.natGateways === "perAz" ? index : 0];
    new aws.ec2.Route(
      `${name}-route-private-${z.zone}-nat`,
      { routeTableId: table.id, destinationCidrBlock: "0.0.0.0/0", natGatewayId: nat.id },
      { parent: table },
    );
    new aws.ec2.RouteTableAssociation(
      `${name}-rta-private-${z.zone}`,
      { subnetId: z.privateSubnetId, routeTableId: table.id },
      { parent: table },
    );
    return table;
  });

  // S3 through a gateway endpoint: no NAT charges for images and backups, no internet path.
  new aws.ec2.VpcEndpoint(
    `${name}-vpce-s3`,
    {
      vpcId: vpc.id,
      serviceName: `com.amazonaws.${spec.aws.region}.s3`,
      vpcEndpointType: "Gateway",
      routeTableIds: privateRouteTables.map((t) => t.id),
      tags: tagsOf(args, `${name}-vpce-s3`),
    },
    inVpc,
  );

  return { vpc, zones, natGateways, privateRouteTables };
}

export class AwsNetwork extends pulumi.ComponentResource {
  public readonly vpcId: pulumi.Output<string>;
  public readonly privateSubnetIds: pulumi.Output<string[]>;
  public readonly publicSubnetIds: pulumi.Output<string[]>;
  /** Per zone slot: zone name, subnet ids and CIDRs. */
  public readonly zones: ZoneNetwork[];
  /** @internal */
  public readonly result: NetworkResult;

  constructor(name: string, args: AwsNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("g8s:aws:Network", name, {}, opts);
    const problem = checkZoneNames(args);
    if (problem !== undefined) throw new pulumi.ResourceError(problem, this);
    this.result = createNetwork(name, args, { parent: this });
    this.zones = this.result.zones;
    this.vpcId = this.result.vpc.id;
    this.privateSubnetIds = pulumi.all(this.zones.map((z) => z.privateSubnetId));
    this.publicSubnetIds = pulumi.all(this.zones.map((z) => z.publicSubnetId));
    this.registerOutputs({
      vpcId: this.vpcId,
      privateSubnetIds: this.privateSubnetIds,
      publicSubnetIds: this.publicSubnetIds,
    });
  }
}
