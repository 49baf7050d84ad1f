/**
 * Rules that relate several fields of a structurally valid, defaulted spec. Each rule is a
 * pure function returning the issues it finds, exported for tests.
 */
import * as D from "./defaults";
import { cidrsOverlap, cidrSize, parseCidr, type Cidr } from "./cidr";
import { ADMIN_GROUP } from "./conventions";
import { durationSeconds } from "./duration";
import type { SpecIssue } from "./errors";
import { objectStoreIssues } from "./objectStore";
import type { AwsClusterSpec, ClusterSpec } from "./schema";

type Rule = (spec: ClusterSpec) => SpecIssue[];

/** A CIDR the schema already accepted. */
function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (typeof parsed === "string") throw new Error(`internal: unchecked CIDR ${text}: ${parsed}`);
  return parsed;
}

export const uniquePoolNames: Rule = (spec) => {
  const seen = new Map<string, number>();
  const issues: SpecIssue[] = [];
  spec.nodePools.forEach((pool, i) => {
    const first = seen.get(pool.name);
    if (first !== undefined) {
      issues.push({
        path: `nodePools[${i}].name`,
        message: `'${pool.name}' is already used by nodePools[${first}]: pool names must be unique`,
      });
    } else seen.set(pool.name, i);
  });
  return issues;
};

export const poolSizes: Rule = (spec) => {
  if (spec.provider !== "aws") return []; // kvm pools have a fixed count
  const issues: SpecIssue[] = [];
  spec.nodePools.forEach((pool, i) => {
    if (pool.max < pool.min) {
      issues.push({ path: `nodePools[${i}].max`, message: `must be ≥ min (${pool.min})` });
    } else if (pool.desired !== undefined && (pool.desired < pool.min || pool.desired > pool.max)) {
      issues.push({
        path: `nodePools[${i}].desired`,
        message: `must be between min (${pool.min}) and max (${pool.max}) (got ${pool.desired})`,
      });
    }
  });
  return issues;
};

export const rangesDoNotOverlap: Rule = (spec) => {
  const ranges: Array<{ path: string; text: string }> = [];
  if (spec.provider === "aws") ranges.push({ path: "aws.vpcCidr", text: spec.aws.vpcCidr });
  ranges.push({ path: "kubernetes.serviceCidr", text: spec.kubernetes.serviceCidr });
  ranges.push({ path: "kubernetes.podCidr", text: spec.kubernetes.podCidr });
  const issues: SpecIssue[] = [];
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const [a, b] = [ranges[i], ranges[j]];
      if (cidrsOverlap(cidr(a.text), cidr(b.text))) {
        issues.push({
          path: b.path,
          message: `${b.text} overlaps ${a.path} (${a.text}): the VPC, service and pod ranges must be disjoint`,
        });
      }
    }
  }
  return issues;
};

/** The most nodes the spec can ever run: masters plus every pool at its maximum. */
export function maxNodes(spec: ClusterSpec): number {
  const workers =
    spec.provider === "aws"
      ? spec.nodePools.reduce((n, p) => n + p.max, 0)
      : spec.nodePools.reduce((n, p) => n + p.count, 0);
  return spec.masters.count + workers;
}

export const podRangeFitsNodes: Rule = (spec) => {
  const pods = cidr(spec.kubernetes.podCidr);
  const capacity = cidrSize(pods) / 2 ** (32 - D.POD_CIDR_NODE_MASK);
  const needed = maxNodes(spec);
  if (needed <= capacity) return [];
  return [
    {
      path: "kubernetes.podCidr",
      message:
        `/${pods.prefix} holds ${capacity} node ranges (/${D.POD_CIDR_NODE_MASK} each) but the cluster ` +
        `can grow to ${needed} nodes: use a larger range such as /16`,
    },
  ];
};

