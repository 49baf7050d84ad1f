/**
 * Security groups: what Kubernetes needs and nothing else. One rule resource per rule
 * (`aws.vpc.SecurityGroupIngressRule` / `EgressRule`), each with a stable name derived from
 * its group and purpose, so a change to one rule never touches another.
 */
import * as aws from "@pulumi/aws";
import type * as pulumi from "@pulumi/pulumi";
import {
  API_PORT,
  CALICO_TYPHA_PORT,
  CALICO_VXLAN_PORT,
  ETCD_CLIENT_PORT,
  ETCD_PEER_PORT,
  FLANNEL_VXLAN_PORT,
  KUBELET_PORT,
  ingressPorts,
} from "../spec";
import { tagsOf, type AwsComponentArgs } from "./common";

export type GroupKey = "apiLb" | "masters" | "workers" | "ingressLb";

/** Where a rule's traffic comes from (ingress) or goes to (egress). */
export type Peer = { readonly group: GroupKey } | { readonly cidr: string };

export interface SecurityGroupRuleSpec {
  readonly group: GroupKey;
  readonly direction: "ingress" | "egress";
  /** Stable part of the resource name: never change it for a released rule. */
  readonly key: string;
  /** `tcp`, `udp`, an IP protocol number or `-1` (all). */
  readonly protocol: string;
  readonly fromPort?: number;
  readonly toPort?: number;
  readonly peer: Peer;
  readonly description: string;
}

const tcp = (port: number, to = port) => ({ protocol: "tcp", fromPort: port, toPort: to });

/** Name-safe form of a CIDR: `10.0.0.0/8` → `10.0.0.0-8`. */
function cidrKey(cidr: string): string {
  return cidr.replace("/", "-");
}

const udp = (port: number) => ({ protocol: "udp", fromPort: port, toPort: port });

type NodeGroup = "masters" | "workers";

/**
 * The pod network's rules into `group` from the nodes of `from`, for the spec's CNI as
 * components/bootstrap installs it: Calico in pure VXLAN mode (VXLAN and Typha; no BGP, no
 * IP-in-IP), or flannel VXLAN. Encapsulated, every packet between nodes carries node addresses, so
 * EC2's source/destination check passes it.
 */
function podNetworkRules(spec: AwsComponentArgs["spec"], group: NodeGroup, from: NodeGroup): SecurityGroupRuleSpec[] {
  const ports =
    spec.kubernetes.cni === "flannel"
      ? [
          {
            key: "flannel-vxlan",
            ...udp(FLANNEL_VXLAN_PORT),
            description: `flannel VXLAN pod traffic from the ${from}`,
          },
        ]
      : [
          { key: "calico-vxlan", ...udp(CALICO_VXLAN_PORT), description: `Calico VXLAN pod traffic from the ${from}` },
          {
            key: "calico-typha",
            ...tcp(CALICO_TYPHA_PORT),
            description: `Calico Typha from calico-node on the ${from}`,
          },
        ];
  return ports.map(({ key, ...rule }) => ({
    ...rule,
    group,
    direction: "ingress",
    key: `${key}-from-${from}`,
    peer: { group: from },
  }));
}

