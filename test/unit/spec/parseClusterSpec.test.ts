import * as assert from "node:assert/strict";
import * as D from "../../../components/spec/defaults";
import type { z } from "zod";
import {
  ClusterSpecError,
  parseClusterSpec,
  type AwsClusterSpec,
  type ClusterSpec,
  type KvmClusterSpec,
} from "../../../components/spec";
import type { awsClusterSchema } from "../../../components/spec/schema";
import { awsSpec, expectIssues, kvmSpec, withChange } from "./helpers";

describe("parseClusterSpec", () => {
  it("is the only source of a ClusterSpec the components accept (checked by tsc)", () => {
    const parsed = parseClusterSpec(awsSpec());
    // The same fields, but not from the parser: not a ClusterSpec.
    const copy: z.output<typeof awsClusterSchema> = JSON.parse(JSON.stringify(parsed)) as AwsClusterSpec;
    // @ts-expect-error a value the parser did not return is not a ClusterSpec
    const notParsed: ClusterSpec = copy;
    assert.deepEqual(notParsed, parsed);
  });

  describe("defaults", () => {
    it("fills every optional aws field from defaults.ts", () => {
      const spec = parseClusterSpec(awsSpec()) as AwsClusterSpec;
      assert.deepEqual(spec.kubernetes, {
        version: D.DEFAULT_KUBERNETES_VERSION,
        serviceCidr: D.DEFAULT_SERVICE_CIDR,
        podCidr: D.DEFAULT_POD_CIDR,
        cni: D.DEFAULT_CNI,
        packages: D.DEFAULT_PACKAGE_SOURCE,
      });
      assert.deepEqual(spec.aws, {
        region: "eu-central-1",
        availabilityZones: D.DEFAULT_AWS_AVAILABILITY_ZONES,
        vpcCidr: D.DEFAULT_AWS_VPC_CIDR,
        natGateways: D.DEFAULT_AWS_NAT_GATEWAYS,
        publicApi: false,
        apiAllowedCidrs: [],
      });
      assert.deepEqual(spec.masters, {
        count: D.DEFAULT_MASTER_COUNT,
        instanceType: D.DEFAULT_AWS_MASTER_INSTANCE_TYPE,
        etcdVolumeGiB: D.DEFAULT_AWS_ETCD_VOLUME_GIB,
      });
      assert.deepEqual(spec.nodePools[0], {
        name: "general",
        instanceType: D.DEFAULT_AWS_WORKER_INSTANCE_TYPE,
        min: 3,
        max: 10,
        spot: false,
        rootVolumeGiB: D.DEFAULT_AWS_ROOT_VOLUME_GIB,
        labels: {},
        taints: [],
      });
      assert.deepEqual(spec.pki, {
        backend: "vault",
        vault: { address: "https://vault.example.com" },
        certTtl: D.DEFAULT_CERT_TTL,
        users: [],
        certificateAuthorities: {
          trusted: [D.DEFAULT_CERTIFICATE_AUTHORITY_ID],
          issuing: D.DEFAULT_CERTIFICATE_AUTHORITY_ID,
        },
        serviceAccountKeys: { trusted: [D.DEFAULT_SERVICE_ACCOUNT_KEY_ID], signing: D.DEFAULT_SERVICE_ACCOUNT_KEY_ID },
        caTtl: D.DEFAULT_CA_TTL,
      });
      assert.deepEqual(spec.ingress, {
        enabled: D.DEFAULT_INGRESS_ENABLED,
        httpNodePort: D.DEFAULT_INGRESS_HTTP_NODE_PORT,
        httpsNodePort: D.DEFAULT_INGRESS_HTTPS_NODE_PORT,
      });
      assert.deepEqual(spec.tags, {});
    });

    it("fills every optional kvm field from defaults.ts", () => {
      const spec = parseClusterSpec(kvmSpec()) as KvmClusterSpec;
      assert.deepEqual(spec.kvm, {
        storage: D.DEFAULT_KVM_STORAGE,
        image: D.DEFAULT_KVM_IMAGE,
        namespacePrefix: D.DEFAULT_KVM_NAMESPACE_PREFIX,
        apiService: D.DEFAULT_KVM_API_SERVICE,
        accel: D.DEFAULT_KVM_ACCEL,
      });
      assert.deepEqual(spec.masters, {
        count: D.DEFAULT_MASTER_COUNT,
        cpus: D.DEFAULT_KVM_MASTER_CPUS,
        memoryGiB: D.DEFAULT_KVM_MASTER_MEMORY_GIB,
        diskGiB: D.DEFAULT_KVM_MASTER_DISK_GIB,
      });
      assert.deepEqual(spec.nodePools[0], {
        name: "default",
        count: 2,
        cpus: D.DEFAULT_KVM_WORKER_CPUS,
        memoryGiB: D.DEFAULT_KVM_WORKER_MEMORY_GIB,
        diskGiB: D.DEFAULT_KVM_WORKER_DISK_GIB,
        labels: {},
        taints: [],
      });
    });

    it("keeps values the user set over the defaults", () => {
      const spec = parseClusterSpec(
        withChange(awsSpec(), (s) => {
          s.masters = { count: 5 };
          s.kubernetes = { version: "1.32.1" };
        }),
      );
      assert.equal(spec.masters.count, 5);
      assert.equal(spec.kubernetes.version, "1.32.1");
      assert.equal(spec.kubernetes.podCidr, D.DEFAULT_POD_CIDR);
    });

    it("does not change the raw input", () => {
      const raw = awsSpec();
      const before = structuredClone(raw);
      parseClusterSpec(raw);
      assert.deepEqual(raw, before);
    });
  });

  describe("id", () => {
    it("must be a DNS label", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.id = "EU_1")),
        [
          {
            path: "id",
            message:
              "must be a DNS label of at most 20 characters: lowercase letters, digits and '-', starting with a letter and not ending with '-' (got 'EU_1')",
          },
        ],
      ));

    it("is at most 20 characters", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.id = "a23456789012345678901")),
        [
          {
            path: "id",
            message:
              "must be a DNS label of at most 20 characters: lowercase letters, digits and '-', starting with a letter and not ending with '-' (got 'a23456789012345678901')",
          },
        ],
      ));

    it("is required", () =>
      expectIssues(
        withChange(awsSpec(), (s) => delete s.id),
        [{ path: "id", message: "is required" }],
      ));
  });

  describe("provider", () => {
    it("must be a known provider", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.provider = "gcp")),
        [{ path: "provider", message: "must be one of aws, kvm, libvirt (got 'gcp')" }],
      ));

    it("reserves libvirt", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.provider = "libvirt")),
        [{ path: "provider", message: "libvirt is reserved and not implemented yet: use aws or kvm" }],
      ));

    it("needs the provider's block", () =>
      expectIssues(
        withChange(awsSpec(), (s) => delete s.aws),
        [{ path: "aws", message: "is required with provider aws: set at least aws.region" }],
      ));

    it("needs the kvm block even though every kvm field has a default", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => delete s.kvm),
        [{ path: "kvm", message: "is required with provider kvm: an empty block (kvm: {}) takes every default" }],
      ));

    it("rejects another provider's block", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.kvm = { storage: "hostPath" })),
        [{ path: "kvm", message: "is only allowed with provider kvm (this cluster's provider is aws): remove it" }],
      ));

    it("rejects an aws-only field on a kvm cluster as an unknown key", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => (s.masters = { instanceType: "m6i.large" })),
        [{ path: "masters.instanceType", message: "unknown key: allowed here are count, cpus, memoryGiB, diskGiB" }],
      ));
  });

  describe("unknown keys", () => {
    it("names a typo at the top level and suggests the field", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.nodepools = [])),
        [{ path: "nodepools", message: "unknown key: did you mean 'nodePools'?" }],
      ));

    it("names a typo inside a list entry", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.nodePools[0].maxx = 3)),
        [{ path: "nodePools[0].maxx", message: "unknown key: did you mean 'max'?" }],
      ));

    it("lists the allowed keys when nothing is close", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.ingress = { zzzzzz: true })),
        [{ path: "ingress.zzzzzz", message: "unknown key: allowed here are enabled, httpNodePort, httpsNodePort" }],
      ));
  });

  describe("types", () => {
    it("reports a wrong type with what was given", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.nodePools[0].min = "three")),
        [{ path: "nodePools[0].min", message: "must be a number (got 'three')" }],
      ));

    it("requires whole numbers", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.masters = { count: 1.5 })),
        [{ path: "masters.count", message: "must be a whole number (got number 1.5)" }],
      ));

    it("rejects a spec that is not a mapping", () =>
      expectIssues("eu1prod", [{ path: "", message: "g8s:cluster must be a mapping (got 'eu1prod')" }]));

    it("reports every structural problem at once", () =>
      expectIssues(
        withChange(awsSpec(), (s) => {
          s.baseDomain = "localhost";
          s.aws.availabilityZones = 7;
        }),
        [
          {
            path: "baseDomain",
            message: "must be a lowercase DNS name with at least two labels, like k8s.example.com (got 'localhost')",
          },
          { path: "aws.availabilityZones", message: "must be ≤ 6 (got number 7)" },
        ],
      ));
  });

  describe("masters", () => {
    for (const count of [1, 3, 5]) {
      it(`accepts ${count} master(s)`, () => {
        assert.equal(parseClusterSpec(withChange(awsSpec(), (s) => (s.masters = { count }))).masters.count, count);
      });
    }
    for (const count of [0, 2, 4, 7]) {
      it(`rejects ${count} masters: etcd needs an odd quorum`, () =>
        expectIssues(
          withChange(awsSpec(), (s) => (s.masters = { count })),
          [{ path: "masters.count", message: `must be 1, 3 or 5 (got ${count}): etcd needs an odd quorum` }],
        ));
    }
  });

  describe("node pools", () => {
    it("needs at least one pool", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.nodePools = [])),
        [{ path: "nodePools", message: "must have at least 1 entries" }],
      ));

    it("needs pool names that are DNS labels", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.nodePools[0].name = "General")),
        [
          {
            path: "nodePools[0].name",
            message:
              "must be a DNS label of at most 20 characters: lowercase letters, digits and '-', starting with a letter and not ending with '-' (got 'General')",
          },
        ],
      ));

    it("needs unique pool names", () =>
      expectIssues(
        withChange(awsSpec(), (s) =>
          s.nodePools.push({ name: "batch", min: 0, max: 2 }, { name: "general", min: 1, max: 2 }),
        ),
        [
          {
            path: "nodePools[2].name",
            message: "'general' is already used by nodePools[0]: pool names must be unique",
          },
        ],
      ));

    it("needs max ≥ min", () =>
      expectIssues(
        withChange(awsSpec(), (s) => s.nodePools.push({ name: "batch", min: 3, max: 2 })),
        [{ path: "nodePools[1].max", message: "must be ≥ min (3)" }],
      ));

    it("needs desired between min and max", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.nodePools[0].desired = 11)),
        [{ path: "nodePools[0].desired", message: "must be between min (3) and max (10) (got 11)" }],
      ));

    it("rejects a negative kvm count", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => (s.nodePools[0].count = -1)),
        [{ path: "nodePools[0].count", message: "must be ≥ 0 (got number -1)" }],
      ));

    it("checks taint effects", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.nodePools[0].taints = [{ key: "a", effect: "Never" }])),
        [
          {
            path: "nodePools[0].taints[0].effect",
            message: "must be one of NoSchedule, PreferNoSchedule, NoExecute (got 'Never')",
          },
        ],
      ));

    it("checks label keys", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.nodePools[0].labels = { "-bad": "x" })),
        [{ path: 'nodePools[0].labels["-bad"]', message: "'-bad' is not a valid Kubernetes label or taint key" }],
      ));
  });

  describe("address ranges", () => {
    it("needs valid CIDRs", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.kubernetes = { podCidr: "10.2.0.0" })),
        [{ path: "kubernetes.podCidr", message: "must be an IPv4 CIDR like 10.0.0.0/16 (got '10.2.0.0')" }],
      ));

    it("rejects host bits and says which network was meant", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.aws.vpcCidr = "10.1.2.0/16")),
        [{ path: "aws.vpcCidr", message: "'10.1.2.0/16' has host bits set: use 10.1.0.0/16" }],
      ));

    it("rejects octets above 255", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.aws.apiAllowedCidrs = ["300.0.0.0/8"])),
        [{ path: "aws.apiAllowedCidrs[0]", message: "'300.0.0.0/8' has an octet above 255" }],
      ));

    it("keeps the service range within what the API server allocates", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.kubernetes = { serviceCidr: "172.0.0.0/8" })),
        [
          {
            path: "kubernetes.serviceCidr",
            message: "must be between /12 and /24 (got /8): the API server allocates service IPs from at most a /12",
          },
        ],
      ));

    it("keeps the VPC within AWS's limits", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.aws.vpcCidr = "10.0.0.0/8")),
        [
          {
            path: "aws.vpcCidr",
            message:
              "must be between /16 and /22 (got /8): AWS allows /16 at most and g8s carves two subnets per availability zone",
          },
        ],
      ));

    it("rejects a pod range that overlaps the VPC", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.kubernetes = { podCidr: "10.1.0.0/16" })),
        [
          {
            path: "kubernetes.podCidr",
            message: "10.1.0.0/16 overlaps aws.vpcCidr (10.1.0.0/16): the VPC, service and pod ranges must be disjoint",
          },
        ],
      ));

    it("rejects a service range inside the VPC", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.kubernetes = { serviceCidr: "10.1.128.0/20" })),
        [
          {
            path: "kubernetes.serviceCidr",
            message:
              "10.1.128.0/20 overlaps aws.vpcCidr (10.1.0.0/16): the VPC, service and pod ranges must be disjoint",
          },
        ],
      ));

    it("rejects overlapping pod and service ranges on kvm", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => (s.kubernetes = { serviceCidr: "10.2.0.0/20", podCidr: "10.2.0.0/16" })),
        [
          {
            path: "kubernetes.podCidr",
            message:
              "10.2.0.0/16 overlaps kubernetes.serviceCidr (10.2.0.0/20): the VPC, service and pod ranges must be disjoint",
          },
        ],
      ));

    it("needs a pod range with a /24 for every node the cluster can grow to", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.kubernetes = { podCidr: "10.2.0.0/22" })),
        [
          {
            path: "kubernetes.podCidr",
            message:
              "/22 holds 4 node ranges (/24 each) but the cluster can grow to 13 nodes: use a larger range such as /16",
          },
        ],
      ));

    it("needs room in the VPC for two /24 subnets per zone", () =>
      expectIssues(
        withChange(awsSpec(), (s) => Object.assign(s.aws, { vpcCidr: "10.1.0.0/22", availabilityZones: 3 })),
        [
          {
            path: "aws.vpcCidr",
            message: "/22 is too small for 6 subnets of at least /24 (3 availability zones): use /21 or larger",
          },
        ],
      ));
  });

  describe("kubernetes.version", () => {
    it("must be a concrete x.y.z", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.kubernetes = { version: "1.31" })),
        [{ path: "kubernetes.version", message: "must be a concrete version x.y.z such as 1.31.4 (got '1.31')" }],
      ));

    it("must be within the supported minors", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.kubernetes = { version: "1.28.9" })),
        [
          {
            path: "kubernetes.version",
            message: "1.28.9 is not supported: use a 1.31, 1.32, 1.33, 1.34, 1.35 release",
          },
        ],
      ));
  });

  describe("pki", () => {
    it("needs a Vault address with the vault backend", () =>
      expectIssues(
        withChange(awsSpec(), (s) => delete s.pki),
        [
          {
            path: "pki.vault.address",
            message: "is required with pki.backend vault: set the Vault URL, e.g. https://vault.example.com",
          },
        ],
      ));

    it("rejects a vault block with the tls backend", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => (s.pki.vault = { address: "https://v.example.com" })),
        [{ path: "pki.vault", message: "is only used with pki.backend vault: remove it or set backend: vault" }],
      ));

    it("rejects an unknown backend", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.pki.backend = "openssl")),
        [{ path: "pki.backend", message: "must be one of vault, tls, local (got 'openssl')" }],
      ));

    it("rejects a certificate TTL of 0", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => (s.pki.certTtl = "0s")),
        [{ path: "pki.certTtl", message: "must be between 1h and 720h (got 0s)" }],
      ));

    it("rejects a certificate TTL above the maximum", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => (s.pki.certTtl = "31d")),
        [{ path: "pki.certTtl", message: "must be between 1h and 720h (got 31d)" }],
      ));

    it("rejects a TTL that is not a duration", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => (s.pki.certTtl = "one day")),
        [{ path: "pki.certTtl", message: "must be a duration like 24h, 90m or 1h30m (got 'one day')" }],
      ));

    it("needs a CA that outlives two certificate lifetimes", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => Object.assign(s.pki, { certTtl: "720h", caTtl: "1000h" })),
        [{ path: "pki.caTtl", message: "must be at least twice pki.certTtl (720h) (got 1000h)" }],
      ));

    it("rejects a Vault address that is not a URL", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.pki.vault.address = "vault.example.com")),
        [
          {
            path: "pki.vault.address",
            message: "must be the Vault server URL, like https://vault.example.com (got 'vault.example.com')",
          },
        ],
      ));
  });

  describe("ingress, tags and kvm names", () => {
    it("needs distinct ingress node ports", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.ingress = { httpNodePort: 30443 })),
        [{ path: "ingress.httpsNodePort", message: "must differ from ingress.httpNodePort (30443)" }],
      ));

    it("keeps ingress node ports in the node-port range", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.ingress = { httpNodePort: 80 })),
        [{ path: "ingress.httpNodePort", message: "must be ≥ 30000 (got number 80)" }],
      ));

    it("reserves the cluster tag", () =>
      expectIssues(
        withChange(awsSpec(), (s) => (s.tags = { "g8s.io/cluster": "other" })),
        [{ path: 'tags["g8s.io/cluster"]', message: "'g8s.io/cluster' is set by g8s to the cluster id: remove it" }],
      ));

    it("needs a namespace prefix that gives a DNS label", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => (s.kvm.namespacePrefix = "Guest_")),
        [
          {
            path: "kvm.namespacePrefix",
            message:
              "gives the namespace 'Guest_edge7', which is not a DNS label: use lowercase letters, digits and '-'",
          },
        ],
      ));
  });

  describe("pod network and node software", () => {
    it("takes flannel from the node image only", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => (s.kubernetes = { cni: "flannel" })),
        [
          {
            path: "kubernetes.cni",
            message:
              "flannel comes with the node image, which packages 'apt' does not use: set kubernetes.packages: image, or cni: calico",
          },
        ],
      ));

    it("accepts flannel with the node image, and names the choices of cni and kvm.accel", () => {
      const spec = parseClusterSpec(
        withChange(kvmSpec(), (s) => {
          s.kubernetes = { version: "1.34.12", cni: "flannel", packages: "image" };
          s.kvm.accel = "tcg";
        }),
      ) as KvmClusterSpec;
      assert.equal(spec.kubernetes.cni, "flannel");
      assert.equal(spec.kvm.accel, "tcg");
      expectIssues(
        withChange(kvmSpec(), (s) => (s.kvm.accel = "hvf")),
        [{ path: "kvm.accel", message: "must be one of kvm, tcg, auto (got 'hvf')" }],
      );
    });

    it("runs the node image only at a version it holds: its own or the next minor's", () => {
      for (const version of ["1.34.12", "1.35.4"]) {
        parseClusterSpec(withChange(kvmSpec(), (s) => (s.kubernetes = { version, packages: "image" })));
      }
      expectIssues(
        withChange(kvmSpec(), (s) => (s.kubernetes = { version: "1.35.2", packages: "image" })),
        [
          {
            path: "kubernetes.version",
            message:
              "1.35.2 is not in the node image (kubernetes.packages: image), which holds 1.34.12 and 1.35.4: set one of them, or packages: apt",
          },
        ],
      );
    });
  });

  describe("pki.users", () => {
    it("accepts users with groups, defaulting to none", () => {
      const spec = parseClusterSpec(
        withChange(kvmSpec(), (s) => {
          s.pki = { backend: "local", users: [{ name: "jane@corp", groups: ["dev", "oncall"] }, { name: "ci" }] };
        }),
      );
      assert.deepEqual(spec.pki.users, [
        { name: "jane@corp", groups: ["dev", "oncall"] },
        { name: "ci", groups: [] },
      ]);
      assert.deepEqual(parseClusterSpec(kvmSpec()).pki.users, []);
    });

    it("refuses a bad name, a repeated name, the admin group, and two groups with the tls backend", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => {
          s.pki = {
            backend: "tls",
            users: [
              { name: "ops", groups: ["a", "b"] },
              { name: "ops", groups: ["system:masters"] },
            ],
          };
        }),
        [
          {
            path: "pki.users[0].groups",
            message:
              "pki.backend tls puts one group in a certificate (got 2): keep one, or use pki.backend local or vault",
          },
          { path: "pki.users[1].name", message: "'ops' is listed twice: give each user one entry" },
          {
            path: "pki.users[1].groups",
            message:
              "system:masters is the admin kubeconfig's group: bind the user to cluster-admin with a ClusterRoleBinding instead",
          },
        ],
      ));

    it("keeps the signing service-account key trusted, each key listed once, ids short names", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => {
          s.pki = {
            backend: "local",
            serviceAccountKeys: { trusted: ["initial", "initial", "Next Key"], signing: "2026-12" },
          };
        }),
        [
          {
            path: "pki.serviceAccountKeys.trusted[2]",
            message:
              "must be a short name of lowercase letters, digits and '-' (a resource name ends in it), like 2026-12 (got 'Next Key')",
          },
        ],
      ));

    it("refuses a signing service-account key that is not trusted, saying how to rotate", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => {
          s.pki = { backend: "local", serviceAccountKeys: { trusted: ["initial", "initial"], signing: "2026-12" } };
        }),
        [
          { path: "pki.serviceAccountKeys.trusted[1]", message: "'initial' is listed twice: list each once" },
          {
            path: "pki.serviceAccountKeys.signing",
            message:
              "'2026-12' is not in trusted (initial, initial): add it to trusted first, apply, then make it the signing key",
          },
        ],
      ));

    it("rotates a CA only with the local and tls backends, the issuing CA trusted", () => {
      expectIssues(
        withChange(kvmSpec(), (s) => {
          s.pki = { backend: "tls", certificateAuthorities: { trusted: ["initial"], issuing: "next" } };
        }),
        [
          {
            path: "pki.certificateAuthorities.issuing",
            message: "'next' is not in trusted (initial): add it to trusted first, apply, then make it the issuing CA",
          },
        ],
      );
      for (const backend of ["tls", "local"]) {
        const spec = parseClusterSpec(
          withChange(kvmSpec(), (s) => {
            s.pki = { backend, certificateAuthorities: { trusted: ["initial", "next"], issuing: "next" } };
          }),
        );
        assert.equal(spec.pki.certificateAuthorities.issuing, "next");
      }
      expectIssues(
        withChange(awsSpec(), (s) => {
          s.pki = {
            backend: "vault",
            vault: { address: "https://vault.example.com" },
            certificateAuthorities: { trusted: ["initial", "next"], issuing: "initial" },
          };
        }),
        [
          {
            path: "pki.certificateAuthorities",
            message:
              "CA rotation is built for pki.backend local and tls (got vault): remove the field, and rotate the CA in Vault with its issuers (see components/pki/README.md)",
          },
        ],
      );
    });

    it("names the rule of a user name", () =>
      expectIssues(
        withChange(kvmSpec(), (s) => (s.pki = { backend: "local", users: [{ name: "Jane Doe" }] })),
        [
          {
            path: "pki.users[0].name",
            message:
              "must be 1 to 64 lowercase letters, digits, '.', '_', '@' or '-', starting and ending with a letter or digit (got 'Jane Doe')",
          },
        ],
      ));
  });

  it("formats its message with the source and one line per problem", () => {
    try {
      parseClusterSpec(
        withChange(awsSpec(), (s) => (s.masters = { count: 2 })),
        "stacks/Pulumi.t.yaml",
      );
      assert.fail("accepted");
    } catch (err) {
      assert.ok(err instanceof ClusterSpecError);
      assert.equal(
        err.message,
        "invalid cluster spec: stacks/Pulumi.t.yaml: masters.count: must be 1, 3 or 5 (got 2): etcd needs an odd quorum",
      );
    }
  });
});
