/**
 * The ClusterSpec reference in README.md, generated from the schema so that it cannot drift:
 * `npm run docs` rewrites the section and a unit test fails when it is stale or when a schema
 * field has no description here.
 */
import type { z } from "zod";
import { API_PORT, CLUSTER_TAG_KEY } from "./conventions";
import { awsClusterSchema, kvmClusterSchema, reconcileSchema } from "./schema";

export const REFERENCE_START = "<!-- spec-reference:start (npm run docs) -->";
export const REFERENCE_END = "<!-- spec-reference:end -->";

/** One line of explanation per field path; `[]` stands for every entry of a list. */
export const FIELD_DOCS: Record<string, string> = {
  id: "Cluster id: a DNS label of at most 20 characters, equal to the stack name.",
  provider: "Where the cluster runs: `aws` or `kvm` (`libvirt` is reserved).",
  baseDomain: "Parent DNS zone; the cluster domain is `<id>.<baseDomain>`.",
  kubernetes: "Kubernetes version and the cluster's address ranges.",
  "kubernetes.version":
    "Concrete `x.y.z` release of a supported minor. A running cluster takes a newer patch or the next minor only, never an older version (every pass and `g8s plan` check it against the version the stack was last applied with).",
  "kubernetes.serviceCidr": "Service IP range (/12 to /24); must not overlap the pod range or the VPC.",
  "kubernetes.podCidr": "Pod IP range (/8 to /22), a /24 per node; must be large enough for every node.",
  "kubernetes.cni":
    "Pod network: `calico` (operator manifest fetched at boot) or `flannel` (VXLAN, from the node image: needs `packages: image`).",
  "kubernetes.packages":
    "`apt`: nodes install kubelet, kubeadm and kubectl from pkgs.k8s.io and pull images; `image`: the node image holds them all, nothing is fetched at boot.",
  aws: "AWS placement (only with `provider: aws`).",
  "aws.region": "AWS region, e.g. `eu-central-1`.",
  "aws.availabilityZones": "How many availability zones the cluster spans (1 to 6).",
  "aws.vpcCidr": "VPC range (/16 to /22); a public and a private subnet per zone are carved from it.",
  "aws.natGateways": "`perAz` (one NAT gateway per zone) or `single` (cheaper, one zone's outage cuts egress).",
  "aws.publicApi": "Internet-facing API load balancer; otherwise internal.",
  "aws.apiAllowedCidrs": `Extra ranges allowed to reach the API on ${API_PORT}.`,
  "aws.apiAllowedCidrs[]": "An IPv4 CIDR.",
  kvm: "Host-cluster placement (only with `provider: kvm`).",
  "kvm.storage": "Node disks on `persistentVolume` claims or on the host's `hostPath`.",
  "kvm.storageClass": "Storage class of the disk claims; unset uses the host cluster's default.",
  "kvm.image": "Container image that runs QEMU for each guest node.",
  "kvm.namespacePrefix": "The guest cluster's namespace on the host is `<prefix><id>`.",
  "kvm.apiService": "Service type of the guest API: `ClusterIP`, `NodePort` or `LoadBalancer`.",
  "kvm.accel":
    "QEMU acceleration: `kvm`, `tcg` (emulation, no `/dev/kvm` requested, ~50x slower) or `auto` (KVM, else TCG).",
  masters: "Control-plane nodes (etcd runs on each).",
  "masters.count": "1, 3 or 5: etcd needs an odd quorum.",
  "masters.instanceType": "EC2 instance type (aws).",
  "masters.etcdVolumeGiB": "Size of the dedicated etcd volume (aws).",
  "masters.cpus": "Virtual CPUs per master VM (kvm).",
  "masters.memoryGiB": "Memory per master VM (kvm).",
  "masters.diskGiB": "Disk per master VM, etcd included (kvm).",
  nodePools: "Worker node pools (1 to 20); keyed by name, so reordering changes nothing.",
  "nodePools[]": "One pool.",
  "nodePools[].name": "Unique DNS label of at most 20 characters; part of resource names, never rename.",
  "nodePools[].instanceType": "EC2 instance type (aws).",
  "nodePools[].min": "Autoscaling lower bound (aws).",
  "nodePools[].max": "Autoscaling upper bound, ≥ min (aws).",
  "nodePools[].desired": "Initial size between min and max (aws); defaults to min.",
  "nodePools[].spot": "Run the pool on spot instances (aws).",
  "nodePools[].rootVolumeGiB": "Root volume size (aws).",
  "nodePools[].count": "Fixed number of nodes (kvm).",
  "nodePools[].cpus": "Virtual CPUs per node VM (kvm).",
  "nodePools[].memoryGiB": "Memory per node VM (kvm).",
  "nodePools[].diskGiB": "Disk per node VM (kvm).",
  "nodePools[].labels": "Kubernetes labels on the pool's nodes.",
  "nodePools[].taints": "Kubernetes taints on the pool's nodes.",
  "nodePools[].taints[]": "One taint.",
  "nodePools[].taints[].key": "Taint key.",
  "nodePools[].taints[].value": "Taint value.",
  "nodePools[].taints[].effect": "`NoSchedule`, `PreferNoSchedule` or `NoExecute`.",
  pki: "The cluster's certificate authority and certificates.",
  "pki.backend":
    "`vault` (root CA inside Vault, production), `tls` (CA in Pulumi state, development and edge) or `local` " +
    "(CA in Pulumi state from built-in dynamic providers, no provider plugin: air-gapped and edge sites).",
  "pki.vault": "Vault connection (only with `backend: vault`); the token comes from `g8s:vaultToken` or `VAULT_TOKEN`.",
  "pki.vault.address": "Vault URL; required with `backend: vault`.",
  "pki.vault.namespace": "Vault Enterprise namespace.",
  "pki.certTtl": "Lifetime of every issued certificate (1h to 720h); renewed at half of it.",
  "pki.caTtl": "Lifetime of the cluster's root CA; at least twice `certTtl`.",
  "pki.users":
    "Who gets a client-certificate kubeconfig (stack output `userKubeconfigs.<name>`, secret), renewed with the other certificates.",
  "pki.users[]": "One user.",
  "pki.certificateAuthorities":
    "Root CAs by id (backends `local` and `tls`). Rotate in three updates: add a new CA to `trusted` (every trust bundle gets it), make it `issuing` (every certificate is reissued from it), then drop the old one.",
  "pki.certificateAuthorities.trusted":
    "Ids of the CAs every component trusts (1 to 3); a new id makes a new CA, a removed one is deleted. Default `[initial]`.",
  "pki.certificateAuthorities.trusted[]": "One CA id (lowercase letters, digits and `-`).",
  "pki.certificateAuthorities.issuing":
    "Id of the CA that issues every certificate; must be in `trusted`. Default `initial`.",
  "pki.serviceAccountKeys":
    "The keys of service-account tokens. Rotate in three updates: add a new key to `trusted`, make it `signing`, then (an hour later at least) drop the old one from `trusted`.",
  "pki.serviceAccountKeys.trusted":
    "Ids of the keys the API server accepts tokens from (1 to 3); a new id makes a new key, a removed one is deleted. Default `[initial]`.",
  "pki.serviceAccountKeys.trusted[]": "One key id (lowercase letters, digits and `-`).",
  "pki.serviceAccountKeys.signing": "Id of the key that signs new tokens; must be in `trusted`. Default `initial`.",
  "pki.users[].name":
    "The certificate's CN: the RBAC user name (lowercase letters, digits, `.`, `_`, `@`, `-`); unique.",
  "pki.users[].groups":
    "The certificate's O values: the RBAC groups (not `system:masters`; one group with `backend: tls`).",
  "pki.users[].groups[]": "One group.",
  ingress: "Ingress load balancing to the workers.",
  "ingress.enabled": "Create the ingress load balancer and the wildcard record `*.<id>.<baseDomain>`.",
  "ingress.httpNodePort": "Node port the ingress controller serves HTTP on.",
  "ingress.httpsNodePort": "Node port the ingress controller serves HTTPS on.",
  etcd: "The masters' etcd members.",
  "etcd.backup":
    "Snapshots of each master's etcd member (`g8s-etcd-snapshot.timer`), verified and kept on the master's etcd volume under `/var/lib/etcd-disk/snapshots`; restore with `g8s-etcd-restore` (runbook in components/bootstrap/README.md).",
  "etcd.backup.enabled": "Take snapshots.",
  "etcd.backup.interval": "Time between two snapshots (15m to 168h).",
  "etcd.backup.retention":
    "Snapshots each master keeps, the newest (1 to 200), on its volume and (outside AWS) in the object store; a snapshot is refused while the volume lacks room for two more of the database's size.",
  "etcd.backup.objectStore":
    "A copy of every snapshot off the masters' volumes, in S3 or an S3-compatible store (single PUT: 5 GiB at most). `g8s-etcd-restore` fetches a snapshot from there when its master no longer has it.",
  "etcd.backup.objectStore.enabled": "Copy snapshots. Default: on for aws, on elsewhere when `endpoint` is set.",
  "etcd.backup.objectStore.endpoint":
    "Outside AWS: the S3-compatible store's URL, `https://host[:port]` (path-style addressing). Not on aws.",
  "etcd.backup.objectStore.bucket":
    "The bucket. aws: default a bucket g8s makes, `g8s-<id>-etcd-<hash>`, private and encrypted, kept when the stack is destroyed; a named bucket must exist. Required elsewhere.",
  "etcd.backup.objectStore.region": "The region requests are signed for. Default: `aws.region`, else us-east-1.",
  "etcd.backup.objectStore.prefix": "Before each object's name, ending in `/`. Default: `<id>/`.",
  "etcd.backup.objectStore.credentialsSecret":
    "Outside AWS: a Secret in the cluster's host-cluster namespace with keys `accessKeyId` and `secretAccessKey`, shared into the masters only (g8s never reads it). Not on aws: masters use their instance role.",
  "etcd.backup.objectStore.expireAfterDays":
    "aws, the bucket g8s makes: its lifecycle rule deletes a snapshot this many days after upload (1 to 3650, default 30; at least retention × interval). Masters may write and read snapshots there, never delete.",
  tags: `Extra tags or labels on every cloud resource (\`${CLUSTER_TAG_KEY}\` is always set).`,
  "g8s:reconcile": "How the reconciler treats this stack (a sibling config key of `g8s:cluster`).",
  "g8s:reconcile.mode": "`correct` (detect and undo drift), `detect` (report only) or `off`.",
  "g8s:reconcile.interval": "Time between two passes (10s to 24h); jitter is added.",
};

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  entries?: Record<string, string>;
  values?: unknown[];
  defaultValue?: unknown;
  valueType?: z.ZodType;
}

