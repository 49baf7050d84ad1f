/** AwsNetwork under mocks: the subnet layout, resource counts per zone count and NAT mode, routes and tags. */
import * as assert from "node:assert/strict";
import { installMocks, promiseOf, settle, type MockRecorder } from "../mocks";
import { T, ZONE_NAMES, build, clusterSpec, fakeAwsOutputs, stubZones } from "./helpers";

type AwsModule = typeof import("../../../components/aws");

describe("aws subnet layout", () => {
  let mod: AwsModule;
  before(async () => {
    installMocks();
    mod = await import("../../../components/aws");
  });

  it("cuts a /16 into /20s: private at slot i, public at slot 8 + i", () => {
    assert.deepEqual(mod.zoneSubnets("10.1.0.0/16", 0), { private: "10.1.0.0/20", public: "10.1.128.0/20" });
    assert.deepEqual(mod.zoneSubnets("10.1.0.0/16", 2), { private: "10.1.32.0/20", public: "10.1.160.0/20" });
    assert.deepEqual(mod.zoneSubnets("10.1.0.0/16", 5), { private: "10.1.80.0/20", public: "10.1.208.0/20" });
  });

  it("never goes below /24: a /22 holds two zones of /24s", () => {
    assert.deepEqual(mod.zoneSubnets("10.9.0.0/22", 0), { private: "10.9.0.0/24", public: "10.9.2.0/24" });
    assert.deepEqual(mod.zoneSubnets("10.9.0.0/22", 1), { private: "10.9.1.0/24", public: "10.9.3.0/24" });
    assert.throws(() => mod.zoneSubnets("10.9.0.0/22", 2), /has room for 2 availability zones, not zone #2/);
    assert.deepEqual(mod.zoneSubnets("10.9.0.0/20", 5), { private: "10.9.5.0/24", public: "10.9.13.0/24" });
  });

  it("gives each master slot a fixed address (.10 + slot) in its zone's private subnet, round-robin", () => {
    assert.deepEqual(mod.masterAddresses(clusterSpec()), {
      "master-0": "10.1.0.10",
      "master-1": "10.1.16.11",
      "master-2": "10.1.32.12",
    });
    assert.deepEqual(
      mod.masterAddresses(
        clusterSpec((s) => {
          s.aws.availabilityZones = 2;
          s.masters = { count: 5 };
        }),
      ),
      {
        "master-0": "10.1.0.10",
        "master-1": "10.1.16.11",
        "master-2": "10.1.0.12",
        "master-3": "10.1.16.13",
        "master-4": "10.1.0.14",
      },
    );
  });
});

const variants = [
  { zones: 1, nat: "perAz", nats: 1 },
  { zones: 1, nat: "single", nats: 1 },
  { zones: 2, nat: "perAz", nats: 2 },
  { zones: 2, nat: "single", nats: 1 },
  { zones: 3, nat: "perAz", nats: 3 },
  { zones: 3, nat: "single", nats: 1 },
] as const;

describe("Network resource counts", () => {
  for (const v of variants) {
    describe(`${v.zones} zone(s), NAT ${v.nat}`, () => {
      let recorder: MockRecorder;
      before(async () => {
        recorder = installMocks({ outputs: fakeAwsOutputs });
        const mod = await import("../../../components/aws");
        const aws = await import("@pulumi/aws");
        const provider = new aws.Provider("p", { region: "eu-central-1" });
        const network = new mod.AwsNetwork(
          "eu1prod-net",
          {
            spec: clusterSpec((s) => {
              s.aws.availabilityZones = v.zones;
              s.aws.natGateways = v.nat;
            }),
            availabilityZoneNames: ZONE_NAMES.slice(0, v.zones),
          },
          { provider },
        );
        await promiseOf(network.privateSubnetIds);
        await settle();
      });

      it("gives every resource the provider of the component's options, through its parent", () => {
        for (const r of recorder.resources.filter((x) => x.custom && x.type !== T.provider)) {
          assert.match(r.provider ?? "", /::pulumi:providers:aws::p::/, `${r.type} ${r.name}`);
        }
      });

      it("creates one VPC, one gateway, a public and a private subnet per zone", () => {
        const count = (type: string) => recorder.byType(type).length;
        assert.deepEqual(
          {
            vpc: count(T.vpc),
            igw: count(T.igw),
            subnets: count(T.subnet),
            eips: count(T.eip),
            nats: count(T.nat),
            routeTables: count(T.routeTable),
            routes: count(T.route),
            associations: count(T.rta),
            endpoints: count(T.endpoint),
          },
          {
            vpc: 1,
            igw: 1,
            subnets: 2 * v.zones,
            eips: v.nats,
            nats: v.nats,
            routeTables: 1 + v.zones,
            routes: 1 + v.zones,
            associations: 2 * v.zones,
            endpoints: 1,
          },
        );
      });

      it("routes every private subnet's zone through its own NAT (perAz) or the first zone's (single)", () => {
        const zones = ["eu-central-1a", "eu-central-1b", "eu-central-1c"].slice(0, v.zones);
        zones.forEach((zone) => {
          const route = recorder.one(T.route, `eu1prod-net-route-private-${zone}-nat`).inputs;
          const natZone = v.nat === "perAz" ? zone : "eu-central-1a";
          assert.deepEqual(route, {
            routeTableId: `eu1prod-net-rt-private-${zone}-id`,
            destinationCidrBlock: "0.0.0.0/0",
            natGatewayId: `eu1prod-net-nat-${natZone}-id`,
          });
        });
      });
    });
  }
});

describe("Network (3 zones, perAz, in an AwsCluster)", () => {
  let recorder: MockRecorder;
  before(async () => {
    recorder = installMocks({ outputs: fakeAwsOutputs });
    stubZones(recorder, ["eu-central-1c", "eu-central-1a", "eu-central-1b", "eu-central-1d"]);
    const mod = await import("../../../components/aws");
    await build(mod, clusterSpec());
  });

  it("creates the VPC with DNS support and hostnames", () => {
    assert.deepEqual(recorder.one(T.vpc, "eu1prod-net-vpc").inputs, {
      cidrBlock: "10.1.0.0/16",
      enableDnsSupport: true,
      enableDnsHostnames: true,
      tags: { Name: "eu1prod-net-vpc" },
    });
    assert.match(recorder.one(T.vpc, "eu1prod-net-vpc").parent ?? "", /g8s:aws:Network::eu1prod-net$/);
  });

  it("takes the first zones by name and carves their subnets by slot, tagged for load balancers", () => {
    const expected = [
      ["eu-central-1a", "10.1.0.0/20", "10.1.128.0/20"],
      ["eu-central-1b", "10.1.16.0/20", "10.1.144.0/20"],
      ["eu-central-1c", "10.1.32.0/20", "10.1.160.0/20"],
    ];
    for (const [zone, priv, pub] of expected) {
      assert.deepEqual(recorder.one(T.subnet, `eu1prod-net-subnet-private-${zone}`).inputs, {
        vpcId: "eu1prod-net-vpc-id",
        availabilityZone: zone,
        cidrBlock: priv,
        mapPublicIpOnLaunch: false,
        tags: {
          Name: `eu1prod-net-subnet-private-${zone}`,
          "kubernetes.io/role/internal-elb": "1",
          "kubernetes.io/cluster/eu1prod": "owned",
        },
      });
      assert.deepEqual(recorder.one(T.subnet, `eu1prod-net-subnet-public-${zone}`).inputs, {
        vpcId: "eu1prod-net-vpc-id",
        availabilityZone: zone,
        cidrBlock: pub,
        mapPublicIpOnLaunch: false,
        tags: {
          Name: `eu1prod-net-subnet-public-${zone}`,
          "kubernetes.io/role/elb": "1",
          "kubernetes.io/cluster/eu1prod": "owned",
        },
      });
    }
    assert.equal(recorder.byType(T.subnet).filter((s) => s.name.endsWith("eu-central-1d")).length, 0);
  });

  it("sends the public subnets to the internet gateway and puts each NAT in its zone's public subnet", () => {
    assert.deepEqual(recorder.one(T.route, "eu1prod-net-route-public-internet").inputs, {
      routeTableId: "eu1prod-net-rt-public-id",
      destinationCidrBlock: "0.0.0.0/0",
      gatewayId: "eu1prod-net-igw-id",
    });
    for (const zone of ["eu-central-1a", "eu-central-1b", "eu-central-1c"]) {
      assert.deepEqual(recorder.one(T.rta, `eu1prod-net-rta-public-${zone}`).inputs, {
        subnetId: `eu1prod-net-subnet-public-${zone}-id`,
        routeTableId: "eu1prod-net-rt-public-id",
      });
      assert.deepEqual(recorder.one(T.nat, `eu1prod-net-nat-${zone}`).inputs, {
        allocationId: `eu1prod-net-eip-nat-${zone}-id`,
        subnetId: `eu1prod-net-subnet-public-${zone}-id`,
        connectivityType: "public",
        tags: { Name: `eu1prod-net-nat-${zone}` },
      });
      assert.deepEqual(recorder.one(T.eip, `eu1prod-net-eip-nat-${zone}`).inputs, {
        domain: "vpc",
        tags: { Name: `eu1prod-net-eip-nat-${zone}` },
      });
    }
  });

  it("adds an S3 gateway endpoint to the private route tables", () => {
    assert.deepEqual(recorder.one(T.endpoint, "eu1prod-net-vpce-s3").inputs, {
      vpcId: "eu1prod-net-vpc-id",
      serviceName: "com.amazonaws.eu-central-1.s3",
      vpcEndpointType: "Gateway",
      routeTableIds: ["eu-central-1a", "eu-central-1b", "eu-central-1c"].map((z) => `eu1prod-net-rt-private-${z}-id`),
      tags: { Name: "eu1prod-net-vpce-s3" },
    });
  });
});
