/**
 * The off-volume copies of the masters' etcd snapshots on AWS (`etcd.backup.objectStore`): the
 * bucket g8s makes (private, encrypted at rest, owner-enforced, kept when the stack is
 * destroyed: the backups must outlive the cluster they can bring back) with the lifecycle rule
 * that deletes old snapshots, and the masters' rights on their prefix: write and read, list,
 * never delete (a compromised master cannot erase the history).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { etcdObjectStore, type EtcdObjectStore } from "../spec";
import { arnParts, tagsOf, type AwsComponentArgs } from "./common";
import type { PolicyDocument } from "./iam";

export interface EtcdBackupBucket {
  readonly store: EtcdObjectStore;
  /** `arn:<partition>:s3:::<bucket>`. */
  readonly bucketArn: pulumi.Output<string>;
}

/** The masters' policy on the snapshot prefix: put, get and list; no delete. */
export function etcdBackupPolicy(store: EtcdObjectStore, bucketArn: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "WriteAndReadSnapshots",
        Effect: "Allow",
        Action: ["s3:PutObject", "s3:GetObject"],
        Resource: `${bucketArn}/${store.prefix}*`,
      },
      {
        Sid: "ListSnapshots",
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: bucketArn,
        Condition: { StringLike: { "s3:prefix": [`${store.prefix}*`] } },
      },
    ],
  };
}

/**
 * The bucket (when g8s makes it) and its ARN, or undefined when snapshots stay on the volumes.
 * `partitionOf`: any ARN of the cluster's account (the partition of a named bucket's ARN).
 */
export function createEtcdBackupBucket(
  name: string,
  args: AwsComponentArgs,
  partitionOf: pulumi.Output<string>,
  opts: pulumi.ComponentResourceOptions,
): EtcdBackupBucket | undefined {
  const store = etcdObjectStore(args.spec);
  if (store === undefined) return undefined;
  if (!store.managed) {
    return { store, bucketArn: partitionOf.apply((arn) => `arn:${arnParts(arn).partition}:s3:::${store.bucket}`) };
  }
  const bucket = new aws.s3.Bucket(
    `${name}-etcd-backups`,
    { bucket: store.bucket, forceDestroy: false, tags: tagsOf(args, store.bucket) },
    { ...opts, retainOnDelete: true },
  );
  const child = { ...opts, parent: bucket, retainOnDelete: true };
  new aws.s3.BucketPublicAccessBlock(
    `${name}-etcd-backups`,
    {
      bucket: bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    },
    child,
  );
  new aws.s3.BucketOwnershipControls(
    `${name}-etcd-backups`,
    { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } },
    child,
  );
  new aws.s3.BucketServerSideEncryptionConfiguration(
    `${name}-etcd-backups`,
    { bucket: bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }] },
    child,
  );
  new aws.s3.BucketLifecycleConfiguration(
    `${name}-etcd-backups`,
    {
      bucket: bucket.id,
      rules: [
        {
          id: "expire-etcd-snapshots",
          status: "Enabled",
          filter: { prefix: store.prefix },
          expiration: { days: store.expireAfterDays },
          abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
        },
      ],
    },
    child,
  );
  return { store, bucketArn: bucket.arn };
}
