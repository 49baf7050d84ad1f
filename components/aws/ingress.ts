/**
 * AwsIngress (`g8s:aws:Ingress`, when `spec.ingress.enabled`): an internet-facing NLB for 80/443
 * that forwards to the workers' ingress node ports (TCP: TLS ends at the in-cluster ingress
 * controller), target groups attached to every pool's ASG, and `*.<id>.<baseDomain>`.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { LOAD_BALANCER_TAG, ingressDnsName, ingressPorts } from "../spec";
import { TCP_HEALTH_CHECK, tagsOf, type AwsComponentArgs } from "./common";

export interface AwsIngressArgs extends AwsComponentArgs {
  readonly vpcId: pulumi.Input<string>;
  readonly publicSubnetIds: pulumi.Input<string>[];
  readonly securityGroupId: pulumi.Input<string>;
  /** Every pool's ASG name, keyed by pool name (attachment names use the key). */
  readonly autoScalingGroupNames: Readonly<Record<string, pulumi.Input<string>>>;
  /** Route53 hosted zone of `baseDomain`. */
  readonly zoneId: pulumi.Input<string>;
}

export interface IngressResult {
  readonly loadBalancer: aws.lb.LoadBalancer;
  readonly targetGroups: Record<"http" | "https", aws.lb.TargetGroup>;
  readonly record: aws.route53.Record;
}

/** @internal */
export function createIngress(name: string, args: AwsIngressArgs, opts: pulumi.CustomResourceOptions): IngressResult {
  const { spec } = args;
  const loadBalancer = new aws.lb.LoadBalancer(
    `${name}-lb`,
    {
      loadBalancerType: "network",
      internal: false,
      subnets: args.publicSubnetIds,
      securityGroups: [args.securityGroupId],
      enableCrossZoneLoadBalancing: true,
      tags: { ...tagsOf(args, `${name}-lb`), [LOAD_BALANCER_TAG]: "ingress" },
    },
    opts,
  );
  const targetGroups = {} as Record<"http" | "https", aws.lb.TargetGroup>;
  for (const port of ingressPorts(spec)) {
    const key = port.key;
    const targetGroup = new aws.lb.TargetGroup(
      `${name}-tg-${key}`,
      {
        vpcId: args.vpcId,
        port: port.nodePort,
        protocol: "TCP",
        targetType: "instance",
        // Off, so the workers' security group can trust the load balancer's group.
        preserveClientIp: "false",
        deregistrationDelay: 30,
        healthCheck: TCP_HEALTH_CHECK,
        tags: tagsOf(args, `${name}-tg-${key}`),
      },
      { parent: loadBalancer },
    );
    targetGroups[key] = targetGroup;
    new aws.lb.Listener(
      `${name}-listener-${key}`,
      {
        loadBalancerArn: loadBalancer.arn,
        port: port.port,
        protocol: "TCP",
        defaultActions: [{ type: "forward", targetGroupArn: targetGroup.arn }],
        tags: tagsOf(args, `${name}-listener-${key}`),
      },
      { parent: loadBalancer },
    );
    for (const pool of Object.keys(args.autoScalingGroupNames).sort()) {
      new aws.autoscaling.Attachment(
        `${name}-attach-${key}-${pool}`,
        { autoscalingGroupName: args.autoScalingGroupNames[pool], lbTargetGroupArn: targetGroup.arn },
        { parent: targetGroup },
      );
    }
  }
  const record = new aws.route53.Record(
    `${name}-record`,
    {
      zoneId: args.zoneId,
      name: ingressDnsName(spec),
      type: "A",
      aliases: [{ name: loadBalancer.dnsName, zoneId: loadBalancer.zoneId, evaluateTargetHealth: true }],
    },
    opts,
  );
  return { loadBalancer, targetGroups, record };
}

export class AwsIngress extends pulumi.ComponentResource {
  public readonly loadBalancerDnsName: pulumi.Output<string>;
  /** @internal */
  public readonly result: IngressResult;

  constructor(name: string, args: AwsIngressArgs, opts?: pulumi.ComponentResourceOptions) {
    super("g8s:aws:Ingress", name, {}, opts);
    if (!args.spec.ingress.enabled) {
      throw new pulumi.ResourceError(
        "Ingress needs spec.ingress.enabled: create it only for clusters with ingress",
        this,
      );
    }
    this.result = createIngress(name, args, { parent: this });
    this.loadBalancerDnsName = this.result.loadBalancer.dnsName;
    this.registerOutputs({ loadBalancerDnsName: this.loadBalancerDnsName });
  }
}
