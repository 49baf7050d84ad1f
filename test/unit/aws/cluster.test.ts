/**
 * AwsCluster under mocks (eu1prod: 3 zones, 3 masters, pools `general` and spot `batch`,
 * ingress on): security groups, control plane, node pools, ingress, IAM, secrets and tags.
 */
import * as assert from "node:assert/strict";
import { installMocks, promiseOf, type MockRecorder, type RecordedResource } from "../mocks";
import {
  FAKE_SECRETS,
  T,
  ZONE_NAMES,
  build,
  clusterSpec,
  eu1prodSpec,
  fakeAwsOutputs,
  stubZones,
  type Built,
} from "./helpers";

/* eslint-disable @typescript-eslint/no-explicit-any -- parsed policy JSON */

const ZONES = ZONE_NAMES;
/** The value of a serialized Pulumi secret; fails when `value` is not one. */
function secretValue(value: unknown): unknown {
  const v = value as Record<string, unknown>;
  assert.equal(v["4dabf18193072939515e22adb298388d"], "1b47061264138c4ac30d75fd1eb44270", "not a secret");
  return v.value;
}
const privateSubnet = (zone: string) => `eu1prod-net-subnet-private-${zone}-id`;
const publicSubnet = (zone: string) => `eu1prod-net-subnet-public-${zone}-id`;

