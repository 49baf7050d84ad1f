/**
 * IAM for nodes: a role per node group (the masters, each pool) with an instance profile and
 * inline policies that name exactly the resources the node needs.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { arnParts, tagsOf, type AwsComponentArgs } from "./common";
import { type NodeRole, type SecretStore } from "./secrets";

export interface PolicyStatement {
  readonly Sid: string;
  readonly Effect: "Allow";
  readonly Action: string[];
  readonly Resource: string | string[];
  readonly Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  readonly Version: "2012-10-17";
  readonly Statement: PolicyStatement[];
}

/** The trust policy: EC2 may assume the role, nothing else. */
export function assumeRolePolicy(): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
  });
}

/**
 * Read the role's own SSM parameters and decrypt them with the cluster key, only through SSM
 * and only for parameters under the role's path (the SSM encryption context).
 */
export function secretsPolicy(role: NodeRole, secrets: SecretStore): pulumi.Output<PolicyDocument> {
  return pulumi.all([secrets.parameterArns(role), secrets.key.arn]).apply(([paths, keyArn]) => ({
    Version: "2012-10-17" as const,
    Statement: [
      {
        Sid: "ReadOwnParameters",
        Effect: "Allow" as const,
        Action: ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
        Resource: paths,
      },
      {
        Sid: "DecryptOwnParameters",
        Effect: "Allow" as const,
        Action: ["kms:Decrypt"],
        Resource: keyArn,
        Condition: {
          // SSM encrypts each parameter with its ARN as encryption context.
          StringLike: { "kms:EncryptionContext:PARAMETER_ARN": `${paths[0]}/*` },
          StringEquals: { "kms:ViaService": `ssm.${arnParts(keyArn).region}.amazonaws.com` },
        },
      },
    ],
  }));
}

/**
 * Mark instances of the given auto scaling groups unhealthy (`autoscaling:SetInstanceHealth`): a
 * node whose bootstrap failed asks its own group to replace it (components/bootstrap). Scoped to
 * the role's own groups by ARN.
 */
export function instanceHealthPolicy(groupArns: pulumi.Input<string>[]): pulumi.Output<PolicyDocument> {
  return pulumi.all(groupArns).apply((arns) => ({
    Version: "2012-10-17" as const,
    Statement: [
      {
        Sid: "ReplaceOwnFailedInstances",
        Effect: "Allow" as const,
        Action: ["autoscaling:SetInstanceHealth"],
        Resource: arns,
      },
    ],
  }));
}

export interface NodeRoleArgs extends AwsComponentArgs {
  /** Inline policies by stable key (`secrets`, `etcd-volume`, …). */
  readonly policies: Readonly<Record<string, pulumi.Input<PolicyDocument>>>;
  readonly description: string;
}

export interface NodeIdentity {
  readonly role: aws.iam.Role;
  readonly profile: aws.iam.InstanceProfile;
}

/**
 * @internal An inline policy `${name}-policy-<key>` of a node role (`name` is the role's owner, as
 * given to createNodeRole). For policies that name resources made after the role, such as its
 * auto scaling groups.
 */
export function addRolePolicy(
  name: string,
  role: aws.iam.Role,
  key: string,
  document: pulumi.Input<PolicyDocument>,
): aws.iam.RolePolicy {
  return new aws.iam.RolePolicy(
    `${name}-policy-${key}`,
    { role: role.name, policy: pulumi.jsonStringify(document) },
    { parent: role },
  );
}

/** @internal A role, its inline policies (`${name}-policy-<key>`) and its instance profile. */
export function createNodeRole(name: string, args: NodeRoleArgs, opts: pulumi.CustomResourceOptions): NodeIdentity {
  const role = new aws.iam.Role(
    `${name}-role`,
    {
      description: args.description,
      assumeRolePolicy: assumeRolePolicy(),
      tags: tagsOf(args, `${name}-role`),
    },
    opts,
  );
  for (const [key, document] of Object.entries(args.policies)) addRolePolicy(name, role, key, document);
  const profile = new aws.iam.InstanceProfile(
    `${name}-profile`,
    { role: role.name, tags: tagsOf(args, `${name}-profile`) },
    { parent: role },
  );
  return { role, profile };
}
