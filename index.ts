/**
 * The g8s Pulumi program: one stack is one guest cluster. Reads `g8s:cluster` from the stack's
 * config (stacks/Pulumi.<stack>.yaml), validates it before any resource is created, and builds
 * the GuestCluster (PKI, node bootstrap, and the platform of `provider`).
 */
import * as pulumi from "@pulumi/pulumi";
import {
  ClusterSpecError,
  GuestCluster,
  clusterDomain as domainOf,
  parseStackCluster,
  type ClusterSpec,
} from "./components";

/** Reads and validates the stack's cluster spec; a bad spec stops the program with every located problem. */
export function loadClusterSpec(config: pulumi.Config, stack: string): ClusterSpec {
  const source = `stacks/Pulumi.${stack}.yaml`;
  try {
    return parseStackCluster(config.getObject<unknown>("cluster"), stack, source);
  } catch (err) {
    if (err instanceof ClusterSpecError) throw new pulumi.RunError(err.lines().join("\n"));
    throw err;
  }
}

/** The whole program for one stack: the spec, the GuestCluster, and the stack outputs. */
export function defineCluster(config: pulumi.Config, stack: string) {
  const spec = loadClusterSpec(config, stack);
  const cluster = new GuestCluster(spec.id, {
    spec,
    vaultToken: config.getSecret("vaultToken"),
    hostKubeconfig: config.getSecret("hostKubeconfig"),
  });
  return {
    clusterId: spec.id,
    provider: spec.provider,
    clusterDomain: domainOf(spec),
    kubernetesVersion: spec.kubernetes.version,
    apiEndpoint: cluster.apiEndpoint,
    adminKubeconfig: cluster.adminKubeconfig,
    userKubeconfigs: cluster.userKubeconfigs,
    caCertPem: cluster.caCertPem,
    certificateNotAfter: cluster.certificateNotAfter,
    pki: cluster.pkiRenewal,
    platform: cluster.platform,
  };
}

const outputs = defineCluster(new pulumi.Config("g8s"), pulumi.getStack());

export const clusterId = outputs.clusterId;
export const provider = outputs.provider;
export const clusterDomain = outputs.clusterDomain;
export const kubernetesVersion = outputs.kubernetesVersion;
export const apiEndpoint = outputs.apiEndpoint;
/** Secret. */
export const adminKubeconfig = outputs.adminKubeconfig;
/** Secret: per `pki.users` entry, its kubeconfig. */
export const userKubeconfigs = outputs.userKubeconfigs;
export const caCertPem = outputs.caCertPem;
/** Per certificate: when it expires, for time-to-expiry alerts. */
export const certificateNotAfter = outputs.certificateNotAfter;
/**
 * Per certificate (and the CA): validity, renewal point, the resources that renew it; and what
 * carries certificates to the nodes. Plain: the reconciler reads it without decrypting anything.
 */
export const pki = outputs.pki;
export const platform = outputs.platform;
