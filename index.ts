/**
 * The g8s Pulumi program: one stack is one guest cluster. Reads `g8s:cluster` from the stack's
 * config (stacks/Pulumi.<stack>.yaml), validates it before any resource is created, and exports
 * the validated desired state. The platform components (GuestCluster) hang off this spec.
 */
import * as pulumi from "@pulumi/pulumi";
import { ClusterSpecError, parseClusterSpec, type ClusterSpec } from "./components";

/** Reads and validates the stack's cluster spec; a bad spec stops the program with every located problem. */
export function loadClusterSpec(config: pulumi.Config, stack: string): ClusterSpec {
  const source = `stacks/Pulumi.${stack}.yaml`;
  const raw = config.getObject<unknown>("cluster");
  if (raw === undefined) {
    throw new pulumi.RunError(`${source}: g8s:cluster: is missing: every g8s stack file describes one cluster`);
  }
  try {
    const spec = parseClusterSpec(raw, source);
    if (spec.id !== stack) {
      throw new ClusterSpecError([{ path: "id", message: `must equal the stack name '${stack}'` }], source);
    }
    return spec;
  } catch (err) {
    if (err instanceof ClusterSpecError) throw new pulumi.RunError(err.lines().join("\n"));
    throw err;
  }
}

const spec = loadClusterSpec(new pulumi.Config("g8s"), pulumi.getStack());

export const clusterId = spec.id;
export const provider = spec.provider;
export const clusterDomain = `${spec.id}.${spec.baseDomain}`;
export const kubernetesVersion = spec.kubernetes.version;
