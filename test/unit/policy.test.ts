/** Every g8s policy fires on a violating resource and stays quiet on a compliant one; the example clusters comply. */
import * as assert from "node:assert/strict";
import { evaluatePolicies, mandatory, type PreviewResource } from "../../automation/policy/runner";
import * as P from "../../policy/policies";

const urn = (type: string, name: string) => `urn:pulumi:s::g8s::${type}::${name}`;
function res(
  type: string,
  name: string,
  props: Record<string, unknown>,
  protect = false,
  provider?: string,
): PreviewResource {
  return { urn: urn(type, name), type, name, props, protect, provider };
}
const run = (policy: (typeof P.G8S_POLICIES)[number], resources: PreviewResource[], config: P.G8sPolicyConfig = {}) =>
  evaluatePolicies([policy], resources, config);

describe("policies", () => {
  describe("etcd-kubelet-not-public", () => {
    it("fires on etcd or kubelet open to the world, in every rule shape", async () => {
      const v = await run(P.etcdKubeletNotPublic, [
        res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "a", {
          cidrIpv4: "0.0.0.0/0",
          ipProtocol: "tcp",
          fromPort: 2379,
          toPort: 2380,
        }),
        res("aws:ec2/securityGroupRule:SecurityGroupRule", "b", {
          type: "ingress",
          cidrBlocks: ["0.0.0.0/0"],
          protocol: "tcp",
          fromPort: 10000,
          toPort: 11000,
        }),
        res("aws:ec2/securityGroup:SecurityGroup", "c", {
          ingress: [{ cidrBlocks: ["0.0.0.0/0"], protocol: "-1", fromPort: 0, toPort: 0 }],
        }),
      ]);
      assert.deepEqual(
        v.map((x) => [x.urn?.split("::").pop(), x.message]),
        [
          ["a", "opens etcd (2379-2380) to the internet"],
          ["b", "opens the kubelet (10250) to the internet"],
          ["c", "opens etcd (2379-2380) to the internet"],
          ["c", "opens the kubelet (10250) to the internet"],
        ],
      );
    });
    it("stays quiet for cluster-internal rules and public HTTPS", async () => {
      assert.deepEqual(
        await run(P.etcdKubeletNotPublic, [
          res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "a", {
            referencedSecurityGroupId: "sg-1",
            ipProtocol: "tcp",
            fromPort: 2379,
            toPort: 2380,
          }),
          res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "b", {
            cidrIpv4: "0.0.0.0/0",
            ipProtocol: "tcp",
            fromPort: 443,
            toPort: 443,
          }),
        ]),
        [],
      );
    });
  });

  describe("etcd-volumes-protected", () => {
    it("fires on an unprotected etcd volume and not on a protected one or a data volume", async () => {
      const v = await run(P.etcdVolumesProtected, [
        res("aws:ebs/volume:Volume", "c-cp-etcd-master-0", { tags: { Name: "c-cp-etcd-master-0" } }, false),
        res("aws:ebs/volume:Volume", "c-cp-etcd-master-1", { tags: { Name: "c-cp-etcd-master-1" } }, true),
        res("aws:ebs/volume:Volume", "data", { tags: { Name: "data" } }, false),
      ]);
      assert.deepEqual(
        v.map((x) => x.urn?.split("::").pop()),
        ["c-cp-etcd-master-0"],
      );
    });
  });

  describe("certificate-ttl-bounds", () => {
    it("fires outside 1h…720h for Vault certificates, Vault roles, tls and local certificates", async () => {
      const v = await run(P.certificateTtlBounds, [
        res("vault:pkiSecret/secretBackendCert:SecretBackendCert", "short", { ttl: "1800" }),
        res("vault:pkiSecret/secretBackendRole:SecretBackendRole", "long", { maxTtl: "31d" }),
        res("tls:index/locallySignedCert:LocallySignedCert", "year", { validityPeriodHours: 8760 }),
        res("tls:index/locallySignedCert:LocallySignedCert", "day", { validityPeriodHours: 24 }),
        res("vault:pkiSecret/secretBackendCert:SecretBackendCert", "ok", { ttl: "86400" }),
        res("pulumi-nodejs:dynamic/g8s-pki:LocalCertificate", "seconds", { ttlSeconds: 60 }),
        res("pulumi-nodejs:dynamic/g8s-pki:LocalCertificate", "local-day", { ttlSeconds: 86400 }),
      ]);
      assert.deepEqual(
        v.map((x) => x.urn?.split("::").pop()),
        ["short", "long", "year", "seconds"],
      );
    });
  });

  describe("no-public-api", () => {
    const lb = (name: string, internal: boolean, role?: string) =>
      res("aws:lb/loadBalancer:LoadBalancer", name, {
        internal,
        tags: { Name: name, ...(role === undefined ? {} : { "g8s.io/load-balancer": role }) },
      });
    it("fires on an internet-facing API load balancer the spec does not allow, known by its tag", async () => {
      assert.deepEqual(
        (await run(P.noPublicApi, [lb("c-aws-cp-api-lb", false, "api"), lb("renamed", false, "api")])).map((v) =>
          v.urn?.split("::").pop(),
        ),
        ["c-aws-cp-api-lb", "renamed"],
      );
    });
    it("stays quiet when internal, when the spec allows it, and for other load balancers whatever their name", async () => {
      assert.deepEqual(await run(P.noPublicApi, [lb("c-aws-cp-api-lb", true, "api")]), []);
      assert.deepEqual(await run(P.noPublicApi, [lb("c-aws-cp-api-lb", false, "api")], { publicApi: true }), []);
      assert.deepEqual(await run(P.noPublicApi, [lb("c-aws-ingress-lb", false, "ingress")]), []);
      assert.deepEqual(await run(P.noPublicApi, [lb("other-api-lb", false)]), []);
    });
  });

  describe("cluster-tagged", () => {
    const provider = res("pulumi:providers:aws", "p", { defaultTags: { tags: { "g8s.io/cluster": "c1" } } });
    it("fires on untagged or wrongly tagged AWS and Kubernetes resources", async () => {
      const v = await run(
        P.clusterTagged,
        [
          res("aws:ec2/vpc:Vpc", "vpc", { tags: { Name: "vpc" } }),
          res("aws:ec2/subnet:Subnet", "sub", { tags: { "g8s.io/cluster": "other" } }),
          res("kubernetes:core/v1:Service", "svc", { metadata: { labels: {} } }),
        ],
        { clusterId: "c1" },
      );
      assert.deepEqual(
        v.map((x) => x.message),
        ["missing the g8s.io/cluster tag", "g8s.io/cluster is 'other', not 'c1'", "missing the g8s.io/cluster tag"],
      );
    });
    it("accepts the tag from the provider's default tags, and ignores what cannot be tagged", async () => {
      const v = await run(
        P.clusterTagged,
        [
          provider,
          res("aws:ec2/vpc:Vpc", "vpc", { tags: { Name: "vpc" } }, false, `${provider.urn}::id`),
          res("tls:index/privateKey:PrivateKey", "k", { algorithm: "RSA" }),
        ],
        { clusterId: "c1" },
      );
      assert.deepEqual(v, []);
    });
  });

  describe("masters-count-odd", () => {
    const asg = (slot: number) =>
      res("aws:autoscaling/group:Group", `m${slot}`, {
        maxSize: 1,
        tags: [{ key: "g8s.io/master-slot", value: String(slot) }],
      });
    const sts = (replicas: number) =>
      res("kubernetes:apps/v1:StatefulSet", "masters", {
        spec: { replicas, template: { metadata: { labels: { "g8s.io/role": "master" } } } },
      });
    it("fires on an even number of masters (AWS slots or KVM replicas)", async () => {
      assert.deepEqual(
        (await run(P.mastersOdd, [asg(0), asg(1)])).map((x) => x.message),
        ["2 masters: etcd needs 1, 3 or 5"],
      );
      assert.deepEqual(
        (await run(P.mastersOdd, [sts(4)])).map((x) => x.message),
        ["4 masters: etcd needs 1, 3 or 5"],
      );
    });
    it("stays quiet for 1, 3 or 5 masters and for projects without masters", async () => {
      assert.deepEqual(await run(P.mastersOdd, [asg(0), asg(1), asg(2)]), []);
      assert.deepEqual(await run(P.mastersOdd, [sts(5)]), []);
      assert.deepEqual(await run(P.mastersOdd, []), []);
    });
  });

  it("makes every g8s policy mandatory", () => {
    assert.deepEqual(
      P.G8S_POLICIES.map((p) => [p.name, p.enforcementLevel]),
      P.G8S_POLICIES.map((p) => [p.name, "mandatory"]),
    );
  });

  it("keeps advisory violations out of the mandatory set", () => {
    const v = [
      { policy: "a", enforcementLevel: "advisory", message: "m" },
      { policy: "b", enforcementLevel: "mandatory", message: "m" },
    ];
    assert.deepEqual(
      mandatory(v).map((x) => x.policy),
      ["b"],
    );
  });
});
