/**
 * The g8s policies, as CrossGuard (@pulumi/policy) policy objects. `pack.ts` serves them as a
 * policy pack to an engine that can run packs; g8s itself evaluates the same objects over a
 * preview's resources (automation/policy) in `g8s plan` and before every reconciler `up`.
 */
import type {
  PolicyResource,
  ReportViolation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
// The components' own constants, from modules free of Pulumi resources: a policy checks exactly
// the tags, ports and limits the components use.
import {
  CLUSTER_TAG_KEY,
  ETCD_CLIENT_PORT,
  ETCD_PEER_PORT,
  KUBELET_PORT,
  LOAD_BALANCER_TAG,
  MASTER_SLOT_TAG,
  ROLE_LABEL,
} from "../components/spec/conventions";
import { ALLOWED_MASTER_COUNTS, MAX_CERT_TTL_SECONDS, MIN_CERT_TTL_SECONDS } from "../components/spec/defaults";

/** Per-stack policy configuration (from the cluster spec; defaults are the strict choice). */
export interface G8sPolicyConfig {
  /** The cluster id every taggable resource must carry as `g8s.io/cluster`. Unset: any value. */
  readonly clusterId?: string;
  /** The spec allows an internet-facing API load balancer (`aws.publicApi`). */
  readonly publicApi?: boolean;
}

const OPEN_WORLD = ["0.0.0.0/0", "::/0"];

const T = {
  sgIngress: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  sgRule: "aws:ec2/securityGroupRule:SecurityGroupRule",
  sg: "aws:ec2/securityGroup:SecurityGroup",
  volume: "aws:ebs/volume:Volume",
  asg: "aws:autoscaling/group:Group",
  lb: "aws:lb/loadBalancer:LoadBalancer",
  statefulSet: "kubernetes:apps/v1:StatefulSet",
  vaultCert: "vault:pkiSecret/secretBackendCert:SecretBackendCert",
  vaultRole: "vault:pkiSecret/secretBackendRole:SecretBackendRole",
  tlsCert: "tls:index/locallySignedCert:LocallySignedCert",
  localCert: "pulumi-nodejs:dynamic/g8s-pki:LocalCertificate",
} as const;

/** One ingress permission, whatever resource shape it came from. */
interface Ingress {
  readonly cidrs: readonly string[];
  readonly protocol: string;
  readonly from?: number;
  readonly to?: number;
}

export function ingressesOf(type: string, props: Record<string, unknown>): Ingress[] {
  const num = (v: unknown) => (typeof v === "number" ? v : undefined);
  if (type === T.sgIngress) {
    const cidrs = [props.cidrIpv4, props.cidrIpv6].filter((c): c is string => typeof c === "string");
    return [{ cidrs, protocol: String(props.ipProtocol ?? ""), from: num(props.fromPort), to: num(props.toPort) }];
  }
  if (type === T.sgRule && props.type === "ingress") {
    const cidrs = [...((props.cidrBlocks as string[]) ?? []), ...((props.ipv6CidrBlocks as string[]) ?? [])];
    return [{ cidrs, protocol: String(props.protocol ?? ""), from: num(props.fromPort), to: num(props.toPort) }];
  }
  if (type === T.sg) {
    return ((props.ingress as Array<Record<string, unknown>>) ?? []).map((r) => ({
      cidrs: [...((r.cidrBlocks as string[]) ?? []), ...((r.ipv6CidrBlocks as string[]) ?? [])],
      protocol: String(r.protocol ?? ""),
      from: num(r.fromPort),
      to: num(r.toPort),
    }));
  }
  return [];
}

function opensPort(rule: Ingress, from: number, to: number): boolean {
  if (rule.protocol === "-1" || rule.protocol === "all") return true;
  if (rule.protocol !== "tcp" && rule.protocol !== "6") return false;
  const lo = rule.from ?? 0;
  const hi = rule.to ?? 65535;
  return lo <= to && from <= hi;
}

const tagsOf = (props: Record<string, unknown>): Record<string, string> =>
  (props.tags as Record<string, string> | undefined) ?? {};

const asgTag = (props: Record<string, unknown>, key: string): string | undefined =>
  ((props.tags as Array<{ key: string; value: string }> | undefined) ?? []).find((t) => t.key === key)?.value;

export const etcdKubeletNotPublic: ResourceValidationPolicy = {
  name: "etcd-kubelet-not-public",
  description: `etcd (${ETCD_CLIENT_PORT}-${ETCD_PEER_PORT}) and the kubelet (${KUBELET_PORT}) are never open to 0.0.0.0/0.`,
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    for (const rule of ingressesOf(args.type, args.props)) {
      if (!rule.cidrs.some((c) => OPEN_WORLD.includes(c))) continue;
      if (opensPort(rule, ETCD_CLIENT_PORT, ETCD_PEER_PORT)) {
        report(`opens etcd (${ETCD_CLIENT_PORT}-${ETCD_PEER_PORT}) to the internet`);
      }
      if (opensPort(rule, KUBELET_PORT, KUBELET_PORT)) report(`opens the kubelet (${KUBELET_PORT}) to the internet`);
    }
  },
};

export const etcdVolumesProtected: ResourceValidationPolicy = {
  name: "etcd-volumes-protected",
  description: "etcd volumes carry `protect`, so no update can delete a cluster's data.",
  enforcementLevel: "mandatory",
  validateResource: (args, report) => {
    if (args.type !== T.volume) return;
    const tags = tagsOf(args.props);
    const isEtcd = MASTER_SLOT_TAG in tags || /(^|-)etcd(-|$)/.test(tags.Name ?? args.name);
    if (isEtcd && !args.opts.protect) report("etcd volume without `protect: true`");
  },
};

