/**
 * AwsControlPlane (`g8s:aws:ControlPlane`): the masters, one per master slot, round-robin over
 * the zones' private subnets. Self-healing: each slot is an auto scaling group of exactly one
 * instance; what must survive the instance — its fixed private IP (a network interface) and
 * its etcd data (an encrypted gp3 volume, `protect: true`) — are separate resources in the
 * slot's zone that the bootstrap attaches at boot. An NLB forwards 6443 to the slots' fixed IPs;
 * Route53 `api.<id>.<baseDomain>` points at it.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  arnParts,
  clusterTagsOf,
  masterAddresses,
  masterZoneIndex,
  tagsOf,
  type AwsComponentArgs,
  TCP_HEALTH_CHECK,
} from "./common";
import { createEtcdBackupBucket, etcdBackupPolicy } from "./etcdBackups";
import { addRolePolicy, createNodeRole, instanceHealthPolicy, secretsPolicy, type PolicyDocument } from "./iam";
import { asgTags, createLaunchTemplate, latestVersionOf } from "./launch";
import type { ZoneNetwork } from "./network";
import type { SecretStore } from "./secrets";
import {
  API_PORT,
  CLUSTER_TAG_KEY,
  DEFAULT_AWS_ROOT_VOLUME_GIB,
  LOAD_BALANCER_TAG,
  MASTER_SLOT_TAG,
  apiDnsName,
  masterKey,
} from "../spec";

/** Instance/volume tags naming what the bootstrap attaches (also given to `userData` as MasterRefs). */
export const ETCD_VOLUME_TAG = "g8s.io/etcd-volume";
export const NETWORK_INTERFACE_TAG = "g8s.io/network-interface";
/** Device name the bootstrap attaches the etcd volume as (Nitro instances expose it as NVMe). */
export const ETCD_DEVICE_NAME = "/dev/sdf";
/** Device index of the stable network interface (the primary interface is index 0). */
export const NETWORK_INTERFACE_DEVICE_INDEX = 1;

/** What a master's user-data needs to attach its slot's stable parts; all references, no secrets. */
export interface MasterRefs {
  readonly slot: number;
  /** `master-<slot>`: the PKI's master name. */
  readonly key: string;
  readonly zone: string;
  /** The fixed private IP (of the stable network interface): the node IP, etcd peer/client address. */
  readonly privateIp: string;
  readonly etcdVolumeId: pulumi.Output<string>;
  readonly etcdDeviceName: string;
  readonly networkInterfaceId: pulumi.Output<string>;
  readonly networkInterfaceDeviceIndex: number;
}

export interface AwsControlPlaneArgs extends AwsComponentArgs {
  readonly vpcId: pulumi.Input<string>;
  /** The network's zones in slot order (AwsNetwork.zones). */
  readonly zones: readonly ZoneNetwork[];
  readonly mastersSecurityGroupId: pulumi.Input<string>;
  readonly apiLoadBalancerSecurityGroupId: pulumi.Input<string>;
  readonly secrets: SecretStore;
  /** Route53 hosted zone of `baseDomain`. */
  readonly zoneId: pulumi.Input<string>;
  /** Rendered user-data of master slot `slot` (references only, never secret values). */
  readonly userData: (slot: number, refs: MasterRefs) => pulumi.Input<string>;
  /** AMI of the masters. Default: DEFAULT_AWS_IMAGE (Ubuntu 24.04 via SSM). */
  readonly imageId?: pulumi.Input<string>;
}

export interface MasterSlot {
  readonly refs: MasterRefs;
  readonly volume: aws.ebs.Volume;
  readonly networkInterface: aws.ec2.NetworkInterface;
  readonly launchTemplate: aws.ec2.LaunchTemplate;
  readonly group: aws.autoscaling.Group;
}

export interface ControlPlaneResult {
  readonly masters: MasterSlot[];
  readonly loadBalancer: aws.lb.LoadBalancer;
  readonly record: aws.route53.Record;
}

