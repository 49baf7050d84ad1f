/** AwsCluster variants: determinism, pool order, ingress off, public API, zone lookups and bad input. */
import * as assert from "node:assert/strict";
import { installMocks, type MockRecorder } from "../mocks";
import { GET_ZONE_TOKEN, T, ZONE_NAMES, build, clusterSpec, eu1prodSpec, fakeAwsOutputs, stubZones } from "./helpers";
import type { AwsClusterSpec } from "../../../components/spec";

type AwsModule = typeof import("../../../components/aws");

/** Builds `spec` under fresh mocks and returns what the engine would see, sorted by type and name. */
async function evaluate(
  spec: AwsClusterSpec,
  lookupZone = false,
): Promise<{ recorder: MockRecorder; graph: string[] }> {
  const recorder = installMocks({ outputs: fakeAwsOutputs });
  stubZones(recorder);
  recorder.calls.set(GET_ZONE_TOKEN, (args) => ({
    zoneId: `looked-up-${String(args.inputs.name)}`,
    name: args.inputs.name,
  }));
  const mod: AwsModule = await import("../../../components/aws");
  await build(mod, spec, { lookupZone });
  const graph = recorder.resources
    .map((r) =>
      JSON.stringify({ type: r.type, name: r.name, inputs: r.inputs, parent: r.parent, provider: r.provider }),
    )
    .sort();
  return { recorder, graph };
}

describe("AwsCluster determinism", () => {
  let first: string[];
  let second: string[];
  let reordered: string[];
  before(async () => {
    first = (await evaluate(eu1prodSpec())).graph;
    second = (await evaluate(eu1prodSpec())).graph;
    const spec = eu1prodSpec();
    const swapped = { ...spec, nodePools: [...spec.nodePools].reverse() };
    assert.deepEqual(
      swapped.nodePools.map((p) => p.name),
      ["batch", "general"],
    );
    reordered = (await evaluate(swapped)).graph;
  });

  it("gives identical inputs on two evaluations of the same spec (no spurious drift)", () => {
    assert.equal(first.length, 123);
    assert.deepEqual(second, first);
  });

  it("keeps every name and input when the pools are reordered", () => {
    assert.deepEqual(reordered, first);
  });
});

describe("AwsCluster without ingress, with a public API and a looked-up zone", () => {
  let recorder: MockRecorder;
  before(async () => {
    ({ recorder } = await evaluate(
      clusterSpec((s) => {
        s.ingress = { enabled: false };
        s.aws.publicApi = true;
        s.aws.availabilityZones = 2;
        s.masters = { count: 1 };
      }),
      true,
    ));
  });

  it("creates no ingress load balancer, group, node-port rules or wildcard record", () => {
    assert.deepEqual(recorder.byType(T.ingress), []);
    assert.deepEqual(
      recorder.byType(T.lb).map((r) => r.name),
      ["eu1prod-cp-api-lb"],
    );
    assert.ok(!recorder.byType(T.sg).some((r) => r.name.includes("ingress")));
    assert.ok(!recorder.byType(T.ingressRule).some((r) => r.name.includes("ingress")));
    assert.deepEqual(recorder.byType(T.asgAttachment), []);
    assert.deepEqual(
      recorder.byType(T.record).map((r) => r.name),
      ["eu1prod-cp-api-record"],
    );
  });

  it("makes the API load balancer internet-facing in the public subnets (reachable only from allowed CIDRs)", () => {
    const lb = recorder.one(T.lb, "eu1prod-cp-api-lb").inputs;
    assert.equal(lb.internal, false);
    assert.deepEqual(
      lb.subnets,
      ZONE_NAMES.slice(0, 2).map((z) => `eu1prod-net-subnet-public-${z}-id`),
    );
    assert.ok(!recorder.byType(T.ingressRule).some((r) => r.inputs.cidrIpv4 !== undefined));
  });

  it("runs a single master in the first zone", () => {
    assert.deepEqual(
      recorder
        .byType(T.asg)
        .map((r) => [r.name, r.inputs.vpcZoneIdentifiers])
        .filter(([n]) => String(n).includes("-cp-")),
      [["eu1prod-cp-asg-master-0", ["eu1prod-net-subnet-private-eu-central-1a-id"]]],
    );
  });

  it("looks the hosted zone up by base domain when no zoneId is given", () => {
    assert.equal(recorder.one(T.record, "eu1prod-cp-api-record").inputs.zoneId, "looked-up-k8s.example.com");
  });
});

describe("AwsCluster bad input", () => {
  let mod: AwsModule;
  let aws: typeof import("@pulumi/aws");
  before(async () => {
    installMocks({ outputs: fakeAwsOutputs });
    mod = await import("../../../components/aws");
    aws = await import("@pulumi/aws");
  });

  it("refuses a region with fewer usable zones than aws.availabilityZones", () => {
    const provider = new aws.Provider("p-few", { region: "eu-central-1" });
    assert.throws(
      () =>
        new mod.AwsNetwork(
          "few-net",
          { spec: clusterSpec(), availabilityZoneNames: ["eu-central-1a", "eu-central-1b"] },
          { provider },
        ),
      {
        message:
          "aws.availabilityZones is 3 but region eu-central-1 offers 2 usable zone(s) (eu-central-1a, eu-central-1b): " +
          "set aws.availabilityZones to at most 2",
      },
    );
  });

  it("refuses secret file names that cannot be SSM parameter names", () => {
    assert.throws(
      () =>
        new mod.AwsCluster("bad", {
          spec: clusterSpec(),
          zoneId: "Z1",
          nodeSecrets: { master: { "../ca key": "x" }, worker: {} },
          userData: { master: () => "", pool: () => "" },
        }),
      {
        message:
          "nodeSecrets.master: '../ca key' is not a valid secret file name: use letters, digits, '.', '_' and '-' " +
          "(it becomes the SSM parameter /g8s/<id>/master/<file>)",
      },
    );
  });
});

describe("AwsCluster in a region with too few zones", () => {
  it("stops with the zone problem once the lookup answers, before any zonal child exists", async () => {
    const recorder = installMocks({ outputs: fakeAwsOutputs });
    stubZones(recorder, ["eu-central-1a", "eu-central-1b"]);
    const mod = await import("../../../components/aws");
    const cluster = new mod.AwsCluster("few", {
      spec: clusterSpec(),
      zoneId: "Z1",
      nodeSecrets: { master: {}, worker: {} },
      userData: { master: () => "", pool: () => "" },
    });
    // An Output's own promise (internal to the SDK) is the one place its rejection is visible.
    const vpcId = (cluster.vpcId as unknown as { promise(): Promise<string> }).promise();
    await assert.rejects(vpcId, {
      message:
        "aws.availabilityZones is 3 but region eu-central-1 offers 2 usable zone(s) (eu-central-1a, eu-central-1b): " +
        "set aws.availabilityZones to at most 2",
    });
    assert.deepEqual(recorder.byType(T.vpc), []);
  });
});
