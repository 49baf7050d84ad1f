export * from "./defaults";
export * from "./conventions";
export { ClusterSpecError, formatIssue, formatPath, type SpecIssue } from "./errors";
export { parseClusterSpec, parseReconcileSpec } from "./parse";
export {
  G8S_CONFIG_KEYS,
  parseStackFile,
  parseStackCluster,
  parseStackSettings,
  stackNameOf,
  type ParsedStackFile,
  type StackSettings,
} from "./stackFile";
export { RECONCILE_MODES } from "./schema";
export type {
  AwsClusterSpec,
  AwsNodePoolSpec,
  ClusterSpec,
  KvmClusterSpec,
  KvmNodePoolSpec,
  NodePoolSpec,
  PkiSpec,
  Provider,
  ReconcileMode,
  ReconcileSpec,
  Taint,
} from "./schema";
export { durationSeconds, formatDuration, parseDuration } from "./duration";
export { maxNodes } from "./rules";
export { aptVersionChangeProblem, versionChangeProblem } from "./versions";
export {
  OBJECT_STORE_SECRET_KEYS,
  defaultBucketName,
  etcdObjectStore,
  objectStoreIssues,
  type EtcdObjectStore,
} from "./objectStore";
export * as cidr from "./cidr";