/** Seconds of a Vault TTL (number of seconds, or a duration like `24h`). */
function vaultSeconds(ttl: unknown): number | undefined {
  if (typeof ttl === "number") return ttl;
  if (typeof ttl !== "string") return undefined;
  const m = /^(\d+)([smhd]?)$/.exec(ttl);
  if (!m) return undefined;
  return Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "" | "s" | "m" | "h" | "d"];
}

export const certificateTtlBounds: ResourceValidationPolicy = {
  name: "certificate-ttl-bounds",
  description: "Issued certificates live between 1h and 720h (rotation at half the TTL).",
  enforcementLevel: "mandatory",
  validateResource: (args, report) => {
    let seconds: number | undefined;
    if (args.type === T.vaultCert) seconds = vaultSeconds(args.props.ttl);
    else if (args.type === T.vaultRole) seconds = vaultSeconds(args.props.maxTtl);
    else if (args.type === T.tlsCert && typeof args.props.validityPeriodHours === "number") {
      seconds = args.props.validityPeriodHours * 3600;
    } else if (args.type === T.localCert && typeof args.props.ttlSeconds === "number") {
      seconds = args.props.ttlSeconds;
    } else return;
    if (seconds === undefined) return;
    if (seconds < MIN_CERT_TTL_SECONDS || seconds > MAX_CERT_TTL_SECONDS) {
      report(`certificate TTL ${seconds}s is outside ${MIN_CERT_TTL_SECONDS}s…${MAX_CERT_TTL_SECONDS}s`);
    }
  },
};

export const noPublicApi: ResourceValidationPolicy = {
  name: "no-public-api",
  description: `The API load balancer (tag ${LOAD_BALANCER_TAG}: api) is internal unless the spec allows a public API (aws.publicApi).`,
  enforcementLevel: "mandatory",
  validateResource: (args, report) => {
    if (args.type !== T.lb || tagsOf(args.props)[LOAD_BALANCER_TAG] !== "api") return;
    if (args.props.internal === false && !args.getConfig<G8sPolicyConfig>().publicApi) {
      report("internet-facing API load balancer, but the spec does not set aws.publicApi");
    }
  },
};

/** True for resources that carry tags or labels; their providers' default tags count too. */
function clusterTagOf(resource: Pick<PolicyResource, "type" | "props" | "provider">): string | undefined | null {
  const { type, props } = resource;
  if (type.startsWith("kubernetes:") && type !== "kubernetes:core/v1:Secret" && !type.startsWith("kubernetes:yaml")) {
    const labels = (props.metadata as { labels?: Record<string, string> } | undefined)?.labels ?? {};
    return labels[CLUSTER_TAG_KEY];
  }
  if (type.startsWith("aws:") && props.tags !== undefined && !Array.isArray(props.tags)) {
    // Provider inputs reach the engine JSON-encoded (`defaultTags: "{\"tags\":…}"`).
    const raw = resource.provider?.props.defaultTags;
    const parsed = typeof raw === "string" ? (JSON.parse(raw) as unknown) : raw;
    const defaults = (parsed as { tags?: Record<string, string> } | undefined)?.tags;
    return tagsOf(props)[CLUSTER_TAG_KEY] ?? defaults?.[CLUSTER_TAG_KEY];
  }
  return null; // not taggable
}

export const clusterTagged: ResourceValidationPolicy = {
  name: "cluster-tagged",
  description: `Every taggable resource carries ${CLUSTER_TAG_KEY} with the cluster id (directly or by default tags).`,
  enforcementLevel: "mandatory",
  validateResource: (args, report) => {
    const tag = clusterTagOf(args);
    if (tag === null) return;
    const { clusterId } = args.getConfig<G8sPolicyConfig>();
    if (tag === undefined) report(`missing the ${CLUSTER_TAG_KEY} tag`);
    else if (clusterId !== undefined && tag !== clusterId) report(`${CLUSTER_TAG_KEY} is '${tag}', not '${clusterId}'`);
  },
};

function masterCount(resources: readonly PolicyResource[]): number | undefined {
  const asgs = resources.filter((r) => r.type === T.asg && asgTag(r.props, MASTER_SLOT_TAG) !== undefined);
  if (asgs.length > 0) return asgs.reduce((n, r) => n + Number(r.props.maxSize ?? 1), 0);
  const sets = resources.filter(
    (r) =>
      r.type === T.statefulSet &&
      (r.props.spec as { template?: { metadata?: { labels?: Record<string, string> } } })?.template?.metadata?.labels?.[
        ROLE_LABEL
      ] === "master",
  );
  if (sets.length > 0)
    return sets.reduce((n, r) => n + Number((r.props.spec as { replicas?: number }).replicas ?? 1), 0);
  return undefined;
}

export const mastersOdd: StackValidationPolicy = {
  name: "masters-count-odd",
  description: "A cluster runs 1, 3 or 5 masters: etcd needs an odd quorum.",
  enforcementLevel: "mandatory",
  validateStack: (args: StackValidationArgs, report: ReportViolation) => {
    const count = masterCount(args.resources);
    if (count !== undefined && !(ALLOWED_MASTER_COUNTS as readonly number[]).includes(count)) {
      report(
        `${count} masters: etcd needs ${ALLOWED_MASTER_COUNTS.slice(0, -1).join(", ")} or ${ALLOWED_MASTER_COUNTS.at(-1)}`,
      );
    }
  },
};

export const G8S_POLICIES = [
  mastersOdd,
  etcdKubeletNotPublic,
  etcdVolumesProtected,
  certificateTtlBounds,
  clusterTagged,
  noPublicApi,
] as const;
