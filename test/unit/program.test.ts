/** The Pulumi program (index.ts) evaluated under mocks with the example stacks' config. */
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { installMocks } from "./mocks";

const ROOT = path.resolve(__dirname, "../..");

function stackConfig(stack: string): Record<string, string> {
  const file = parse(readFileSync(path.join(ROOT, `stacks/Pulumi.${stack}.yaml`), "utf8")) as {
    config: Record<string, unknown>;
  };
  return Object.fromEntries(
    Object.entries(file.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
}

describe("index.ts (the Pulumi program)", () => {
  it("validates the eu1prod stack's spec and exports the cluster identity", async () => {
    installMocks({ stack: "eu1prod", config: stackConfig("eu1prod") });
    const program = await import("../../index");
    assert.equal(program.clusterId, "eu1prod");
    assert.equal(program.provider, "aws");
    assert.equal(program.clusterDomain, "eu1prod.k8s.example.com");
    assert.equal(program.kubernetesVersion, "1.31.4");
  });

  it("stops with every located problem when the spec is invalid", async () => {
    installMocks({ stack: "edge7" });
    const { loadClusterSpec } = await import("../../index");
    const pulumi = await import("@pulumi/pulumi");
    const config = stackConfig("edge7");
    const bad = JSON.parse(config["g8s:cluster"]) as Record<string, unknown>;
    bad.masters = { count: 2 };
    pulumi.runtime.setAllConfig({ "g8s:cluster": JSON.stringify(bad) });
    assert.throws(
      () => loadClusterSpec(new pulumi.Config("g8s"), "edge7"),
      (err: Error) =>
        err instanceof pulumi.RunError &&
        err.message === "stacks/Pulumi.edge7.yaml: masters.count: must be 1, 3 or 5 (got 2): etcd needs an odd quorum",
    );
    pulumi.runtime.setAllConfig({ "g8s:cluster": config["g8s:cluster"] });
    assert.throws(
      () => loadClusterSpec(new pulumi.Config("g8s"), "other"),
      /stacks\/Pulumi.other.yaml: id: must equal the stack name 'other'/,
    );
    pulumi.runtime.setAllConfig({});
    assert.throws(() => loadClusterSpec(new pulumi.Config("g8s"), "edge7"), /g8s:cluster: is missing/);
  });
});
