/** Shared types and helpers of the AWS components: the cluster context, tags, ARNs, the subnet layout. */
import { API_PORT, CLUSTER_TAG_KEY, apiDnsName, cidr, masterKey, type AwsClusterSpec } from "../spec";

/**
 * The Args every AWS component shares: the spec and extra tags. The cluster's `aws.Provider` is
 * not an Arg: it travels in the resource options (`{ provider }` on a component, inherited by
 * every child through `parent`), as with any Pulumi component.
 */
export interface AwsComponentArgs {
  /** The validated spec (parseClusterSpec). */
  readonly spec: AwsClusterSpec;
  /**
   * Extra tags on every resource, besides the provider's default tags (`g8s.io/cluster` and
   * spec.tags, set by AwsCluster on its provider). Default: none.
   */
  readonly tags?: Readonly<Record<string, string>>;
}

export type Tags = Record<string, string>;

/** Tags of a resource the provider tags itself: the extra tags plus `Name` (the cluster tag comes from defaultTags). */
export function tagsOf(ctx: AwsComponentArgs, name: string): Tags {
  return { ...ctx.tags, Name: name };
}

/**
 * Every tag of the cluster, spelled out, for what `defaultTags` does not reach: EC2 instances
 * and volumes launched by an auto scaling group (launch-template tag specifications, ASG tags).
 */
export function clusterTagsOf(ctx: AwsComponentArgs): Tags {
  return {
    [CLUSTER_TAG_KEY]: ctx.spec.id,
    ...ctx.spec.tags,
    ...ctx.tags,
    [kubernetesClusterTag(ctx.spec.id)]: "owned",
  };
}

/** The tag the Kubernetes AWS integrations use to find a cluster's subnets, instances and load balancers. */
export function kubernetesClusterTag(clusterId: string): string {
  return `kubernetes.io/cluster/${clusterId}`;
}

/** `https://api.<id>.<baseDomain>:6443`: the API endpoint of kubeconfigs and kubeadm. */
export function apiEndpointOf(spec: AwsClusterSpec): string {
  return `https://${apiDnsName(spec)}:${API_PORT}`;
}

/** The partition, region and account of an ARN, to build sibling ARNs (`arn:<partition>:<service>:<region>:<account>:…`). */
export function arnParts(arn: string): { partition: string; region: string; account: string } {
  const parts = arn.split(":");
  if (parts.length < 6 || parts[0] !== "arn") throw new Error(`internal: '${arn}' is not an ARN`);
  return { partition: parts[1], region: parts[3], account: parts[4] };
}

// ---------------------------------------------------------------------------------------------
// Subnet layout

/** Subnets are never smaller than this (spec rule vpcFitsSubnets guarantees two per AZ fit). */
const MIN_SUBNET_PREFIX = 24;
/** The VPC is split into 2^4 = 16 equal subnets when it is large enough: room for 6 AZs × 2 and spare. */
const LAYOUT_BITS = 4;

export interface ZoneSubnets {
  readonly private: string;
  readonly public: string;
}

/**
 * The subnets of availability zone slot `index` (0-based, the region's zones in name order).
 * The VPC is cut into 2^bits equal subnets, bits = min(4, 24 - vpcPrefix): private subnets take
 * the lower half (slot i → subnet i), public subnets the upper half (slot i → subnet half + i).
 * A /16 VPC gives /20 subnets (10.1.0.0/20 private, 10.1.128.0/20 public for slot 0). The layout
 * does not depend on the number of zones, so adding a zone never moves an existing subnet.
 */
export function zoneSubnets(vpcCidr: string, index: number): ZoneSubnets {
  const vpc = cidr.parseCidr(vpcCidr);
  if (typeof vpc === "string") throw new Error(`internal: unchecked VPC CIDR ${vpcCidr}: ${vpc}`);
  const bits = Math.min(LAYOUT_BITS, MIN_SUBNET_PREFIX - vpc.prefix);
  const half = 2 ** (bits - 1);
  if (index < 0 || index >= half) {
    throw new Error(`internal: ${vpcCidr} has room for ${half} availability zones, not zone #${index}`);
  }
  return {
    private: cidr.formatCidr(cidr.subnet(vpc, vpc.prefix + bits, index)),
    public: cidr.formatCidr(cidr.subnet(vpc, vpc.prefix + bits, half + index)),
  };
}

/** The zone slot of master slot `slot`: masters go round-robin over the zones. */
export function masterZoneIndex(spec: AwsClusterSpec, slot: number): number {
  return slot % spec.aws.availabilityZones;
}

/** First host offset of the masters' fixed addresses in their private subnet (AWS reserves .0–.3). */
const MASTER_ADDRESS_OFFSET = 10;

/**
 * The fixed private IP of master slot `slot` (its stable network interface): address
 * 10 + slot of its zone's private subnet. Pure, so the PKI can put it in the etcd certificates
 * before any resource exists. Keys are `master-<slot>`, the PKI's default master names.
 */
export function masterAddresses(spec: AwsClusterSpec): Record<string, string> {
  return Object.fromEntries(
    Array.from({ length: spec.masters.count }, (_, slot) => {
      const subnet = cidr.parseCidr(zoneSubnets(spec.aws.vpcCidr, masterZoneIndex(spec, slot)).private);
      if (typeof subnet === "string") throw new Error(`internal: ${subnet}`);
      return [masterKey(slot), cidr.nthAddress(subnet, MASTER_ADDRESS_OFFSET + slot)] as const;
    }),
  );
}

/** TCP health check of every g8s target group (API and ingress). */
export const TCP_HEALTH_CHECK = {
  protocol: "TCP",
  port: "traffic-port",
  interval: 10,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
} as const;
