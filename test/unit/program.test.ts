/** The Pulumi program (index.ts) evaluated under mocks with the example stacks' config. */
import * as assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { installMocks, promiseOf, settle, type MockRecorder } from "./mocks";
import { mocksFor, stackConfig } from "./stacks";

/** The g8s policies over a recorded graph (inputs as props, recorded options). */
async function violationsOf(recorder: MockRecorder, config: object): Promise<string[]> {
  const { evaluatePolicies, formatViolation } = await import("../../automation/policy/runner");
  const { G8S_POLICIES } = await import("../../policy/policies");
  const resources = recorder.resources
    .filter((r) => r.custom)
    .map((r) => ({
      urn: `urn:pulumi:test::g8s::${r.type}::${r.name}`,
      type: r.type,
      name: r.name,
      props: r.inputs,
      protect: r.protect === true,
      provider: r.provider,
    }));
  return (await evaluatePolicies(G8S_POLICIES, resources, config)).map(formatViolation);
}

/** A launch template's user-data as text (base64 of text or of gzip). */
function decodeUserData(b64: string): string {
  const bytes = Buffer.from(b64, "base64");
  return (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes).toString("utf8");
}

describe("index.ts (the Pulumi program)", () => {
  it("builds the eu1prod stack (aws) and exports its endpoint, secret kubeconfig and platform", async () => {
    const recorder = mocksFor("eu1prod", stackConfig("eu1prod"));
    const program = await import("../../index");
    const pulumi = await import("@pulumi/pulumi");
    assert.equal(program.clusterId, "eu1prod");
    assert.equal(program.provider, "aws");
    assert.equal(program.clusterDomain, "eu1prod.k8s.example.com");
    assert.equal(program.kubernetesVersion, "1.31.4");
    assert.equal(await promiseOf(program.apiEndpoint), "https://api.eu1prod.k8s.example.com:6443");
    assert.equal(await pulumi.isSecret(program.adminKubeconfig), true);
    const platform = (await promiseOf(program.platform)) as { availabilityZones: string[]; vpcId: string };
    assert.deepEqual(platform.availabilityZones, ["eu-central-1a", "eu-central-1b", "eu-central-1c"]);
    await settle();
    assert.equal(recorder.byType("g8s:index:GuestCluster").length, 1);
    assert.equal(recorder.byType("aws:autoscaling/group:Group").length, 3 + 2, "3 master slots, 2 pools");
    const templates = recorder.byType("aws:ec2/launchTemplate:LaunchTemplate");
    for (const lt of templates) {
      const text = decodeUserData(String(lt.inputs.userData));
      assert.match(text, /^#cloud-config\n/, lt.name);
      assert.doesNotMatch(text, /PRIVATE KEY|KEY eu1prod/, `${lt.name}: no key material in user-data`);
    }
    const master0 = decodeUserData(String(templates.find((t) => t.name.includes("master-0"))?.inputs.userData));
    assert.match(master0, /g8s-attach-master/);
    assert.match(master0, /advertiseAddress: 10\.1\.0\.10/);
    // kubeadm init reaches the API server at that address: it must be in the serving certificate.
    const apiCert = recorder
      .byType("vault:pkiSecret/secretBackendCert:SecretBackendCert")
      .find((c) => c.name.endsWith("-apiserver"));
    assert.ok(apiCert, "the apiserver certificate");
    for (const ip of ["10.1.0.10", "10.1.16.11", "10.1.32.12", "127.0.0.1"]) {
      assert.ok((apiCert.inputs.ipSans as string[]).includes(ip), `API certificate IP SAN ${ip}`);
    }
  });

  it("complies with every g8s policy (aws)", async () => {
    const recorder = mocksFor("eu1prod", stackConfig("eu1prod"));
    const pulumi = await import("@pulumi/pulumi");
    const { defineCluster } = await import("../../index");
    defineCluster(new pulumi.Config("g8s"), "eu1prod");
    await settle();
    assert.deepEqual(await violationsOf(recorder, { clusterId: "eu1prod", publicApi: false }), []);
  });

  it("builds the edge7 stack (kvm) through the same program", async () => {
    const recorder = mocksFor("edge7");
    const pulumi = await import("@pulumi/pulumi");
    const { defineCluster } = await import("../../index");
    pulumi.runtime.setAllConfig(stackConfig("edge7"));
    const outputs = defineCluster(new pulumi.Config("g8s"), "edge7");
    assert.equal(outputs.provider, "kvm");
    assert.equal(await promiseOf(outputs.apiEndpoint), "https://api.g8s-edge7.svc:6443");
    await settle();
    assert.deepEqual(
      recorder
        .byType("kubernetes:apps/v1:StatefulSet")
        .map((r) => r.name)
        .sort(),
      ["edge7-kvm-master", "edge7-kvm-pool-default"],
    );
    assert.deepEqual(await violationsOf(recorder, { clusterId: "edge7" }), [], "complies with every g8s policy (kvm)");
  });

  it("exports a secret kubeconfig per pki.users entry, its certificate carrying the user's group", async () => {
    const config = stackConfig("edge7");
    const cluster = JSON.parse(config["g8s:cluster"]) as { pki: Record<string, unknown> };
    cluster.pki.users = [{ name: "jane", groups: ["dev-team"] }];
    const recorder = mocksFor("edge7");
    const pulumi = await import("@pulumi/pulumi");
    const { defineCluster } = await import("../../index");
    pulumi.runtime.setAllConfig({ ...config, "g8s:cluster": JSON.stringify(cluster) });
    const outputs = defineCluster(new pulumi.Config("g8s"), "edge7");
    assert.equal(await pulumi.isSecret(outputs.userKubeconfigs), true);
    const kubeconfigs = await promiseOf(outputs.userKubeconfigs);
    assert.deepEqual(Object.keys(kubeconfigs), ["jane"]);
    assert.match(kubeconfigs.jane, /name: jane/);
    await settle();
    const certs = recorder.byType("tls:index/locallySignedCert:LocallySignedCert").map((r) => r.name);
    assert.ok(
      certs.some((n) => n.endsWith("user-jane")),
      certs.join(", "),
    );
    const request = recorder.byType("tls:index/certRequest:CertRequest").find((r) => r.name.endsWith("user-jane"));
    const subject = request?.inputs.subject as { commonName: string; organization: string };
    assert.deepEqual([subject.commonName, subject.organization], ["jane", "dev-team"]);
  });

  it("exports what renewal needs as plain values: every certificate, its resources, and the node Secrets that carry them", async () => {
    const config = stackConfig("edge7");
    const cluster = JSON.parse(config["g8s:cluster"]) as { pki: Record<string, unknown> };
    cluster.pki.users = [{ name: "jane", groups: ["dev-team"] }];
    mocksFor("edge7");
    const pulumi = await import("@pulumi/pulumi");
    const { defineCluster } = await import("../../index");
    pulumi.runtime.setAllConfig({ ...config, "g8s:cluster": JSON.stringify(cluster) });
    const outputs = defineCluster(new pulumi.Config("g8s"), "edge7");
    assert.equal(await pulumi.isSecret(outputs.pki), false, "readable without the passphrase");
    const pki = await promiseOf(outputs.pki);
    const keys = Object.keys(pki.certificates).sort();
    for (const key of ["ca", "apiserver", "etcd-master-0", "worker", "admin", "user-jane"]) {
      assert.ok(keys.includes(key), `${key} in ${keys.join(", ")}`);
    }
    // tls: a leaf is its key, request and certificate, replaced together when the window rolls over.
    const api = pki.certificates.apiserver;
    assert.deepEqual(
      api.urns.map((u) => u.split("::").pop()),
      ["edge7-pki-key-apiserver", "edge7-pki-csr-apiserver", "edge7-pki-cert-apiserver"],
    );
    const ttl = 24 * 3600;
    const window = Math.floor(Date.now() / 1000 / (ttl / 2));
    assert.equal(api.renewAt, new Date((window + 1) * (ttl / 2) * 1000).toISOString());
    // The tls CA is never renewed by g8s: reported only.
    assert.deepEqual([pki.certificates.ca.renewAt, pki.certificates.ca.urns], ["", []]);
    assert.deepEqual(
      pki.carriers.map((u) => u.split("::").pop()),
      ["edge7-kvm-master-secrets", "edge7-kvm-worker-secrets"],
    );
  });

  it("names the SSM parameters as the carriers of an AWS cluster, and each Vault certificate as its own resource", async () => {
    mocksFor("eu1prod", stackConfig("eu1prod"));
    const pulumi = await import("@pulumi/pulumi");
    const { defineCluster } = await import("../../index");
    const outputs = defineCluster(new pulumi.Config("g8s"), "eu1prod");
    const pki = await promiseOf(outputs.pki);
    assert.ok(pki.carriers.length > 10);
    assert.ok(
      pki.carriers.every((u) => u.includes("aws:ssm/parameter:Parameter::")),
      pki.carriers[0],
    );
    assert.deepEqual(
      pki.certificates.worker.urns.map((u) => u.split("$").pop()),
      ["vault:pkiSecret/secretBackendCert:SecretBackendCert::eu1prod-pki-cert-worker"],
    );
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
