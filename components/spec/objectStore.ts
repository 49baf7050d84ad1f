/**
 * Where etcd snapshots are copied off the masters' volumes (`etcd.backup.objectStore`): the
 * fields of the spec resolved per provider. AWS: S3 in the cluster's region, a bucket g8s makes
 * (or the one named), reached with the masters' instance role, old snapshots deleted by the
 * bucket's lifecycle rule. Elsewhere: any S3-compatible store at `endpoint`, with the access key
 * of a host-cluster Secret, old snapshots deleted by the masters as `retention` drops them.
 */
import { createHash } from "node:crypto";
import * as D from "./defaults";
import { durationSeconds } from "./duration";
import type { SpecIssue } from "./errors";
import type { ClusterSpec } from "./schema";

/** Keys of the `credentialsSecret` (a Secret in the cluster's host-cluster namespace). */
export const OBJECT_STORE_SECRET_KEYS = { accessKeyId: "accessKeyId", secretAccessKey: "secretAccessKey" } as const;

export interface EtcdObjectStore {
  /** `https://host[:port]` of the S3 API. */
  readonly endpoint: string;
  /** `virtual`: `<bucket>.<host>` (AWS); `path`: `<host>/<bucket>` (most S3-compatible stores). */
  readonly addressing: "virtual" | "path";
  readonly bucket: string;
  readonly region: string;
  /** Before every object's name: `<clusterId>/` unless set. */
  readonly prefix: string;
  /** g8s makes the bucket (AWS without `bucket`): versioning off, private, encrypted, the lifecycle rule. */
  readonly managed: boolean;
  /** The masters delete the snapshots retention drops (not on AWS: the lifecycle does, and masters may not delete). */
  readonly prune: boolean;
  /** The host-cluster Secret with the access key (not on AWS). */
  readonly credentialsSecret?: string;
  readonly expireAfterDays: number;
}

/** The bucket g8s makes on AWS: stable per cluster, region and base domain (bucket names are global). */
export function defaultBucketName(spec: Pick<ClusterSpec, "id" | "baseDomain"> & { aws: { region: string } }): string {
  const hash = createHash("sha256").update(`${spec.aws.region}/${spec.baseDomain}/${spec.id}`).digest("hex");
  return `g8s-${spec.id}-etcd-${hash.slice(0, 8)}`;
}

/** The resolved object store of a valid spec, or undefined when snapshots stay on the volumes. */
export function etcdObjectStore(spec: ClusterSpec): EtcdObjectStore | undefined {
  const o = spec.etcd.backup.objectStore;
  if (!spec.etcd.backup.enabled) return undefined;
  const prefix = o.prefix ?? `${spec.id}/`;
  if (spec.provider === "aws") {
    if (o.enabled === false) return undefined;
    const region = o.region ?? spec.aws.region;
    return {
      endpoint: `https://s3.${region}.amazonaws.com`,
      addressing: "virtual",
      bucket: o.bucket ?? defaultBucketName(spec),
      region,
      prefix,
      managed: o.bucket === undefined,
      prune: false,
      expireAfterDays: o.expireAfterDays,
    };
  }
  if (!(o.enabled ?? o.endpoint !== undefined) || o.endpoint === undefined || o.bucket === undefined) return undefined;
  return {
    endpoint: o.endpoint,
    addressing: "path",
    bucket: o.bucket,
    region: o.region ?? D.DEFAULT_OBJECT_STORE_REGION,
    prefix,
    managed: false,
    prune: true,
    ...(o.credentialsSecret === undefined ? {} : { credentialsSecret: o.credentialsSecret }),
    expireAfterDays: o.expireAfterDays,
  };
}

const FIELD = "etcd.backup.objectStore";

/** What the fields of `etcd.backup.objectStore` must be together, per provider. */
export function objectStoreIssues(spec: ClusterSpec): SpecIssue[] {
  const o = spec.etcd.backup.objectStore;
  const issues: SpecIssue[] = [];
  if (spec.provider === "aws") {
    if (o.endpoint !== undefined) {
      issues.push({
        path: `${FIELD}.endpoint`,
        message: "is for stores outside AWS: on aws the snapshots go to S3 in the cluster's region; remove it",
      });
    }
    if (o.credentialsSecret !== undefined) {
      issues.push({
        path: `${FIELD}.credentialsSecret`,
        message: "is for stores outside AWS: aws masters write to S3 with their instance role; remove it",
      });
    }
    const store = etcdObjectStore(spec);
    const kept = spec.etcd.backup.retention * durationSeconds(spec.etcd.backup.interval);
    if (store?.managed && store.expireAfterDays * 86400 < kept) {
      issues.push({
        path: `${FIELD}.expireAfterDays`,
        message:
          `${store.expireAfterDays} days would delete snapshots that etcd.backup.retention keeps ` +
          `(${spec.etcd.backup.retention} × ${spec.etcd.backup.interval}): raise it to ${Math.ceil(kept / 86400)} or more`,
      });
    }
    return issues;
  }
  const wanted = o.enabled ?? o.endpoint !== undefined;
  if (!wanted) return issues;
  if (!spec.etcd.backup.enabled) {
    issues.push({
      path: `${FIELD}.enabled`,
      message: "copies snapshots, and etcd.backup.enabled is false: enable both",
    });
  }
  for (const field of ["endpoint", "bucket", "credentialsSecret"] as const) {
    if (o[field] === undefined) {
      issues.push({
        path: `${FIELD}.${field}`,
        message:
          field === "credentialsSecret"
            ? `is required outside AWS: the name of a Secret in the cluster's host-cluster namespace with keys ${OBJECT_STORE_SECRET_KEYS.accessKeyId} and ${OBJECT_STORE_SECRET_KEYS.secretAccessKey}`
            : `is required outside AWS (the S3-compatible store's ${field === "endpoint" ? "URL, like https://s3.example.com" : "bucket"}), or set enabled: false`,
      });
    }
  }
  return issues;
}
