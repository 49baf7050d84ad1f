export {
  CA_RECORD_KEY,
  ClusterPki,
  certificateChildName,
  type CertificateBundle,
  type CertificateRecord,
  type ClusterPkiArgs,
  type ServiceAccountKeyPair,
} from "./clusterPki";
export {
  ADMIN_CN,
  ADMIN_GROUP,
  DEFAULT_SERVICE_DNS_DOMAIN,
  FRONT_PROXY_CLIENT_CN,
  NODES_GROUP,
  PKI_ROLES,
  certificateSet,
  checkMasterNames,
  minSecondsRemaining,
  mountPath,
  rotationTrigger,
  rotationWindow,
  type CertificateSpec,
  type PkiRole,
} from "./certificates";
export { kubeconfigDocument, renderKubeconfig, type KubeconfigInput } from "./kubeconfig";
export { caSpecMismatch, certificateExpiry, halfLife, pemValidity, secondsToExpiry } from "./expiry";
