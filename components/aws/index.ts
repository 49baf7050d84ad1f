export { AwsCluster, defaultTagsOf, lookupZoneNames, type AwsClusterArgs, type AwsUserData } from "./cluster";
export { apiEndpointOf, masterAddresses, masterZoneIndex, zoneSubnets } from "./common";
export {
  ControlPlane,
  ETCD_DEVICE_NAME,
  ETCD_VOLUME_TAG,
  NETWORK_INTERFACE_DEVICE_INDEX,
  NETWORK_INTERFACE_TAG,
  type ControlPlaneArgs,
  type MasterRefs,
} from "./controlPlane";
export { Ingress, type IngressArgs } from "./ingress";
export { DEFAULT_AWS_IMAGE } from "./launch";
export { Network, type NetworkArgs, type ZoneNetwork } from "./network";
export { NodePool, autoscalerTags, type NodePoolArgs } from "./nodePool";
export { securityGroupRules, type SecurityGroupRuleSpec } from "./securityGroups";
export { NODE_ROLES, parameterName, parameterPath, type NodeRole, type NodeSecrets } from "./secrets";
