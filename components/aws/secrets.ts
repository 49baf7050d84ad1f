/**
 * Secrets to nodes: a per-cluster KMS key (rotation on) and one SSM Parameter Store
 * `SecureString` per secret file, `/g8s/<clusterId>/<role>/<file>`. Nodes fetch them at boot
 * with their instance role; user-data carries only the parameter names.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { arnParts, tagsOf, type AwsComponentArgs } from "./common";

export const NODE_ROLES = ["master", "worker"] as const;
export type NodeRole = (typeof NODE_ROLES)[number];

/** Secret files per node role: file name → content (made secret here whatever the caller passes). */
export interface NodeSecrets {
  readonly master: Readonly<Record<string, pulumi.Input<string>>>;
  readonly worker: Readonly<Record<string, pulumi.Input<string>>>;
}

const FILE_RE = /^[A-Za-z0-9_.-]{1,128}$/;

/** The parameter path of a role: `/g8s/<clusterId>/<role>`. */
export function parameterPath(clusterId: string, role: NodeRole): string {
  return `/g8s/${clusterId}/${role}`;
}

/** The parameter name of a secret file: `/g8s/<clusterId>/<role>/<file>` (what user-data references). */
export function parameterName(clusterId: string, role: NodeRole, file: string): string {
  return `${parameterPath(clusterId, role)}/${file}`;
}

export function checkNodeSecrets(secrets: NodeSecrets): string | undefined {
  for (const role of NODE_ROLES) {
    for (const file of Object.keys(secrets[role])) {
      if (!FILE_RE.test(file)) {
        return (
          `nodeSecrets.${role}: '${file}' is not a valid secret file name: ` +
          `use letters, digits, '.', '_' and '-' (it becomes the SSM parameter ${parameterPath("<id>", role)}/<file>)`
        );
      }
    }
  }
  return undefined;
}

export interface SecretStoreArgs extends AwsComponentArgs {
  readonly nodeSecrets: NodeSecrets;
}

export interface SecretStore {
  readonly key: aws.kms.Key;
  /** The ARN of a role's parameter path and everything under it, for IAM policies. */
  parameterArns(role: NodeRole): pulumi.Output<string[]>;
  /** Every parameter of a role, by file name. */
  readonly parameters: Readonly<Record<NodeRole, Record<string, aws.ssm.Parameter>>>;
}

/** @internal */
export function createSecretStore(
  name: string,
  args: SecretStoreArgs,
  opts: pulumi.CustomResourceOptions,
): SecretStore {
  const { spec } = args;
  const key = new aws.kms.Key(
    `${name}-kms`,
    {
      description: `g8s ${spec.id}: node secrets in SSM Parameter Store`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      tags: tagsOf(args, `${name}-kms`),
    },
    // Without it no node secret can be read again: only a confirmed g8s:decommission lifts this.
    { ...opts, protect: true },
  );
  new aws.kms.Alias(
    `${name}-kms-alias`,
    { name: `alias/g8s/${spec.id}`, targetKeyId: key.keyId },
    // Children inherit protect: the key's protection is the key's alone.
    { parent: key, protect: false },
  );

  const parameters = { master: {}, worker: {} } as Record<NodeRole, Record<string, aws.ssm.Parameter>>;
  for (const role of NODE_ROLES) {
    for (const [file, value] of Object.entries(args.nodeSecrets[role])) {
      const paramName = `${name}-param-${role}-${file}`;
      parameters[role][file] = new aws.ssm.Parameter(
        paramName,
        {
          name: parameterName(spec.id, role, file),
          type: "SecureString",
          keyId: key.arn,
          value: pulumi.secret(value),
          tier: "Standard",
          tags: tagsOf(args, paramName),
        },
        { parent: key, protect: false },
      );
    }
  }

  return {
    key,
    parameters,
    parameterArns: (role) =>
      key.arn.apply((arn) => {
        const { partition, region, account } = arnParts(arn);
        const path = `arn:${partition}:ssm:${region}:${account}:parameter${parameterPath(spec.id, role)}`;
        return [path, `${path}/*`];
      }),
  };
}