/** Attach the cluster's own etcd volumes and network interfaces to the cluster's own instances. */
export function masterAttachPolicy(
  clusterId: string,
  keyArn: pulumi.Input<string>,
  volumeArns: pulumi.Input<string>[],
  interfaceArns: pulumi.Input<string>[],
): pulumi.Output<PolicyDocument> {
  return pulumi.all([keyArn, pulumi.all(volumeArns), pulumi.all(interfaceArns)]).apply(([key, volumes, enis]) => {
    const { partition, region, account } = arnParts(key);
    const instances = `arn:${partition}:ec2:${region}:${account}:instance/*`;
    const ownCluster = { StringEquals: { [`aws:ResourceTag/${CLUSTER_TAG_KEY}`]: clusterId } };
    return {
      Version: "2012-10-17" as const,
      Statement: [
        {
          Sid: "AttachOwnEtcdVolumes",
          Effect: "Allow" as const,
          Action: ["ec2:AttachVolume"],
          Resource: [...volumes, instances],
          Condition: ownCluster,
        },
        {
          Sid: "AttachOwnNetworkInterfaces",
          Effect: "Allow" as const,
          Action: ["ec2:AttachNetworkInterface"],
          Resource: [...enis, instances],
          Condition: ownCluster,
        },
        {
          Sid: "DescribeAttachments",
          Effect: "Allow" as const,
          Action: ["ec2:DescribeVolumes", "ec2:DescribeNetworkInterfaces"],
          // "*" is required: EC2 Describe* actions support no resource-level permissions.
          Resource: "*",
        },
      ],
    };
  });
}

/** @internal */
export function createControlPlane(
  name: string,
  args: AwsControlPlaneArgs,
  opts: pulumi.CustomResourceOptions,
): ControlPlaneResult {
  const { spec } = args;
  const addresses = masterAddresses(spec);

  // Stable parts first: they are what the role's policy names and the user-data references.
  const stable = Array.from({ length: spec.masters.count }, (_, slot) => {
    const key = masterKey(slot);
    const zone = args.zones[masterZoneIndex(spec, slot)];
    const slotTags = { [MASTER_SLOT_TAG]: String(slot) };
    // Never rename: the name is the volume's identity, and it holds etcd's data.
    const volume = new aws.ebs.Volume(
      `${name}-etcd-${key}`,
      {
        availabilityZone: zone.zone,
        size: spec.masters.etcdVolumeGiB,
        type: "gp3",
        encrypted: true,
        tags: { ...tagsOf(args, `${name}-etcd-${key}`), ...slotTags },
      },
      { ...opts, protect: true },
    );
    const networkInterface = new aws.ec2.NetworkInterface(
      `${name}-eni-${key}`,
      {
        subnetId: zone.privateSubnetId,
        privateIps: [addresses[key]],
        securityGroups: [args.mastersSecurityGroupId],
        description: `g8s ${spec.id}: stable address of ${key}`,
        tags: { ...tagsOf(args, `${name}-eni-${key}`), ...slotTags },
      },
      opts,
    );
    const refs: MasterRefs = {
      slot,
      key,
      zone: zone.zone,
      privateIp: addresses[key],
      etcdVolumeId: volume.id,
      etcdDeviceName: ETCD_DEVICE_NAME,
      networkInterfaceId: networkInterface.id,
      networkInterfaceDeviceIndex: NETWORK_INTERFACE_DEVICE_INDEX,
    };
    return { refs, zone, volume, networkInterface };
  });

  const identity = createNodeRole(
    `${name}-master`,
    {
      spec,
      tags: args.tags,
      description: `g8s ${spec.id}: masters`,
      policies: {
        secrets: secretsPolicy("master", args.secrets),
        attach: masterAttachPolicy(
          spec.id,
          args.secrets.key.arn,
          stable.map((s) => s.volume.arn),
          stable.map((s) => s.networkInterface.arn),
        ),
      },
    },
    opts,
  );

  const masters = stable.map(({ refs, zone, volume, networkInterface }) => {
    const instanceName = `${name}-${refs.key}`;
    const launchTemplate = createLaunchTemplate(
      `${name}-lt-${refs.key}`,
      {
        spec,
        tags: args.tags,
        imageId: args.imageId,
        instanceType: spec.masters.instanceType,
        userData: args.userData(refs.slot, refs),
        instanceProfileArn: identity.profile.arn,
        securityGroupIds: [args.mastersSecurityGroupId],
        rootVolumeGiB: DEFAULT_AWS_ROOT_VOLUME_GIB,
        instanceTags: {
          Name: instanceName,
          [MASTER_SLOT_TAG]: String(refs.slot),
          [ETCD_VOLUME_TAG]: volume.id,
          [NETWORK_INTERFACE_TAG]: networkInterface.id,
        },
      },
      opts,
    );
    // One instance per slot, in the slot's zone (its volume and interface are zonal). No
    // instance refresh: replacing masters is one at a time, never three ASGs at once.
    const group = new aws.autoscaling.Group(
      `${name}-asg-${refs.key}`,
      {
        minSize: 1,
        maxSize: 1,
        desiredCapacity: 1,
        vpcZoneIdentifiers: [zone.privateSubnetId],
        launchTemplate: latestVersionOf(launchTemplate),
        // EC2: the group has no target group to take ELB checks from (the API targets the slot's
        // fixed IP, not the instance). A master whose bootstrap failed reports itself.
        healthCheckType: "EC2",
        healthCheckGracePeriod: 300,
        tags: asgTags({ ...clusterTagsOf(args), Name: instanceName, [MASTER_SLOT_TAG]: String(refs.slot) }, false),
      },
      opts,
    );
    return { refs, volume, networkInterface, launchTemplate, group };
  });
  addRolePolicy(`${name}-master`, identity.role, "health", instanceHealthPolicy(masters.map((m) => m.group.arn)));
  // The snapshots' copies off the etcd volumes (etcd.backup.objectStore).
  const etcdBackups = createEtcdBackupBucket(name, args, args.secrets.key.arn, opts);
  if (etcdBackups !== undefined) {
    addRolePolicy(
      `${name}-master`,
      identity.role,
      "etcd-backups",
      etcdBackups.bucketArn.apply((arn) => etcdBackupPolicy(etcdBackups.store, arn)),
    );
  }

  const loadBalancer = new aws.lb.LoadBalancer(
    `${name}-api-lb`,
    {
      loadBalancerType: "network",
      internal: !spec.aws.publicApi,
      subnets: args.zones.map((z) => (spec.aws.publicApi ? z.publicSubnetId : z.privateSubnetId)),
      securityGroups: [args.apiLoadBalancerSecurityGroupId],
      enableCrossZoneLoadBalancing: true,
      // The tag, not the name, is how the no-public-api policy knows the API load balancer.
      tags: { ...tagsOf(args, `${name}-api-lb`), [LOAD_BALANCER_TAG]: "api" },
    },
    opts,
  );
  const targetGroup = new aws.lb.TargetGroup(
    `${name}-api-tg`,
    {
      vpcId: args.vpcId,
      port: API_PORT,
      protocol: "TCP",
      // IP targets on the slots' fixed addresses: no registration when an instance is replaced.
      targetType: "ip",
      // Off, so a master reaching the API through the NLB can land on itself (no hairpin drop)
      // and the masters' security group can trust the load balancer's group.
      preserveClientIp: "false",
      deregistrationDelay: 30,
      healthCheck: TCP_HEALTH_CHECK,
      tags: tagsOf(args, `${name}-api-tg`),
    },
    { parent: loadBalancer },
  );
  for (const m of masters) {
    new aws.lb.TargetGroupAttachment(
      `${name}-api-target-${m.refs.key}`,
      { targetGroupArn: targetGroup.arn, targetId: m.refs.privateIp, port: API_PORT },
      { parent: targetGroup, dependsOn: [m.networkInterface] },
    );
  }
  new aws.lb.Listener(
    `${name}-api-listener`,
    {
      loadBalancerArn: loadBalancer.arn,
      port: API_PORT,
      protocol: "TCP",
      defaultActions: [{ type: "forward", targetGroupArn: targetGroup.arn }],
      tags: tagsOf(args, `${name}-api-listener`),
    },
    { parent: loadBalancer },
  );
  const record = new aws.route53.Record(
    `${name}-api-record`,
    {
      zoneId: args.zoneId,
      name: apiDnsName(spec),
      type: "A",
      aliases: [{ name: loadBalancer.dnsName, zoneId: loadBalancer.zoneId, evaluateTargetHealth: true }],
    },
    opts,
  );
  return { masters, loadBalancer, record };
}