export interface FieldRow {
  readonly path: string;
  readonly type: string;
  readonly default?: string;
  readonly required: boolean;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

function typeName(def: Def): string {
  switch (def.type) {
    case "enum":
      return Object.values(def.entries ?? {}).join(" \\| ");
    case "literal":
      return (def.values ?? []).map(String).join(" \\| ");
    case "record":
      return "map of string";
    case "array":
      return "list";
    case "object":
      return "mapping";
    case "number":
      return "integer";
    default:
      return def.type;
  }
}

/** Every field of a schema, depth first, with type, default and whether it must be set. */
export function schemaFields(schema: z.ZodType, prefix = ""): FieldRow[] {
  const rows: FieldRow[] = [];
  const visit = (node: z.ZodType, path: string, required: boolean, dflt?: string): void => {
    const def = defOf(node);
    if (def.type === "default" || def.type === "prefault") {
      const value = def.defaultValue;
      const shown =
        typeof value === "object"
          ? JSON.stringify(value) === "{}"
            ? undefined
            : JSON.stringify(value)
          : String(value);
      return visit(def.innerType as z.ZodType, path, false, shown ?? dflt);
    }
    if (def.type === "optional") return visit(def.innerType as z.ZodType, path, false, dflt);
    if (def.type === "pipe") return visit(def.in as z.ZodType, path, required, dflt);
    if (path !== "") rows.push({ path, type: typeName(def), default: dflt, required });
    if (def.type === "object") {
      for (const [key, child] of Object.entries(def.shape ?? {})) {
        visit(child, path === "" ? key : `${path}.${key}`, true);
      }
    } else if (def.type === "array") {
      visit(def.element as z.ZodType, `${path}[]`, true);
    }
  };
  visit(schema, prefix, true);
  return rows;
}

/** The union of the aws and kvm fields, then `g8s:reconcile`, each path once. */
export function specFields(): FieldRow[] {
  const seen = new Map<string, FieldRow>();
  for (const row of [
    ...schemaFields(awsClusterSchema),
    ...schemaFields(kvmClusterSchema),
    ...schemaFields(reconcileSchema, "g8s:reconcile"),
  ]) {
    const earlier = seen.get(row.path);
    if (!earlier) seen.set(row.path, row);
    else if (earlier.type !== row.type) seen.set(row.path, { ...earlier, type: `${earlier.type} \\| ${row.type}` });
  }
  return [...seen.values()];
}

/** The Markdown table in README.md, between the markers. */
export function renderSpecReference(): string {
  const lines = [
    "| field | type | default | meaning |",
    "| --- | --- | --- | --- |",
    ...specFields().map((f) => {
      const dflt = f.required ? "**required**" : f.default === undefined ? "–" : `\`${f.default}\``;
      const doc = FIELD_DOCS[f.path] ?? "";
      return `| \`${f.path}\` | ${f.type} | ${dflt} | ${doc} |`;
    }),
  ];
  return lines.join("\n");
}
