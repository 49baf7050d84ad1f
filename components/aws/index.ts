export { AwsCluster, defaultTagsOf, lookupZoneNames, type AwsClusterArgs, type AwsUserData } from "./cluster";
export { apiEndpointOf, masterAddresses, masterZoneIndex, zoneSubnets } from "./common";
export {
  AwsControlPlane,
  ETCD_DEVICE_NAME,
  ETCD_VOLUME_TAG,
  NETWORK_INTERFACE_DEVICE_INDEX,
  NETWORK_INTERFACE_TAG,
  type AwsControlPlaneArgs,
  type MasterRefs,
} from "./controlPlane";
export { AwsIngress, type AwsIngressArgs } from "./ingress";
export { DEFAULT_AWS_IMAGE } from "./launch";
export { AwsNetwork, type AwsNetworkArgs, type ZoneNetwork } from "./network";
export { AwsNodePool, autoscalerTags, type AwsNodePoolArgs } from "./nodePool";
export { securityGroupRules, type SecurityGroupRuleSpec } from "./securityGroups";
export { NODE_ROLES, parameterName, parameterPath, type NodeRole, type NodeSecrets } from "./secrets";
