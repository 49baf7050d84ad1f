/** Launch templates and auto scaling group tags shared by the masters and the node pools. */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { clusterTagsOf, tagsOf, type AwsComponentArgs, type Tags } from "./common";

/**
 * Default image: the current Ubuntu 24.04 LTS (amd64) AMI, resolved by EC2 at launch from
 * Canonical's public SSM parameter. The launch template does not change when Canonical
 * publishes a new image (no fleet-wide roll on a refresh); new instances get the newest one.
 * Pin an AMI with the `imageId` Arg for reproducible nodes.
 */
export const DEFAULT_AWS_IMAGE =
  "resolve:ssm:/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id";

/** Root device of the Ubuntu AMIs. */
export const ROOT_DEVICE_NAME = "/dev/sda1";

export interface NodeLaunchArgs extends AwsComponentArgs {
  readonly imageId?: pulumi.Input<string>;
  readonly instanceType: string;
  /** Base64 of the user-data bytes (text or gzip), passed to EC2 unchanged. */
  readonly userData: pulumi.Input<string>;
  readonly instanceProfileArn: pulumi.Input<string>;
  readonly securityGroupIds: pulumi.Input<string>[];
  readonly rootVolumeGiB: number;
  /** Tags of the instances and their volumes besides the cluster's (`Name`, role, slot…). */
  readonly instanceTags: Readonly<Record<string, pulumi.Input<string>>>;
}

/** @internal */
export function createLaunchTemplate(
  name: string,
  args: NodeLaunchArgs,
  opts: pulumi.CustomResourceOptions,
): aws.ec2.LaunchTemplate {
  // defaultTags do not reach instances an ASG launches: spell every cluster tag out.
  const launched = { ...clusterTagsOf(args), ...args.instanceTags };
  return new aws.ec2.LaunchTemplate(
    name,
    {
      imageId: args.imageId ?? DEFAULT_AWS_IMAGE,
      instanceType: args.instanceType,
      userData: args.userData,
      iamInstanceProfile: { arn: args.instanceProfileArn },
      vpcSecurityGroupIds: args.securityGroupIds,
      // IMDSv2 only; hop limit 1 keeps pods (one hop further) away from the node's credentials.
      metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 },
      blockDeviceMappings: [
        {
          deviceName: ROOT_DEVICE_NAME,
          ebs: { volumeSize: args.rootVolumeGiB, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" },
        },
      ],
      tagSpecifications: [
        { resourceType: "instance", tags: launched },
        { resourceType: "volume", tags: launched },
      ],
      updateDefaultVersion: true,
      tags: tagsOf(args, name),
    },
    opts,
  );
}

/** ASG tags from a map: sorted by key, so the list never reorders. */
export function asgTags(tags: Tags, propagateAtLaunch: boolean): aws.types.input.autoscaling.GroupTag[] {
  return Object.keys(tags)
    .sort()
    .map((key) => ({ key, value: tags[key], propagateAtLaunch }));
}

/** The launch template reference of an ASG: always the latest version. */
export function latestVersionOf(lt: aws.ec2.LaunchTemplate): {
  id: pulumi.Output<string>;
  version: pulumi.Output<string>;
} {
  return { id: lt.id, version: lt.latestVersion.apply((v) => String(v)) };
}
