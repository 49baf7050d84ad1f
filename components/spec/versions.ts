/**
 * Which `kubernetes.version` changes a running cluster can take: Kubernetes upgrades one minor
 * at a time (kubeadm refuses a skipped minor, and the version-skew policy allows the API server
 * only one minor ahead of the others), and never downgrades (etcd's data and the API's storage
 * versions only move forward). Checked against the version the stack's state says the cluster
 * was last applied with; the spec alone cannot know it.
 */

interface Version {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

function parseVersion(v: string): Version | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(v.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : undefined;
}

function compare(a: Version, b: Version): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/**
 * Why a cluster that runs `running` cannot be changed to `wanted` in one step (the message for
 * field `kubernetes.version`, with the fix); undefined when it can, or when nothing runs yet.
 */
export function versionChangeProblem(running: string | undefined, wanted: string): string | undefined {
  const from = running === undefined ? undefined : parseVersion(running);
  const to = parseVersion(wanted);
  if (from === undefined || to === undefined) return undefined;
  const order = compare(to, from);
  if (order === 0) return undefined;
  if (order < 0) {
    return (
      `${wanted} is older than the ${running} the cluster runs: Kubernetes does not downgrade ` +
      `(etcd's data only moves forward); set it back to ${running}, or restore an etcd snapshot ` +
      `into a new cluster of the older version`
    );
  }
  if (to.major !== from.major) {
    return `${wanted} changes the major version of the ${running} the cluster runs: not supported`;
  }
  if (to.minor > from.minor + 1) {
    return (
      `${wanted} skips ${to.minor - from.minor - 1 === 1 ? "minor" : "minors"} ` +
      `${Array.from({ length: to.minor - from.minor - 1 }, (_, i) => `${from.major}.${from.minor + 1 + i}`).join(", ")} ` +
      `from the ${running} the cluster runs: upgrade one minor at a time (kubeadm and the ` +
      `version-skew policy allow no more); set ${from.major}.${from.minor + 1}.x first`
    );
  }
  return undefined;
}

/**
 * Why a running cluster whose nodes install Kubernetes from apt (`kubernetes.packages: apt`)
 * cannot change version: g8s upgrades nodes in place from the node image's other version only,
 * and an update would meanwhile replace nodes with ones of the new version (AWS workers' instance
 * refresh) that cannot join the older control plane. undefined when it can, or nothing changes.
 */
export function aptVersionChangeProblem(
  running: string | undefined,
  wanted: string,
  packages: "apt" | "image",
): string | undefined {
  if (packages === "image" || running === undefined) return undefined;
  const from = parseVersion(running);
  const to = parseVersion(wanted);
  if (from === undefined || to === undefined || compare(from, to) === 0) return undefined;
  return (
    `${wanted} changes the version of a running cluster whose nodes install Kubernetes from apt ` +
    `(kubernetes.packages: apt): g8s upgrades nodes in place only with the node image; set it back ` +
    `to ${running}, or build the new version as a new cluster`
  );
}
