/** GuestCluster under mocks: PKI, bootstrap and the platform composed for each example stack. */
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { installMocks, promiseOf, settle, type MockRecorder } from "./mocks";
import { LOCAL, fakePkiOutputs } from "./pki/helpers";

const ROOT = path.resolve(__dirname, "../..");

/** The raw `g8s:cluster` of an example stack file. */
export function exampleSpec(stack: string): unknown {
  const file = parse(readFileSync(path.join(ROOT, `stacks/Pulumi.${stack}.yaml`), "utf8")) as {
    config: Record<string, unknown>;
  };
  return file.config["g8s:cluster"];
}

/** A Secret's files (its `stringData`, unwrapped from the secret marker the engine receives). */
function secretFiles(inputs: Record<string, unknown>): Record<string, string> {
  const data = inputs.stringData as { value?: Record<string, string> } & Record<string, string>;
  return data.value ?? data;
}

describe("GuestCluster", () => {
  describe("kvm (stacks/Pulumi.edge7.yaml)", () => {
    let recorder: MockRecorder;
    let cluster: import("../../components").GuestCluster;
    let pulumiMod: typeof pulumi;

    before(async () => {
      recorder = installMocks({ stack: "edge7", outputs: fakePkiOutputs });
      pulumiMod = await import("@pulumi/pulumi");
      const { GuestCluster, parseClusterSpec } = await import("../../components");
      const spec = parseClusterSpec(exampleSpec("edge7"), "stacks/Pulumi.edge7.yaml");
      cluster = new GuestCluster("edge7", { spec, now: new Date("2026-11-25T12:00:00Z") });
      await settle();
    });

    it("is a g8s:index:GuestCluster with the PKI and the KVM platform as children", () => {
      const top = recorder.one("g8s:index:GuestCluster", "edge7");
      assert.equal(top.custom, false);
      assert.equal(
        recorder.one("g8s:pki:ClusterPki", "edge7-pki").parent?.endsWith("g8s:index:GuestCluster::edge7"),
        true,
      );
      assert.equal(
        recorder.one("g8s:kvm:Cluster", "edge7-kvm").parent?.endsWith("g8s:index:GuestCluster::edge7"),
        true,
      );
    });

    it("serves the API at the guest's API Service and hands out a secret admin kubeconfig", async () => {
      assert.equal(await promiseOf(cluster.apiEndpoint), "https://api.g8s-edge7.svc:6443");
      assert.equal(await pulumiMod.isSecret(cluster.adminKubeconfig), true);
      assert.match(await promiseOf(cluster.adminKubeconfig), /server: https:\/\/api\.g8s-edge7\.svc:6443/);
      assert.deepEqual(await promiseOf(cluster.platform), { namespace: "g8s-edge7" });
    });

    it("shares node secrets as Secrets only, and user-data without secret values", () => {
      const secrets = recorder.byType("kubernetes:core/v1:Secret");
      assert.equal(recorder.byType("kubernetes:core/v1:ConfigMap").length, 0);
      const userData = secrets.filter((x) => x.name.includes("user-data"));
      const nodeSecrets = secrets.filter((x) => x.name.endsWith("-secrets"));
      assert.deepEqual(nodeSecrets.map((x) => x.name).sort(), ["edge7-kvm-master-secrets", "edge7-kvm-worker-secrets"]);
      assert.equal(userData.length, 2);
      // Every secret file the nodes receive (keys, kubeconfigs, the bootstrap token), as the mocks made them.
      const secretValues = nodeSecrets.flatMap((s) =>
        Object.entries(secretFiles(s.inputs)).filter(([file]) => !/\.(crt|pub)$/.test(file)),
      );
      const files = secretValues.map(([file]) => file);
      for (const file of ["sa.key", "apiserver.key", "bootstrap-token", "kubelet-client.key"]) {
        assert.ok(files.includes(file), `${file} is a node secret`);
      }
      for (const s of userData) {
        const text = JSON.stringify(s.inputs);
        for (const [file, value] of secretValues) {
          assert.ok(!text.includes(value), `${s.name} carries the value of ${file}`);
        }
        // Whatever the file: no private key the mocks issued (`KEY <resource>`), no token.
        assert.doesNotMatch(text, /\bKEY edge7-/, s.name);
      }
    });

    it("derives the bootstrap token from a random secret of its own, not from the service-account key", async () => {
      const { bootstrapToken } = await import("../../components/bootstrap");
      const files = (name: string) => secretFiles(recorder.one("kubernetes:core/v1:Secret", name).inputs);
      const token = files("edge7-kvm-master-secrets")["bootstrap-token"].trim();
      assert.ok(files("edge7-kvm-worker-secrets")["discovery.conf"].includes(token), "workers join with it");
      assert.notEqual(token, bootstrapToken("KEY edge7-pki-sa-key", "edge7"), "derived from the service-account key");
      const seed = recorder.one(LOCAL.secret, "edge7-bootstrap-token-seed");
      assert.match(seed.parent ?? "", /g8s:index:GuestCluster::edge7$/);
      assert.deepEqual(seed.additionalSecretOutputs, ["value"]);
      assert.equal(token, bootstrapToken("SEED edge7-bootstrap-token-seed 5f0e2a9c", "edge7"));
    });

    it("runs one master StatefulSet and one per pool", () => {
      const sets = recorder
        .byType("kubernetes:apps/v1:StatefulSet")
        .map((r) => r.name)
        .sort();
      assert.deepEqual(sets, ["edge7-kvm-master", "edge7-kvm-pool-default"]);
    });
  });
});
