/** Shared fixtures of the AWS component tests: type tokens, a spec, provider-computed outputs, one build. */
import type * as pulumi from "@pulumi/pulumi";
import { parseClusterSpec, type AwsClusterSpec } from "../../../components/spec";
import { promiseOf, settle, type MockRecorder } from "../mocks";
import { awsSpec, withChange } from "../spec/helpers";

type AwsModule = typeof import("../../../components/aws");

export const T = {
  provider: "pulumi:providers:aws",
  cluster: "g8s:aws:Cluster",
  network: "g8s:aws:Network",
  controlPlane: "g8s:aws:ControlPlane",
  nodePool: "g8s:aws:NodePool",
  ingress: "g8s:aws:Ingress",
  vpc: "aws:ec2/vpc:Vpc",
  subnet: "aws:ec2/subnet:Subnet",
  igw: "aws:ec2/internetGateway:InternetGateway",
  eip: "aws:ec2/eip:Eip",
  nat: "aws:ec2/natGateway:NatGateway",
  routeTable: "aws:ec2/routeTable:RouteTable",
  route: "aws:ec2/route:Route",
  rta: "aws:ec2/routeTableAssociation:RouteTableAssociation",
  endpoint: "aws:ec2/vpcEndpoint:VpcEndpoint",
  sg: "aws:ec2/securityGroup:SecurityGroup",
  ingressRule: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  egressRule: "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
  volume: "aws:ebs/volume:Volume",
  eni: "aws:ec2/networkInterface:NetworkInterface",
  lt: "aws:ec2/launchTemplate:LaunchTemplate",
  asg: "aws:autoscaling/group:Group",
  asgAttachment: "aws:autoscaling/attachment:Attachment",
  lb: "aws:lb/loadBalancer:LoadBalancer",
  tg: "aws:lb/targetGroup:TargetGroup",
  tgAttachment: "aws:lb/targetGroupAttachment:TargetGroupAttachment",
  listener: "aws:lb/listener:Listener",
  record: "aws:route53/record:Record",
  role: "aws:iam/role:Role",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  profile: "aws:iam/instanceProfile:InstanceProfile",
  kms: "aws:kms/key:Key",
  kmsAlias: "aws:kms/alias:Alias",
  param: "aws:ssm/parameter:Parameter",
  bucket: "aws:s3/bucket:Bucket",
  bucketLifecycle: "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
  bucketPublicAccess: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  bucketEncryption: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  bucketOwnership: "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
} as const;

export const ZONES_TOKEN = "aws:index/getAvailabilityZones:getAvailabilityZones";
export const GET_ZONE_TOKEN = "aws:route53/getZone:getZone";
export const ACCOUNT = "123456789012";
export const REGION = "eu-central-1";
export const ZONE_NAMES = ["eu-central-1a", "eu-central-1b", "eu-central-1c"];

/** Fake secret values: they must reach SSM and nothing else. */
export const FAKE_SECRETS = {
  master: { "ca.key": "FAKE-CA-KEY-5a1b", "etcd.key": "FAKE-ETCD-KEY-77c2" },
  worker: { "bootstrap-token": "FAKE-TOKEN-abcdef.0123456789abcdef" },
} as const;

/** eu1prod with the changes a test needs. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw spec edits, as in spec/helpers
export function clusterSpec(change: (spec: Record<string, any>) => void = () => {}): AwsClusterSpec {
  const spec = parseClusterSpec(withChange(awsSpec(), change));
  if (spec.provider !== "aws") throw new Error("expected an aws spec");
  return spec;
}

/** eu1prod as in stacks/: pools `general` and spot `batch` (labels, taints), an allowed API CIDR, a team tag. */
export function eu1prodSpec(): AwsClusterSpec {
  return clusterSpec((s) => {
    s.aws.apiAllowedCidrs = ["192.0.2.0/24"];
    s.nodePools = [
      { name: "general", instanceType: "m6i.xlarge", min: 3, max: 10 },
      {
        name: "batch",
        instanceType: "c6i.2xlarge",
        min: 0,
        max: 20,
        spot: true,
        labels: { "workload.example.com/class": "batch" },
        taints: [{ key: "workload.example.com/batch", value: "true", effect: "NoSchedule" }],
      },
    ];
    s.tags = { team: "platform" };
  });
}

/** What AWS computes and the components read: ARNs, DNS names, versions. */
export function fakeAwsOutputs(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  const id = `${args.name}-id`;
  switch (args.type) {
    case T.kms:
      return { arn: `arn:aws:kms:${REGION}:${ACCOUNT}:key/${id}`, keyId: id };
    case T.volume:
      return { arn: `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/${id}` };
    case T.eni:
      return { arn: `arn:aws:ec2:${REGION}:${ACCOUNT}:network-interface/${id}` };
    case T.lb:
      return {
        arn: `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:loadbalancer/net/${id}`,
        dnsName: `${args.name}.elb.amazonaws.com`,
        zoneId: "Z3F0SRJ5LGBH90",
      };
    case T.tg:
      return { arn: `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:targetgroup/${id}` };
    case T.lt:
      return { latestVersion: 1 };
    case T.asg:
      return {
        name: `${args.name}-asg-name`,
        arn: `arn:aws:autoscaling:${REGION}:${ACCOUNT}:autoScalingGroup:${id}:autoScalingGroupName/${args.name}-asg-name`,
      };
    case T.role:
      return { name: `${args.name}-name`, arn: `arn:aws:iam::${ACCOUNT}:role/${args.name}` };
    case T.profile:
      return { arn: `arn:aws:iam::${ACCOUNT}:instance-profile/${args.name}` };
    case T.bucket:
      return { arn: `arn:aws:s3:::${String(args.inputs.bucket)}` };
    case T.record:
      return { fqdn: args.inputs.name };
    default:
      return {};
  }
}

export function stubZones(recorder: MockRecorder, names: string[] = ZONE_NAMES): void {
  recorder.calls.set(ZONES_TOKEN, () => ({ names, zoneIds: names.map((n) => `euc1-${n.slice(-1)}`), id: REGION }));
}

export interface Built {
  readonly cluster: InstanceType<AwsModule["AwsCluster"]>;
  readonly userData: Map<string, string>;
}

/** Builds an AwsCluster with user-data that only references secrets, and waits for every child. */
export async function build(
  mod: AwsModule,
  spec: AwsClusterSpec,
  options: { lookupZone?: boolean } = {},
): Promise<Built> {
  const userData = new Map<string, string>();
  const cluster = new mod.AwsCluster(spec.id, {
    spec,
    ...(options.lookupZone ? {} : { zoneId: "Z0123456789" }),
    nodeSecrets: { master: { ...FAKE_SECRETS.master }, worker: { ...FAKE_SECRETS.worker } },
    userData: {
      master: (slot, refs) => {
        const text = `#cloud-config\n# ${refs.key} ${refs.privateIp} ${mod.parameterName(spec.id, "master", "ca.key")}\n`;
        userData.set(`master-${slot}`, text);
        return Buffer.from(text).toString("base64");
      },
      pool: (pool) => {
        const text = `#cloud-config\n# pool ${pool} ${mod.parameterName(spec.id, "worker", "bootstrap-token")}\n`;
        userData.set(pool, text);
        return Buffer.from(text).toString("base64");
      },
    },
  });
  await promiseOf(cluster.vpcId);
  await promiseOf(cluster.ingressDnsName);
  await settle();
  return { cluster, userData };
}