export const vpcFitsSubnets: Rule = (spec) => {
  if (spec.provider !== "aws") return [];
  const aws: AwsClusterSpec["aws"] = spec.aws;
  const vpc = cidr(aws.vpcCidr);
  // One public and one private subnet per AZ, each at least a /24 (see components/aws).
  const subnets = 2 * aws.availabilityZones;
  const needed = Math.ceil(Math.log2(subnets));
  if (vpc.prefix + needed <= 24) return [];
  return [
    {
      path: "aws.vpcCidr",
      message:
        `/${vpc.prefix} is too small for ${subnets} subnets of at least /24 ` +
        `(${aws.availabilityZones} availability zones): use /${24 - needed} or larger`,
    },
  ];
};

export const vaultNeedsAddress: Rule = (spec) => {
  const { backend, vault } = spec.pki;
  if (backend === "vault" && vault?.address === undefined) {
    return [
      {
        path: "pki.vault.address",
        message: "is required with pki.backend vault: set the Vault URL, e.g. https://vault.example.com",
      },
    ];
  }
  if (backend !== "vault" && vault !== undefined) {
    return [{ path: "pki.vault", message: "is only used with pki.backend vault: remove it or set backend: vault" }];
  }
  return [];
};

export const caOutlivesCertificates: Rule = (spec) => {
  const { caTtl, certTtl } = spec.pki;
  if (durationSeconds(caTtl) >= 2 * durationSeconds(certTtl)) return [];
  return [{ path: "pki.caTtl", message: `must be at least twice pki.certTtl (${certTtl}) (got ${caTtl})` }];
};

/** pulumi-tls counts validity in whole hours (`validity_period_hours`). */
export const tlsTtlsInHours: Rule = (spec) => {
  if (spec.pki.backend !== "tls") return [];
  return (["certTtl", "caTtl"] as const)
    .filter((field) => durationSeconds(spec.pki[field]) % 3600 !== 0)
    .map((field) => ({
      path: `pki.${field}`,
      message: `must be whole hours with pki.backend tls (got ${spec.pki[field]}): pulumi-tls counts validity in hours`,
    }));
};

export const ingressPortsDistinct: Rule = (spec) => {
  const { httpNodePort, httpsNodePort } = spec.ingress;
  if (httpNodePort !== httpsNodePort) return [];
  return [{ path: "ingress.httpsNodePort", message: `must differ from ingress.httpNodePort (${httpNodePort})` }];
};

export const kvmNamespaceIsLabel: Rule = (spec) => {
  if (spec.provider !== "kvm") return [];
  const namespace = `${spec.kvm.namespacePrefix}${spec.id}`;
  if (/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(namespace)) return [];
  return [
    {
      path: "kvm.namespacePrefix",
      message: `gives the namespace '${namespace}', which is not a DNS label: use lowercase letters, digits and '-'`,
    },
  ];
};

/** g8s's flannel image is part of the node image: no registry serves it to nodes that install from apt. */
export const flannelNeedsNodeImage: Rule = (spec) => {
  if (spec.kubernetes.cni !== "flannel" || spec.kubernetes.packages === "image") return [];
  return [
    {
      path: "kubernetes.cni",
      message:
        "flannel comes with the node image, which packages 'apt' does not use: set kubernetes.packages: image, or cni: calico",
    },
  ];
};

/** A node that runs the node image's kubelet can only run a version the image holds. */
export const nodeImageHoldsVersion: Rule = (spec) => {
  const held: readonly string[] = D.NODE_IMAGE_KUBERNETES_VERSIONS;
  if (spec.kubernetes.packages !== "image" || held.includes(spec.kubernetes.version)) return [];
  return [
    {
      path: "kubernetes.version",
      message:
        `${spec.kubernetes.version} is not in the node image (kubernetes.packages: image), which holds ` +
        `${held.join(" and ")}: set one of them, or packages: apt`,
    },
  ];
};

/** A rotation set (`trusted` ids and the one `active` among them): each id once, the active one trusted. */
function rotationSetIssues(
  path: string,
  trusted: readonly string[],
  activeField: string,
  active: string,
  then: string,
): SpecIssue[] {
  const issues: SpecIssue[] = [];
  trusted.forEach((id, i) => {
    if (trusted.indexOf(id) !== i) {
      issues.push({ path: `${path}.trusted[${i}]`, message: `'${id}' is listed twice: list each once` });
    }
  });
  if (!trusted.includes(active)) {
    issues.push({
      path: `${path}.${activeField}`,
      message: `'${active}' is not in trusted (${trusted.join(", ")}): add it to trusted first, apply, then ${then}`,
    });
  }
  return issues;
}