describe("AwsCluster (eu1prod)", () => {
  let recorder: MockRecorder;
  let built: Built;

  before(async () => {
    recorder = installMocks({ outputs: fakeAwsOutputs });
    stubZones(recorder);
    const mod = await import("../../../components/aws");
    built = await build(mod, eu1prodSpec());
  });

  describe("provider and outputs", () => {
    it("creates an explicit provider for the spec's region with the cluster tag and spec.tags as default tags", () => {
      const provider = recorder.one(T.provider, "eu1prod-provider");
      assert.equal(provider.inputs.region, "eu-central-1");
      const defaultTags = provider.inputs.defaultTags;
      const parsed = typeof defaultTags === "string" ? JSON.parse(defaultTags) : defaultTags;
      assert.deepEqual(parsed, { tags: { "g8s.io/cluster": "eu1prod", team: "platform" } });
    });

    it("gives every AWS resource that provider and a parent inside the cluster", () => {
      for (const r of recorder.resources.filter((r) => r.custom && r.type !== T.provider)) {
        assert.match(r.provider ?? "", /pulumi:providers:aws::eu1prod-provider::/, `${r.type} ${r.name}`);
        assert.ok(r.parent && !r.parent.includes("pulumi:pulumi:Stack"), `${r.type} ${r.name}`);
      }
      for (const type of [T.provider, T.network, T.controlPlane, T.nodePool, T.ingress]) {
        for (const r of recorder.byType(type)) assert.match(r.parent ?? "", /g8s:aws:Cluster::eu1prod$/, r.name);
      }
    });

    it("exports the API endpoint, load balancer names, VPC and subnets", async () => {
      const c = built.cluster;
      assert.equal(await promiseOf(c.apiEndpoint), "https://api.eu1prod.k8s.example.com:6443");
      assert.equal(await promiseOf(c.apiLoadBalancerDnsName), "eu1prod-cp-api-lb.elb.amazonaws.com");
      assert.equal(await promiseOf(c.ingressDnsName), "eu1prod-ingress-lb.elb.amazonaws.com");
      assert.equal(await promiseOf(c.vpcId), "eu1prod-net-vpc-id");
      assert.deepEqual(await promiseOf(c.privateSubnetIds), ZONES.map(privateSubnet));
      assert.deepEqual(await promiseOf(c.publicSubnetIds), ZONES.map(publicSubnet));
      assert.deepEqual(await promiseOf(c.availabilityZones), ZONES);
      assert.deepEqual(c.masterAddresses, {
        "master-0": "10.1.0.10",
        "master-1": "10.1.16.11",
        "master-2": "10.1.32.12",
      });
    });
  });

  describe("security groups", () => {
    const SG = { "api-lb": "apiLb", masters: "masters", workers: "workers", "ingress-lb": "ingressLb" };
    type Row = [name: string, protocol: string, from: number | undefined, to: number | undefined, peer: string];
    const inRules: Row[] = [
      ["api-lb-in-api-from-masters", "tcp", 6443, 6443, "masters"],
      ["api-lb-in-api-from-workers", "tcp", 6443, 6443, "workers"],
      ["api-lb-in-api-from-192.0.2.0-24", "tcp", 6443, 6443, "192.0.2.0/24"],
      ["masters-in-api-from-api-lb", "tcp", 6443, 6443, "api-lb"],
      ["masters-in-api-from-masters", "tcp", 6443, 6443, "masters"],
      ["masters-in-api-from-workers", "tcp", 6443, 6443, "workers"],
      ["masters-in-etcd-from-masters", "tcp", 2379, 2380, "masters"],
      ["masters-in-kubelet-from-masters", "tcp", 10250, 10250, "masters"],
      ["masters-in-calico-typha-from-masters", "tcp", 5473, 5473, "masters"],
      ["masters-in-calico-vxlan-from-masters", "udp", 4789, 4789, "masters"],
      ["masters-in-calico-typha-from-workers", "tcp", 5473, 5473, "workers"],
      ["masters-in-calico-vxlan-from-workers", "udp", 4789, 4789, "workers"],
      ["workers-in-kubelet-from-masters", "tcp", 10250, 10250, "masters"],
      ["workers-in-calico-typha-from-masters", "tcp", 5473, 5473, "masters"],
      ["workers-in-calico-vxlan-from-masters", "udp", 4789, 4789, "masters"],
      ["workers-in-calico-typha-from-workers", "tcp", 5473, 5473, "workers"],
      ["workers-in-calico-vxlan-from-workers", "udp", 4789, 4789, "workers"],
      ["workers-in-ingress-http-from-ingress-lb", "tcp", 30080, 30080, "ingress-lb"],
      ["workers-in-ingress-https-from-ingress-lb", "tcp", 30443, 30443, "ingress-lb"],
      ["ingress-lb-in-http-from-anywhere", "tcp", 80, 80, "0.0.0.0/0"],
      ["ingress-lb-in-https-from-anywhere", "tcp", 443, 443, "0.0.0.0/0"],
    ];
    const outRules: Row[] = [
      ["api-lb-out-api-to-masters", "tcp", 6443, 6443, "masters"],
      ["masters-out-all", "-1", undefined, undefined, "0.0.0.0/0"],
      ["workers-out-all", "-1", undefined, undefined, "0.0.0.0/0"],
      ["ingress-lb-out-http-to-workers", "tcp", 30080, 30080, "workers"],
      ["ingress-lb-out-https-to-workers", "tcp", 30443, 30443, "workers"],
    ];

    it("creates the four groups in the VPC, without inline rules", () => {
      assert.deepEqual(
        recorder
          .byType(T.sg)
          .map((r) => r.name)
          .sort(),
        Object.keys(SG)
          .map((g) => `eu1prod-sg-${g}`)
          .sort(),
      );
      for (const sg of recorder.byType(T.sg)) {
        assert.equal(sg.inputs.vpcId, "eu1prod-net-vpc-id");
        assert.equal(sg.inputs.ingress, undefined);
        assert.equal(sg.inputs.egress, undefined);
      }
    });

    const rowOf = (r: RecordedResource): Row => {
      const i = r.inputs as any;
      const peer =
        i.cidrIpv4 ??
        String(i.referencedSecurityGroupId)
          .replace(/^eu1prod-sg-/, "")
          .replace(/-id$/, "");
      return [r.name.replace(/^eu1prod-sg-/, ""), i.ipProtocol, i.fromPort, i.toPort, peer];
    };

    it("opens exactly these ingress rules, one resource each, on the right group", () => {
      const rules = recorder.byType(T.ingressRule);
      assert.deepEqual(rules.map(rowOf).sort(), [...inRules].sort());
      for (const r of rules) {
        const group = r.name.replace(/^eu1prod-sg-/, "").replace(/-in-.*$/, "");
        assert.equal(r.inputs.securityGroupId, `eu1prod-sg-${group}-id`, r.name);
      }
    });

    it("opens exactly these egress rules", () => {
      assert.deepEqual(recorder.byType(T.egressRule).map(rowOf).sort(), [...outRules].sort());
    });

    it("never opens etcd or the kubelet to 0.0.0.0/0 or to anything but the masters", () => {
      for (const r of recorder.byType(T.ingressRule)) {
        const i = r.inputs as any;
        const touches = (port: number) =>
          i.ipProtocol === "-1" || (i.fromPort !== undefined && i.fromPort <= port && port <= i.toPort);
        if ([2379, 2380, 10250].some(touches)) {
          assert.equal(i.cidrIpv4, undefined, r.name);
          assert.equal(i.referencedSecurityGroupId, "eu1prod-sg-masters-id", r.name);
        }
      }
      const anywhere = recorder.byType(T.ingressRule).filter((r) => r.inputs.cidrIpv4 === "0.0.0.0/0");
      assert.deepEqual(anywhere.map((r) => r.name).sort(), [
        "eu1prod-sg-ingress-lb-in-http-from-anywhere",
        "eu1prod-sg-ingress-lb-in-https-from-anywhere",
      ]);
    });

    it("opens between nodes exactly what the pod network needs: Calico VXLAN and Typha, or flannel VXLAN", async () => {
      const { securityGroupRules } = await import("../../../components/aws");
      const podNetwork = (cni: string) =>
        securityGroupRules(clusterSpec((s) => (s.kubernetes = { version: "1.34.12", cni, packages: "image" })))
          .filter(
            (r) =>
              r.direction === "ingress" && r.group !== "apiLb" && "group" in r.peer && r.peer.group !== "ingressLb",
          )
          .filter((r) => ![6443, 2379, 10250].includes(r.fromPort ?? 0))
          .map(
            (r) => `${r.group} ${r.protocol}/${r.fromPort}-${r.toPort} from ${"group" in r.peer ? r.peer.group : ""}`,
          )
          .sort();
      const between = (rule: string) =>
        ["masters", "workers"].flatMap((to) => ["masters", "workers"].map((from) => `${to} ${rule} from ${from}`));
      // Pure VXLAN: no BGP (179), no IP-in-IP (protocol 4); encapsulated packets carry node addresses.
      assert.deepEqual(podNetwork("calico"), [...between("tcp/5473-5473"), ...between("udp/4789-4789")].sort());
      assert.deepEqual(podNetwork("flannel"), between("udp/8472-8472").sort());
    });

    it("does not open the API to the internet by default", async () => {
      const { securityGroupRules } = await import("../../../components/aws");
      const cidrs = securityGroupRules(clusterSpec())
        .filter((r) => r.direction === "ingress" && r.fromPort === 6443 && "cidr" in r.peer)
        .map((r) => r.key);
      assert.deepEqual(cidrs, []);
    });
  });

  describe("control plane", () => {
    const slots = [0, 1, 2];

    it("spreads the masters over the zones: one single-instance ASG per slot in its zone's private subnet", () => {
      for (const slot of slots) {
        const asg = recorder.one(T.asg, `eu1prod-cp-asg-master-${slot}`).inputs as any;
        assert.deepEqual(
          [asg.minSize, asg.maxSize, asg.desiredCapacity, asg.vpcZoneIdentifiers],
          [1, 1, 1, [privateSubnet(ZONES[slot])]],
        );
        assert.deepEqual(asg.launchTemplate, { id: `eu1prod-cp-lt-master-${slot}-id`, version: "1" });
        assert.equal(asg.instanceRefresh, undefined, "masters are never rolled all at once");
      }
    });

    it("creates each slot's etcd volume in its zone: encrypted gp3 of etcdVolumeGiB, protected", () => {
      for (const slot of slots) {
        const volume = recorder.one(T.volume, `eu1prod-cp-etcd-master-${slot}`);
        assert.deepEqual(volume.inputs, {
          availabilityZone: ZONES[slot],
          size: 20,
          type: "gp3",
          encrypted: true,
          tags: { Name: `eu1prod-cp-etcd-master-${slot}`, "g8s.io/master-slot": String(slot) },
        });
        assert.equal(volume.protect, true);
      }
      // Besides them only the KMS key of the node secrets: nothing else can be lost for good.
      const protectedOnes = recorder.resources.filter((r) => r.protect).map((r) => r.name);
      assert.deepEqual(
        protectedOnes.sort(),
        [...slots.map((s) => `eu1prod-cp-etcd-master-${s}`), "eu1prod-secrets-kms"].sort(),
      );
    });

    it("gives each slot a stable network interface with its fixed IP in the masters' group", () => {
      const ips = ["10.1.0.10", "10.1.16.11", "10.1.32.12"];
      for (const slot of slots) {
        const eni = recorder.one(T.eni, `eu1prod-cp-eni-master-${slot}`).inputs as any;
        assert.equal(eni.subnetId, privateSubnet(ZONES[slot]));
        assert.deepEqual(eni.privateIps, [ips[slot]]);
        assert.deepEqual(eni.securityGroups, ["eu1prod-sg-masters-id"]);
      }
    });

    it("tags each master's instances with the volume and interface to attach, and hands them to user-data", () => {
      for (const slot of slots) {
        const lt = recorder.one(T.lt, `eu1prod-cp-lt-master-${slot}`).inputs as any;
        const instanceTags = lt.tagSpecifications.find((t: any) => t.resourceType === "instance").tags;
        assert.equal(instanceTags["g8s.io/etcd-volume"], `eu1prod-cp-etcd-master-${slot}-id`);
        assert.equal(instanceTags["g8s.io/network-interface"], `eu1prod-cp-eni-master-${slot}-id`);
        assert.equal(instanceTags["g8s.io/master-slot"], String(slot));
        assert.equal(lt.instanceType, "m6i.large");
        assert.deepEqual(lt.vpcSecurityGroupIds, ["eu1prod-sg-masters-id"]);
        assert.match(built.userData.get(`master-${slot}`) ?? "", new RegExp(`master-${slot} 10\\.1\\.`));
      }
    });

    it("puts an internal NLB in the private subnets with a TCP 6443 listener and IP targets on the fixed IPs", () => {
      const lb = recorder.one(T.lb, "eu1prod-cp-api-lb").inputs as any;
      assert.deepEqual(
        [lb.loadBalancerType, lb.internal, lb.subnets, lb.securityGroups, lb.enableCrossZoneLoadBalancing],
        ["network", true, ZONES.map(privateSubnet), ["eu1prod-sg-api-lb-id"], true],
      );
      // How the no-public-api policy tells it from the ingress load balancer.
      assert.equal(lb.tags["g8s.io/load-balancer"], "api");
      assert.equal((recorder.one(T.lb, "eu1prod-ingress-lb").inputs as any).tags["g8s.io/load-balancer"], "ingress");
      const tg = recorder.one(T.tg, "eu1prod-cp-api-tg").inputs as any;
      assert.deepEqual(
        [tg.port, tg.protocol, tg.targetType, tg.vpcId, tg.preserveClientIp, tg.healthCheck],
        [
          6443,
          "TCP",
          "ip",
          "eu1prod-net-vpc-id",
          "false",
          { protocol: "TCP", port: "traffic-port", interval: 10, healthyThreshold: 2, unhealthyThreshold: 2 },
        ],
      );
      const listener = recorder.one(T.listener, "eu1prod-cp-api-listener").inputs as any;
      assert.deepEqual(
        [listener.port, listener.protocol, listener.defaultActions],
        [
          6443,
          "TCP",
          [
            {
              type: "forward",
              targetGroupArn: "arn:aws:elasticloadbalancing:eu-central-1:123456789012:targetgroup/eu1prod-cp-api-tg-id",
            },
          ],
        ],
      );
      const targets = recorder.byType(T.tgAttachment).filter((r) => r.name.startsWith("eu1prod-cp-"));
      assert.deepEqual(targets.map((t) => [t.name, t.inputs.targetId, t.inputs.port]).sort(), [
        ["eu1prod-cp-api-target-master-0", "10.1.0.10", 6443],
        ["eu1prod-cp-api-target-master-1", "10.1.16.11", 6443],
        ["eu1prod-cp-api-target-master-2", "10.1.32.12", 6443],
      ]);
    });

    it("points api.<id>.<baseDomain> at the API load balancer", () => {
      assert.deepEqual(recorder.one(T.record, "eu1prod-cp-api-record").inputs, {
        zoneId: "Z0123456789",
        name: "api.eu1prod.k8s.example.com",
        type: "A",
        aliases: [
          { name: "eu1prod-cp-api-lb.elb.amazonaws.com", zoneId: "Z3F0SRJ5LGBH90", evaluateTargetHealth: true },
        ],
      });
    });
  });

  describe("node pools", () => {
    it("sizes each pool's ASG from the spec (desired = min), over every private subnet, with a rolling refresh", () => {
      const general = recorder.one(T.asg, "eu1prod-pool-general-asg");
      const g = general.inputs as any;
      assert.deepEqual(
        [g.minSize, g.maxSize, g.desiredCapacity, g.vpcZoneIdentifiers],
        [3, 10, 3, ZONES.map(privateSubnet)],
      );
      assert.deepEqual(g.instanceRefresh, {
        strategy: "Rolling",
        preferences: { minHealthyPercentage: 90, instanceWarmup: "300" },
      });
      assert.deepEqual(g.launchTemplate, { id: "eu1prod-pool-general-lt-id", version: "1" });
      assert.equal(g.mixedInstancesPolicy, undefined);
      const b = recorder.one(T.asg, "eu1prod-pool-batch-asg").inputs as any;
      assert.deepEqual([b.minSize, b.maxSize, b.desiredCapacity], [0, 20, 0]);
    });

    it("leaves the desired capacity to the cluster autoscaler after creation", () => {
      for (const pool of ["general", "batch"]) {
        assert.deepEqual(recorder.one(T.asg, `eu1prod-pool-${pool}-asg`).ignoreChanges, ["desiredCapacity"]);
      }
    });

    it("runs spot pools through a mixed instances policy, all spot, price-capacity-optimized", () => {
      const b = recorder.one(T.asg, "eu1prod-pool-batch-asg").inputs as any;
      assert.equal(b.launchTemplate, undefined);
      assert.deepEqual(b.mixedInstancesPolicy, {
        instancesDistribution: {
          onDemandBaseCapacity: 0,
          onDemandPercentageAboveBaseCapacity: 0,
          spotAllocationStrategy: "price-capacity-optimized",
        },
        launchTemplate: {
          launchTemplateSpecification: { launchTemplateId: "eu1prod-pool-batch-lt-id", version: "1" },
          overrides: [{ instanceType: "c6i.2xlarge" }],
        },
      });
    });

    it("tags pools for cluster-autoscaler discovery and node templates (labels, taints)", () => {
      const tags = (pool: string) =>
        Object.fromEntries(
          (recorder.one(T.asg, `eu1prod-pool-${pool}-asg`).inputs.tags as any[]).map((t) => [t.key, t.value]),
        );
      assert.deepEqual(tags("batch"), {
        "g8s.io/cluster": "eu1prod",
        "g8s.io/pool": "batch",
        "k8s.io/cluster-autoscaler/enabled": "true",
        "k8s.io/cluster-autoscaler/eu1prod": "owned",
        "k8s.io/cluster-autoscaler/node-template/label/workload.example.com/class": "batch",
        "k8s.io/cluster-autoscaler/node-template/taint/workload.example.com/batch": "true:NoSchedule",
        "kubernetes.io/cluster/eu1prod": "owned",
        Name: "eu1prod-pool-batch",
        team: "platform",
      });
      assert.equal(tags("general")["k8s.io/cluster-autoscaler/enabled"], "true");
    });

    it("launches pool nodes with their instance type, root volume, profile, IMDSv2 and the workers' group", () => {
      const lt = recorder.one(T.lt, "eu1prod-pool-general-lt").inputs as any;
      assert.equal(lt.instanceType, "m6i.xlarge");
      assert.equal(
        lt.imageId,
        "resolve:ssm:/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
      );
      assert.deepEqual(lt.iamInstanceProfile, {
        arn: "arn:aws:iam::123456789012:instance-profile/eu1prod-pool-general-profile",
      });
      assert.deepEqual(lt.vpcSecurityGroupIds, ["eu1prod-sg-workers-id"]);
      assert.deepEqual(lt.metadataOptions, {
        httpEndpoint: "enabled",
        httpTokens: "required",
        httpPutResponseHopLimit: 1,
      });
      assert.deepEqual(lt.blockDeviceMappings, [
        {
          deviceName: "/dev/sda1",
          ebs: { volumeSize: 50, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" },
        },
      ]);
    });
  });

  describe("ingress", () => {
    it("puts an internet-facing NLB in the public subnets with 80 and 443 to the ingress node ports", () => {
      const lb = recorder.one(T.lb, "eu1prod-ingress-lb").inputs as any;
      assert.deepEqual(
        [lb.internal, lb.subnets, lb.securityGroups],
        [false, ZONES.map(publicSubnet), ["eu1prod-sg-ingress-lb-id"]],
      );
      for (const [key, listen, nodePort] of [
        ["http", 80, 30080],
        ["https", 443, 30443],
      ] as const) {
        const tg = recorder.one(T.tg, `eu1prod-ingress-tg-${key}`).inputs as any;
        assert.deepEqual(
          [tg.port, tg.protocol, tg.targetType, tg.healthCheck.protocol],
          [nodePort, "TCP", "instance", "TCP"],
        );
        const listener = recorder.one(T.listener, `eu1prod-ingress-listener-${key}`).inputs as any;
        assert.deepEqual(
          [listener.port, listener.protocol, listener.defaultActions[0].targetGroupArn],
          [
            listen,
            "TCP",
            `arn:aws:elasticloadbalancing:eu-central-1:123456789012:targetgroup/eu1prod-ingress-tg-${key}-id`,
          ],
        );
      }
    });

    it("attaches both target groups to every pool's ASG", () => {
      assert.deepEqual(
        recorder
          .byType(T.asgAttachment)
          .map((a) => [a.name, a.inputs.autoscalingGroupName])
          .sort(),
        [
          ["eu1prod-ingress-attach-http-batch", "eu1prod-pool-batch-asg-asg-name"],
          ["eu1prod-ingress-attach-http-general", "eu1prod-pool-general-asg-asg-name"],
          ["eu1prod-ingress-attach-https-batch", "eu1prod-pool-batch-asg-asg-name"],
          ["eu1prod-ingress-attach-https-general", "eu1prod-pool-general-asg-asg-name"],
        ],
      );
    });

    it("points *.<id>.<baseDomain> at the ingress load balancer", () => {
      assert.deepEqual(recorder.one(T.record, "eu1prod-ingress-record").inputs, {
        zoneId: "Z0123456789",
        name: "*.eu1prod.k8s.example.com",
        type: "A",
        aliases: [
          { name: "eu1prod-ingress-lb.elb.amazonaws.com", zoneId: "Z3F0SRJ5LGBH90", evaluateTargetHealth: true },
        ],
      });
    });
  });

  describe("secrets and IAM", () => {
    const paramArn = (role: string) => `arn:aws:ssm:eu-central-1:123456789012:parameter/g8s/eu1prod/${role}`;
    const keyArn = "arn:aws:kms:eu-central-1:123456789012:key/eu1prod-secrets-kms-id";
    const policies = () =>
      recorder
        .byType(T.rolePolicy)
        .map((p) => ({ name: p.name, role: p.inputs.role, doc: JSON.parse(String(p.inputs.policy)) }));

    it("encrypts node secrets with a per-cluster key that rotates", () => {
      const key = recorder.one(T.kms, "eu1prod-secrets-kms").inputs as any;
      assert.deepEqual([key.enableKeyRotation, key.deletionWindowInDays], [true, 30]);
      assert.equal(recorder.one(T.kmsAlias, "eu1prod-secrets-kms-alias").inputs.name, "alias/g8s/eu1prod");
    });

    it("stores one SecureString per secret file under /g8s/<id>/<role>/<file>, as a Pulumi secret", () => {
      const params = recorder
        .byType(T.param)
        .map((p) => [p.name, p.inputs.name, p.inputs.type, p.inputs.keyId, secretValue(p.inputs.value)]);
      assert.deepEqual(params.sort(), [
        [
          "eu1prod-secrets-param-master-ca.key",
          "/g8s/eu1prod/master/ca.key",
          "SecureString",
          keyArn,
          FAKE_SECRETS.master["ca.key"],
        ],
        [
          "eu1prod-secrets-param-master-etcd.key",
          "/g8s/eu1prod/master/etcd.key",
          "SecureString",
          keyArn,
          FAKE_SECRETS.master["etcd.key"],
        ],
        [
          "eu1prod-secrets-param-worker-bootstrap-token",
          "/g8s/eu1prod/worker/bootstrap-token",
          "SecureString",
          keyArn,
          FAKE_SECRETS.worker["bootstrap-token"],
        ],
      ]);
    });

    it("lets EC2 assume the node roles and nothing else", () => {
      assert.equal(recorder.byType(T.role).length, 3);
      for (const role of recorder.byType(T.role)) {
        assert.deepEqual(JSON.parse(String(role.inputs.assumeRolePolicy)), {
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
        });
      }
    });

    it("lets each role read and decrypt only its own parameters", () => {
      const expected = (role: string) => ({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "ReadOwnParameters",
            Effect: "Allow",
            Action: ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            Resource: [paramArn(role), `${paramArn(role)}/*`],
          },
          {
            Sid: "DecryptOwnParameters",
            Effect: "Allow",
            Action: ["kms:Decrypt"],
            Resource: keyArn,
            Condition: {
              StringLike: { "kms:EncryptionContext:PARAMETER_ARN": `${paramArn(role)}/*` },
              StringEquals: { "kms:ViaService": "ssm.eu-central-1.amazonaws.com" },
            },
          },
        ],
      });
      const byName = Object.fromEntries(policies().map((p) => [p.name, p]));
      assert.deepEqual(byName["eu1prod-cp-master-policy-secrets"].doc, expected("master"));
      assert.equal(byName["eu1prod-cp-master-policy-secrets"].role, "eu1prod-cp-master-role-name");
      for (const pool of ["general", "batch"]) {
        assert.deepEqual(byName[`eu1prod-pool-${pool}-policy-secrets`].doc, expected("worker"));
      }
    });

    it("lets masters attach only this cluster's etcd volumes and interfaces, to this cluster's instances", () => {
      const attach = policies().find((p) => p.name === "eu1prod-cp-master-policy-attach");
      const instances = "arn:aws:ec2:eu-central-1:123456789012:instance/*";
      const own = { StringEquals: { "aws:ResourceTag/g8s.io/cluster": "eu1prod" } };
      assert.deepEqual(attach?.doc.Statement, [
        {
          Sid: "AttachOwnEtcdVolumes",
          Effect: "Allow",
          Action: ["ec2:AttachVolume"],
          Resource: [0, 1, 2]
            .map((s) => `arn:aws:ec2:eu-central-1:123456789012:volume/eu1prod-cp-etcd-master-${s}-id`)
            .concat(instances),
          Condition: own,
        },
        {
          Sid: "AttachOwnNetworkInterfaces",
          Effect: "Allow",
          Action: ["ec2:AttachNetworkInterface"],
          Resource: [0, 1, 2]
            .map((s) => `arn:aws:ec2:eu-central-1:123456789012:network-interface/eu1prod-cp-eni-master-${s}-id`)
            .concat(instances),
          Condition: own,
        },
        {
          Sid: "DescribeAttachments",
          Effect: "Allow",
          Action: ["ec2:DescribeVolumes", "ec2:DescribeNetworkInterfaces"],
          Resource: "*",
        },
      ]);
    });

    it("lets the masters and each pool mark only their own group's instances unhealthy (a node whose bootstrap failed)", () => {
      const asgArn = (asg: string) =>
        `arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:${asg}-id:autoScalingGroupName/${asg}-asg-name`;
      const health = (groups: string[]) => [
        {
          Sid: "ReplaceOwnFailedInstances",
          Effect: "Allow",
          Action: ["autoscaling:SetInstanceHealth"],
          Resource: groups.map(asgArn),
        },
      ];
      const byName = Object.fromEntries(policies().map((p) => [p.name, p]));
      const masters = byName["eu1prod-cp-master-policy-health"];
      assert.deepEqual(masters?.doc.Statement, health([0, 1, 2].map((s) => `eu1prod-cp-asg-master-${s}`)));
      assert.equal(masters.role, "eu1prod-cp-master-role-name");
      for (const pool of ["general", "batch"]) {
        const p = byName[`eu1prod-pool-${pool}-policy-health`];
        assert.deepEqual(p?.doc.Statement, health([`eu1prod-pool-${pool}-asg`]), pool);
        assert.equal(p.role, `eu1prod-pool-${pool}-role-name`);
      }
    });

    it("keeps EC2 health checks on every group: the node reports a failed bootstrap itself", () => {
      // ELB checks would tie a node's life to the ingress controller's node ports (pools) or need a
      // second, instance-type target group (the API's targets are the slots' fixed IPs).
      for (const asg of recorder.byType(T.asg)) {
        assert.deepEqual([asg.inputs.healthCheckType, asg.inputs.healthCheckGracePeriod], ["EC2", 300], asg.name);
      }
    });

    it("never grants a wildcard action, and a wildcard resource only to Describe calls (no resource-level permissions)", () => {
      for (const p of policies()) {
        for (const st of p.doc.Statement) {
          for (const action of st.Action) assert.ok(!action.includes("*"), `${p.name}: ${action}`);
          if (st.Resource === "*") {
            assert.ok(
              st.Action.every((a: string) => a.startsWith("ec2:Describe")),
              `${p.name}: ${st.Sid}`,
            );
          }
        }
      }
      assert.equal(policies().length, 8);
    });

    it("copies etcd snapshots to a private, encrypted bucket it keeps, expired by a lifecycle rule; masters may put, get and list there, never delete", () => {
      const bucket = recorder.one(T.bucket, "eu1prod-cp-etcd-backups");
      const name = String(bucket.inputs.bucket);
      assert.match(name, /^g8s-eu1prod-etcd-[0-9a-f]{8}$/);
      assert.equal(bucket.inputs.forceDestroy, false);
      const lifecycle = recorder.one(T.bucketLifecycle, "eu1prod-cp-etcd-backups").inputs as any;
      assert.deepEqual(
        lifecycle.rules.map((r: any) => [r.status, r.filter.prefix, r.expiration.days]),
        [["Enabled", "eu1prod/", 30]],
      );
      const block = recorder.one(T.bucketPublicAccess, "eu1prod-cp-etcd-backups").inputs as any;
      assert.deepEqual(
        [block.blockPublicAcls, block.blockPublicPolicy, block.ignorePublicAcls, block.restrictPublicBuckets],
        [true, true, true, true],
      );
      const sse = recorder.one(T.bucketEncryption, "eu1prod-cp-etcd-backups").inputs as any;
      assert.equal(sse.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm, "AES256");
      // Backups outlive the cluster: the bucket and its settings stay when the stack is destroyed.
      for (const type of [T.bucket, T.bucketLifecycle, T.bucketPublicAccess, T.bucketEncryption, T.bucketOwnership]) {
        assert.equal(recorder.one(type, "eu1prod-cp-etcd-backups").retainOnDelete, true, type);
      }
      const policy = policies().find((p) => p.name === "eu1prod-cp-master-policy-etcd-backups");
      assert.ok(policy);
      assert.deepEqual(
        policy.doc.Statement.map((st: any) => [st.Action, st.Resource, st.Condition ?? null]),
        [
          [["s3:PutObject", "s3:GetObject"], `arn:aws:s3:::${name}/eu1prod/*`, null],
          [["s3:ListBucket"], `arn:aws:s3:::${name}`, { StringLike: { "s3:prefix": ["eu1prod/*"] } }],
        ],
      );
      assert.ok(!JSON.stringify(policies().map((p) => p.doc)).includes("s3:Delete"));
    });
  });

  describe("tags and secrets hygiene", () => {
    const TAGGED = [
      T.vpc,
      T.subnet,
      T.igw,
      T.eip,
      T.nat,
      T.routeTable,
      T.endpoint,
      T.sg,
      T.ingressRule,
      T.egressRule,
      T.volume,
      T.eni,
      T.lt,
      T.lb,
      T.tg,
      T.listener,
      T.role,
      T.profile,
      T.kms,
      T.param,
    ] as string[];

    it("names every taggable resource with a Name tag and leaves the cluster tag to the provider", () => {
      const tagged = recorder.resources.filter((r) => TAGGED.includes(r.type));
      assert.equal(tagged.length, 78);
      for (const r of tagged) {
        const tags = r.inputs.tags as Record<string, string>;
        assert.equal(tags?.Name, r.name, `${r.type} ${r.name}`);
        assert.equal(tags["g8s.io/cluster"], undefined, `${r.type} ${r.name}`);
      }
    });

    it("spells the cluster tags out where default tags do not reach: launched instances, volumes and ASGs", () => {
      for (const lt of recorder.byType(T.lt)) {
        for (const spec of lt.inputs.tagSpecifications as any[]) {
          assert.equal(spec.tags["g8s.io/cluster"], "eu1prod", lt.name);
          assert.equal(spec.tags["kubernetes.io/cluster/eu1prod"], "owned", lt.name);
          assert.equal(spec.tags.team, "platform", lt.name);
        }
      }
      for (const asg of recorder.byType(T.asg)) {
        const keys = (asg.inputs.tags as any[]).map((t) => t.key);
        assert.ok(keys.includes("g8s.io/cluster") && keys.includes("Name") && keys.includes("team"), asg.name);
      }
    });

    it("keeps secret values out of every launch template's user-data (references only)", () => {
      const secrets = [...Object.values(FAKE_SECRETS.master), ...Object.values(FAKE_SECRETS.worker)];
      const lts = recorder.byType(T.lt);
      assert.equal(lts.length, 5);
      for (const lt of lts) {
        const userData = Buffer.from(String(lt.inputs.userData), "base64").toString("utf8");
        assert.match(userData, /\/g8s\/eu1prod\/(master|worker)\//, lt.name);
        for (const secret of secrets) assert.ok(!userData.includes(secret), `${lt.name} holds a secret`);
      }
    });

    it("keeps secret values out of every resource but their SSM parameters", () => {
      const secrets = [...Object.values(FAKE_SECRETS.master), ...Object.values(FAKE_SECRETS.worker)];
      for (const r of recorder.resources.filter((r) => r.type !== T.param)) {
        const text = JSON.stringify(r.inputs);
        for (const secret of secrets) assert.ok(!text.includes(secret), `${r.type} ${r.name}`);
      }
    });
  });
});