export class AwsControlPlane extends pulumi.ComponentResource {
  public readonly apiLoadBalancerDnsName: pulumi.Output<string>;
  public readonly apiDnsName: pulumi.Output<string>;
  /** Per master key: the etcd volume id. */
  public readonly etcdVolumeIds: pulumi.Output<Record<string, string>>;
  /** @internal */
  public readonly result: ControlPlaneResult;

  constructor(name: string, args: AwsControlPlaneArgs, opts?: pulumi.ComponentResourceOptions) {
    super("g8s:aws:ControlPlane", name, {}, opts);
    if (args.zones.length !== args.spec.aws.availabilityZones) {
      throw new pulumi.ResourceError(
        `ControlPlane needs the network's ${args.spec.aws.availabilityZones} zones (got ${args.zones.length})`,
        this,
      );
    }
    this.result = createControlPlane(name, args, { parent: this });
    this.apiLoadBalancerDnsName = this.result.loadBalancer.dnsName;
    this.apiDnsName = this.result.record.fqdn;
    this.etcdVolumeIds = pulumi.all(
      Object.fromEntries(this.result.masters.map((m) => [m.refs.key, m.volume.id] as const)),
    );
    this.registerOutputs({
      apiLoadBalancerDnsName: this.apiLoadBalancerDnsName,
      apiDnsName: this.apiDnsName,
      etcdVolumeIds: this.etcdVolumeIds,
    });
  }
}