/**
 * The signing service-account key must be trusted (else the API server would reject every token
 * it signs), and a key is listed once. Rotation is three updates: add the new key to `trusted`,
 * then make it `signing`, then (after every token signed by the old key has been refreshed: an
 * hour for pods' projected tokens) drop the old one from `trusted`.
 */
export const serviceAccountKeysValid: Rule = (spec) => {
  const { trusted, signing } = spec.pki.serviceAccountKeys;
  return rotationSetIssues("pki.serviceAccountKeys", trusted, "signing", signing, "make it the signing key");
};

/**
 * CA rotation in three updates, as the trust anchors go: add the new CA to `trusted` (every trust
 * bundle gets it), make it `issuing` (every leaf is reissued from it), then drop the old one. The
 * local and tls backends (a CA per id in Pulumi state). Not vault: its issuers live in one mount,
 * and the provider's root certificate deletes with `DELETE <mount>/root`, every issuer of the
 * mount at once, so dropping the old CA as a resource would take the new one with it.
 */
export const certificateAuthoritiesValid: Rule = (spec) => {
  const { trusted, issuing } = spec.pki.certificateAuthorities;
  const issues = rotationSetIssues("pki.certificateAuthorities", trusted, "issuing", issuing, "make it the issuing CA");
  const rotating =
    trusted.length > 1 ||
    trusted[0] !== D.DEFAULT_CERTIFICATE_AUTHORITY_ID ||
    issuing !== D.DEFAULT_CERTIFICATE_AUTHORITY_ID;
  if (rotating && spec.pki.backend === "vault") {
    issues.push({
      path: "pki.certificateAuthorities",
      message:
        "CA rotation is built for pki.backend local and tls (got vault): remove the field, and rotate the CA in Vault with its issuers (see components/pki/README.md)",
    });
  }
  return issues;
};

/**
 * Users are unique by name (it names the certificate's resource), claim no admin rights by group
 * (the admin kubeconfig is the one holder of system:masters), and fit the backend's subject.
 */
export const pkiUsersValid: Rule = (spec) => {
  const issues: SpecIssue[] = [];
  const seen = new Set<string>();
  spec.pki.users.forEach((user, i) => {
    if (seen.has(user.name)) {
      issues.push({
        path: `pki.users[${i}].name`,
        message: `'${user.name}' is listed twice: give each user one entry`,
      });
    }
    seen.add(user.name);
    if (user.groups.includes(ADMIN_GROUP)) {
      issues.push({
        path: `pki.users[${i}].groups`,
        message: `${ADMIN_GROUP} is the admin kubeconfig's group: bind the user to cluster-admin with a ClusterRoleBinding instead`,
      });
    }
    if (spec.pki.backend === "tls" && user.groups.length > 1) {
      issues.push({
        path: `pki.users[${i}].groups`,
        message: `pki.backend tls puts one group in a certificate (got ${user.groups.length}): keep one, or use pki.backend local or vault`,
      });
    }
  });
  return issues;
};

export const RULES: readonly Rule[] = [
  uniquePoolNames,
  poolSizes,
  rangesDoNotOverlap,
  podRangeFitsNodes,
  vpcFitsSubnets,
  vaultNeedsAddress,
  caOutlivesCertificates,
  tlsTtlsInHours,
  ingressPortsDistinct,
  kvmNamespaceIsLabel,
  flannelNeedsNodeImage,
  nodeImageHoldsVersion,
  pkiUsersValid,
  serviceAccountKeysValid,
  certificateAuthoritiesValid,
  objectStoreIssues,
];

export function checkRules(spec: ClusterSpec): SpecIssue[] {
  return RULES.flatMap((rule) => rule(spec));
}
