/**
 * AwsNodePool (`g8s:aws:NodePool`): one `spec.nodePools` entry as a launch template and an auto
 * scaling group over the private subnets, with its own IAM role. The cluster autoscaler owns
 * the desired capacity after creation; launch template changes roll the pool (instance refresh).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { clusterTagsOf, type AwsComponentArgs, type Tags } from "./common";
import { addRolePolicy, createNodeRole, instanceHealthPolicy, secretsPolicy } from "./iam";
import { asgTags, createLaunchTemplate, latestVersionOf } from "./launch";
import type { SecretStore } from "./secrets";
import { POOL_LABEL, type AwsNodePoolSpec } from "../spec";

/** Instance refresh keeps this share of the pool in service while it rolls. */
export const DEFAULT_MIN_HEALTHY_PERCENTAGE = 90;
export const DEFAULT_INSTANCE_WARMUP_SECONDS = 300;

export interface AwsNodePoolArgs extends AwsComponentArgs {
  /** The pool (one entry of spec.nodePools). */
  readonly pool: AwsNodePoolSpec;
  readonly privateSubnetIds: pulumi.Input<string>[];
  readonly workersSecurityGroupId: pulumi.Input<string>;
  readonly secrets: SecretStore;
  /** Rendered user-data of the pool: labels and taints are in it. References only, never secret values. */
  readonly userData: pulumi.Input<string>;
  /** AMI of the pool. Default: DEFAULT_AWS_IMAGE (Ubuntu 24.04 via SSM). */
  readonly imageId?: pulumi.Input<string>;
}

export interface NodePoolResult {
  readonly launchTemplate: aws.ec2.LaunchTemplate;
  readonly group: aws.autoscaling.Group;
}

/**
 * The cluster-autoscaler's tags of a pool: auto-discovery (`enabled`, `<clusterId>`) and the
 * node template (labels and taints), so it can scale a pool up from zero.
 */
export function autoscalerTags(clusterId: string, pool: AwsNodePoolSpec): Tags {
  const prefix = "k8s.io/cluster-autoscaler";
  const tags: Tags = { [`${prefix}/enabled`]: "true", [`${prefix}/${clusterId}`]: "owned" };
  for (const [key, value] of Object.entries(pool.labels)) tags[`${prefix}/node-template/label/${key}`] = value;
  for (const taint of pool.taints) {
    tags[`${prefix}/node-template/taint/${taint.key}`] = `${taint.value ?? ""}:${taint.effect}`;
  }
  return tags;
}

/** @internal */
export function createNodePool(
  name: string,
  args: AwsNodePoolArgs,
  opts: pulumi.CustomResourceOptions,
): NodePoolResult {
  const { spec, pool } = args;
  const identity = createNodeRole(
    name,
    {
      spec,
      tags: args.tags,
      description: `g8s ${spec.id}: node pool ${pool.name}`,
      policies: { secrets: secretsPolicy("worker", args.secrets) },
    },
    opts,
  );
  const launchTemplate = createLaunchTemplate(
    `${name}-lt`,
    {
      spec,
      tags: args.tags,
      imageId: args.imageId,
      instanceType: pool.instanceType,
      userData: args.userData,
      instanceProfileArn: identity.profile.arn,
      securityGroupIds: [args.workersSecurityGroupId],
      rootVolumeGiB: pool.rootVolumeGiB,
      instanceTags: { Name: name, [POOL_LABEL]: pool.name },
    },
    opts,
  );
  const template = latestVersionOf(launchTemplate);
  const group = new aws.autoscaling.Group(
    `${name}-asg`,
    {
      minSize: pool.min,
      maxSize: pool.max,
      desiredCapacity: pool.desired ?? pool.min,
      vpcZoneIdentifiers: args.privateSubnetIds,
      ...(pool.spot
        ? {
            mixedInstancesPolicy: {
              instancesDistribution: {
                onDemandBaseCapacity: 0,
                onDemandPercentageAboveBaseCapacity: 0,
                spotAllocationStrategy: "price-capacity-optimized",
              },
              launchTemplate: {
                launchTemplateSpecification: { launchTemplateId: template.id, version: template.version },
                overrides: [{ instanceType: pool.instanceType }],
              },
            },
          }
        : { launchTemplate: template }),
      // EC2, not ELB: the ingress target groups check the ingress controller's node ports, whose
      // failure is no reason to replace a node. A node whose bootstrap failed reports itself.
      healthCheckType: "EC2",
      healthCheckGracePeriod: DEFAULT_INSTANCE_WARMUP_SECONDS,
      instanceRefresh: {
        strategy: "Rolling",
        preferences: {
          minHealthyPercentage: DEFAULT_MIN_HEALTHY_PERCENTAGE,
          instanceWarmup: String(DEFAULT_INSTANCE_WARMUP_SECONDS),
        },
      },
      tags: asgTags(
        { ...clusterTagsOf(args), ...autoscalerTags(spec.id, pool), Name: name, [POOL_LABEL]: pool.name },
        false,
      ),
    },
    // The cluster autoscaler owns the desired capacity once the pool exists.
    { ...opts, ignoreChanges: ["desiredCapacity"] },
  );
  addRolePolicy(name, identity.role, "health", instanceHealthPolicy([group.arn]));
  return { launchTemplate, group };
}

export class AwsNodePool extends pulumi.ComponentResource {
  public readonly autoScalingGroupName: pulumi.Output<string>;
  /** @internal */
  public readonly result: NodePoolResult;

  constructor(name: string, args: AwsNodePoolArgs, opts?: pulumi.ComponentResourceOptions) {
    super("g8s:aws:NodePool", name, {}, opts);
    this.result = createNodePool(name, args, { parent: this });
    this.autoScalingGroupName = this.result.group.name;
    this.registerOutputs({ autoScalingGroupName: this.autoScalingGroupName });
  }
}