/** Every rule of a cluster, as data: the resources are made from this list and tests read it. */
export function securityGroupRules(spec: AwsComponentArgs["spec"]): SecurityGroupRuleSpec[] {
  const nodes: NodeGroup[] = ["masters", "workers"];
  const rules: SecurityGroupRuleSpec[] = [];
  const add = (rule: SecurityGroupRuleSpec) => rules.push(rule);

  // API load balancer: 6443 from the nodes and the allowed CIDRs; forwards to the masters only.
  for (const group of nodes) {
    add({
      group: "apiLb",
      direction: "ingress",
      key: `api-from-${group}`,
      ...tcp(API_PORT),
      peer: { group },
      description: `Kubernetes API from the ${group}`,
    });
  }
  for (const cidr of spec.aws.apiAllowedCidrs) {
    add({
      group: "apiLb",
      direction: "ingress",
      key: `api-from-${cidrKey(cidr)}`,
      ...tcp(API_PORT),
      peer: { cidr },
      description: `Kubernetes API from ${cidr} (aws.apiAllowedCidrs)`,
    });
  }
  add({
    group: "apiLb",
    direction: "egress",
    key: "api-to-masters",
    ...tcp(API_PORT),
    peer: { group: "masters" },
    description: "Kubernetes API to the masters (traffic and health checks)",
  });

  // Masters.
  add({
    group: "masters",
    direction: "ingress",
    key: "api-from-api-lb",
    ...tcp(API_PORT),
    peer: { group: "apiLb" },
    description: "Kubernetes API from the API load balancer",
  });
  for (const group of nodes) {
    add({
      group: "masters",
      direction: "ingress",
      key: `api-from-${group}`,
      ...tcp(API_PORT),
      peer: { group },
      description: `Kubernetes API from the ${group} (service IP kubernetes.default)`,
    });
  }
  add({
    group: "masters",
    direction: "ingress",
    key: "etcd-from-masters",
    ...tcp(ETCD_CLIENT_PORT, ETCD_PEER_PORT),
    peer: { group: "masters" },
    description: "etcd client and peer traffic between masters only",
  });

  // Both node groups: kubelet from the masters, the pod network among the nodes.
  for (const group of nodes) {
    add({
      group,
      direction: "ingress",
      key: "kubelet-from-masters",
      ...tcp(KUBELET_PORT),
      peer: { group: "masters" },
      description: "kubelet API from the API servers (logs, exec, metrics)",
    });
    for (const from of nodes) podNetworkRules(spec, group, from).forEach(add);
    add({
      group,
      direction: "egress",
      key: "all",
      protocol: "-1",
      peer: { cidr: "0.0.0.0/0" },
      description: "Outbound to the cluster, AWS APIs and image registries (through NAT)",
    });
  }

  // Ingress load balancer: 80/443 from anywhere, to the workers' ingress node ports only.
  if (spec.ingress.enabled) {
    for (const p of ingressPorts(spec)) {
      add({
        group: "ingressLb",
        direction: "ingress",
        key: `${p.key}-from-anywhere`,
        ...tcp(p.port),
        peer: { cidr: "0.0.0.0/0" },
        description: `${p.key.toUpperCase()} ingress from the internet`,
      });
      add({
        group: "ingressLb",
        direction: "egress",
        key: `${p.key}-to-workers`,
        ...tcp(p.nodePort),
        peer: { group: "workers" },
        description: `${p.key.toUpperCase()} to the workers' ingress node port`,
      });
      add({
        group: "workers",
        direction: "ingress",
        key: `ingress-${p.key}-from-ingress-lb`,
        ...tcp(p.nodePort),
        peer: { group: "ingressLb" },
        description: `Ingress ${p.key} node port from the ingress load balancer`,
      });
    }
  }
  return rules;
}

export interface SecurityGroupsArgs extends AwsComponentArgs {
  readonly vpcId: pulumi.Input<string>;
}

export type SecurityGroups = Readonly<Record<GroupKey, aws.ec2.SecurityGroup | undefined>> & {
  readonly apiLb: aws.ec2.SecurityGroup;
  readonly masters: aws.ec2.SecurityGroup;
  readonly workers: aws.ec2.SecurityGroup;
};

const GROUP_ROLES: Record<GroupKey, { role: string; description: string }> = {
  apiLb: { role: "api-lb", description: "Kubernetes API load balancer" },
  masters: { role: "masters", description: "Kubernetes masters" },
  workers: { role: "workers", description: "Kubernetes workers" },
  ingressLb: { role: "ingress-lb", description: "Ingress load balancer" },
};

/** The resource name of a rule: `${name}-sg-<group>-<in|out>-<key>`. */
export function ruleName(name: string, rule: SecurityGroupRuleSpec): string {
  return `${name}-sg-${GROUP_ROLES[rule.group].role}-${rule.direction === "ingress" ? "in" : "out"}-${rule.key}`;
}

/** @internal */
export function createSecurityGroups(
  name: string,
  args: SecurityGroupsArgs,
  opts: pulumi.CustomResourceOptions,
): SecurityGroups {
  const keys: GroupKey[] = ["apiLb", "masters", "workers"];
  if (args.spec.ingress.enabled) keys.push("ingressLb");
  const groups: Partial<Record<GroupKey, aws.ec2.SecurityGroup>> = {};
  for (const key of keys) {
    const sgName = `${name}-sg-${GROUP_ROLES[key].role}`;
    groups[key] = new aws.ec2.SecurityGroup(
      sgName,
      {
        vpcId: args.vpcId,
        description: `g8s ${args.spec.id}: ${GROUP_ROLES[key].description}`,
        // No inline rules: every rule is its own resource below.
        tags: tagsOf(args, sgName),
      },
      opts,
    );
  }
  const group = (key: GroupKey): aws.ec2.SecurityGroup => {
    const found = groups[key];
    if (found === undefined) throw new Error(`internal: no security group ${key}`);
    return found;
  };

  for (const rule of securityGroupRules(args.spec)) {
    const sg = group(rule.group);
    const ruleArgs = {
      securityGroupId: sg.id,
      ipProtocol: rule.protocol,
      fromPort: rule.fromPort,
      toPort: rule.toPort,
      description: rule.description,
      ...("cidr" in rule.peer
        ? { cidrIpv4: rule.peer.cidr }
        : { referencedSecurityGroupId: group(rule.peer.group).id }),
      tags: tagsOf(args, ruleName(name, rule)),
    };
    if (rule.direction === "ingress") {
      new aws.vpc.SecurityGroupIngressRule(ruleName(name, rule), ruleArgs, { parent: sg });
    } else {
      new aws.vpc.SecurityGroupEgressRule(ruleName(name, rule), ruleArgs, { parent: sg });
    }
  }
  return { apiLb: group("apiLb"), masters: group("masters"), workers: group("workers"), ingressLb: groups.ingressLb };
}
