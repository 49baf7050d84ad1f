/** ClusterPki with the vault backend, under mocks: mount, root CA, roles, policies, certificates. */
import * as assert from "node:assert/strict";
import type * as pulumi from "@pulumi/pulumi";
import { installMocks, promiseOf, settle, type MockRecorder } from "../mocks";
import { VAULT, TLS, expectedCertificates, fakePkiOutputs, vaultClusterSpec } from "./helpers";

type Pki = typeof import("../../../components/pki");

const DOMAIN = "eu1prod.k8s.example.com";
const MASTERS = { "master-0": "10.1.32.10", "master-1": undefined, "master-2": "10.1.96.10" };

describe("ClusterPki (vault backend)", () => {
  let recorder: MockRecorder;
  let mod: Pki;
  let pulumiMod: typeof pulumi;
  let component: InstanceType<Pki["ClusterPki"]>;
  let userKubeconfig: pulumi.Output<string>;

  const expected = () =>
    expectedCertificates(DOMAIN, "172.31.0.1", MASTERS, {
      names: ["eu1prod-api-0123.elb.eu-central-1.amazonaws.com"],
      addresses: [],
    });

  before(async () => {
    recorder = installMocks({ outputs: fakePkiOutputs });
    pulumiMod = await import("@pulumi/pulumi");
    mod = await import("../../../components/pki");
    component = new mod.ClusterPki("eu1prod-pki", {
      spec: vaultClusterSpec(),
      apiEndpoint: `https://api.${DOMAIN}:6443`,
      apiNames: ["eu1prod-api-0123.elb.eu-central-1.amazonaws.com"],
      // Reordered on purpose: names follow the keys, not the position.
      masterNames: ["master-2", "master-0", "master-1"],
      masterAddresses: { "master-0": "10.1.32.10", "master-2": "10.1.96.10" },
      vaultToken: "s.test-token",
    });
    userKubeconfig = component.userKubeconfig("jane", ["dev-team", "oncall"]);
    await promiseOf(component.bundles);
    await settle();
  });

  it("builds its own Vault provider from the spec and the token, as a secret", async () => {
    const provider = recorder.one(VAULT.provider, "eu1prod-pki-vault");
    assert.equal(provider.inputs.address, "https://vault.example.com");
    assert.deepEqual(provider.inputs.token, {
      [pulumiMod.runtime.specialSigKey]: pulumiMod.runtime.specialSecretSig,
      value: "s.test-token",
    });
    assert.equal(provider.inputs.namespace, undefined);
    assert.match(provider.parent ?? "", /g8s:pki:ClusterPki::eu1prod-pki$/);
  });

  it("passes the provider and the parent to every Vault child", () => {
    const children = recorder.resources.filter((r) => r.type.startsWith("vault:"));
    // mount, root CA, URLs, 4 component roles, the certificates, jane's role and certificate
    assert.equal(children.length, 1 + 1 + 1 + 4 + expected().length + 2);
    for (const r of children) {
      assert.match(r.provider ?? "", /pulumi:providers:vault::eu1prod-pki-vault::eu1prod-pki-vault-id$/, r.name);
      assert.match(r.parent ?? "", /g8s:pki:ClusterPki::eu1prod-pki$/, r.name);
    }
  });

  it("protects the PKI mount (its deletion deletes the CA's key), and nothing else", () => {
    assert.deepEqual(
      recorder.resources.filter((r) => r.protect).map((r) => r.name),
      ["eu1prod-pki-mount"],
    );
  });

  it("mounts a PKI engine at pki-<id> whose leases never outlive the CA", () => {
    assert.deepEqual(recorder.one(VAULT.mount, "eu1prod-pki-mount").inputs, {
      path: "pki-eu1prod",
      type: "pki",
      description: "g8s cluster eu1prod: root CA and component certificates",
      defaultLeaseTtlSeconds: 86400,
      maxLeaseTtlSeconds: 315360000,
    });
  });

  it("generates the root CA inside Vault (type internal), CN = the cluster domain", () => {
    assert.deepEqual(recorder.one(VAULT.root, "eu1prod-pki-root-ca").inputs, {
      backend: "pki-eu1prod",
      type: "internal",
      commonName: DOMAIN,
      organization: "g8s",
      ttl: "315360000",
      keyType: "rsa",
      keyBits: 4096,
    });
  });

  it("never applies a new caTtl or baseDomain to the root CA (ignoreChanges): Vault would replace it with a new key", () => {
    assert.deepEqual(recorder.one(VAULT.root, "eu1prod-pki-root-ca").ignoreChanges, [
      "commonName",
      "organization",
      "ttl",
      "keyType",
      "keyBits",
    ]);
  });

  it("publishes issuing and CRL URLs of the mount", () => {
    assert.deepEqual(recorder.one(VAULT.urls, "eu1prod-pki-urls").inputs, {
      backend: "pki-eu1prod",
      issuingCertificates: ["https://vault.example.com/v1/pki-eu1prod/ca"],
      crlDistributionPoints: ["https://vault.example.com/v1/pki-eu1prod/crl"],
    });
  });

  it("creates one role per component and per user, and no policy: nothing but Pulumi talks to Vault", () => {
    const roles = ["api", "etcd", "worker", "admin", "user-jane"];
    for (const role of roles) {
      assert.equal(recorder.one(VAULT.role, `eu1prod-pki-role-${role}`).inputs.name, role);
    }
    assert.deepEqual(
      recorder
        .byType(VAULT.role)
        .map((r) => r.inputs.name)
        .sort(),
      [...roles].sort(),
    );
    assert.deepEqual(recorder.byType(VAULT.policy), []);
  });

  it("limits every role to exact names of the cluster: bare domains only, no subdomains, globs, wildcards or any name", () => {
    for (const role of recorder.byType(VAULT.role)) {
      const i = role.inputs;
      assert.equal(i.allowAnyName, false, role.name);
      assert.equal(i.allowGlobDomains, false, role.name);
      assert.equal(i.allowSubdomains, false, role.name);
      assert.equal(i.allowWildcardCertificates, false, role.name);
      assert.equal(i.allowBareDomains, true, role.name);
      assert.equal(i.useCsrCommonName, false, role.name);
      assert.equal(i.useCsrSans, false, role.name);
      assert.equal(i.ttl, "86400", role.name);
      assert.equal(i.maxTtl, "86400", role.name);
      assert.deepEqual(i.keyUsages, ["DigitalSignature", "KeyEncipherment"], role.name);
    }
    const allowed = (role: string) => recorder.one(VAULT.role, `eu1prod-pki-role-${role}`).inputs.allowedDomains;
    assert.deepEqual(allowed("api"), [
      "kube-apiserver",
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
      `api.${DOMAIN}`,
      "eu1prod-api-0123.elb.eu-central-1.amazonaws.com",
      "kube-apiserver-kubelet-client",
      "system:kube-controller-manager",
      "system:kube-scheduler",
      "front-proxy-client",
    ]);
    assert.deepEqual(allowed("etcd"), [
      "kube-apiserver-etcd-client",
      `master-2.${DOMAIN}`,
      "master-2",
      `etcd.${DOMAIN}`,
      `master-0.${DOMAIN}`,
      "master-0",
      `master-1.${DOMAIN}`,
      "master-1",
    ]);
    assert.deepEqual(allowed("worker"), [`worker.${DOMAIN}`]);
    assert.deepEqual(allowed("admin"), ["kubernetes-admin"]);
    assert.deepEqual(allowed("user-jane"), ["jane"]);
  });

  it("sets server and client flags, IP SANs, localhost and O per role as its certificates need", () => {
    const flags = (role: string) => {
      const i = recorder.one(VAULT.role, `eu1prod-pki-role-${role}`).inputs;
      return [i.serverFlag, i.clientFlag, i.allowIpSans, i.allowLocalhost, i.organizations];
    };
    assert.deepEqual(flags("api"), [true, true, true, true, []]);
    assert.deepEqual(flags("etcd"), [true, true, true, true, []]);
    assert.deepEqual(flags("worker"), [true, true, false, false, ["system:nodes"]]);
    assert.deepEqual(flags("admin"), [false, true, false, false, ["system:masters"]]);
    assert.deepEqual(flags("user-jane"), [false, true, false, false, ["dev-team", "oncall"]]);
  });

  for (const cert of expectedCertificates(DOMAIN, "172.31.0.1", MASTERS, {
    names: ["eu1prod-api-0123.elb.eu-central-1.amazonaws.com"],
    addresses: [],
  })) {
    it(`issues ${cert.key} from role ${cert.role}: CN ${cert.cn}, its SANs, 24h TTL, renewed at half the TTL`, () => {
      assert.deepEqual(recorder.one(VAULT.cert, `eu1prod-pki-cert-${cert.key}`).inputs, {
        backend: "pki-eu1prod",
        name: cert.role,
        commonName: cert.cn,
        altNames: cert.dns.filter((n) => n !== cert.cn),
        ipSans: cert.ip,
        ttl: "86400",
        format: "pem",
        privateKeyFormat: "pkcs8",
        autoRenew: true,
        minSecondsRemaining: 43200,
      });
      const role = recorder.one(VAULT.role, `eu1prod-pki-role-${cert.role}`).inputs;
      assert.ok((role.allowedDomains as string[]).includes(cert.cn), `${cert.cn} allowed by ${cert.role}`);
      if (cert.server) assert.equal(role.serverFlag, true);
      if (cert.client) assert.equal(role.clientFlag, true);
      if (cert.o) assert.deepEqual(role.organizations, [cert.o]);
    });
  }

  it("issues the user certificate from the user's own role (Vault takes O from the role)", () => {
    assert.deepEqual(recorder.one(VAULT.cert, "eu1prod-pki-user-jane").inputs, {
      backend: "pki-eu1prod",
      name: "user-jane",
      commonName: "jane",
      altNames: [],
      ipSans: [],
      ttl: "86400",
      format: "pem",
      privateKeyFormat: "pkcs8",
      autoRenew: true,
      minSecondsRemaining: 43200,
    });
  });

  it("marks every certificate's private key as a secret output", () => {
    for (const r of recorder.byType(VAULT.cert)) assert.deepEqual(r.additionalSecretOutputs, ["privateKey"], r.name);
  });

  it("keeps every private key, bundle and kubeconfig output secret", async () => {
    for (const [label, output] of [
      ["bundles", component.bundles],
      ["adminKubeconfig", component.adminKubeconfig],
      ["serviceAccountKey", component.serviceAccountKey],
      ["userKubeconfig", userKubeconfig],
    ] as const) {
      assert.equal(await pulumiMod.isSecret(output as pulumi.Output<unknown>), true, label);
    }
    assert.equal(await pulumiMod.isSecret(component.caCertPem), false);
  });

  it("hands the root CA to every bundle and exposes expiry as RFC 3339", async () => {
    const bundles = await promiseOf(component.bundles);
    assert.deepEqual(bundles.apiserver, {
      certPem: "CERT eu1prod-pki-cert-apiserver",
      keyPem: "KEY eu1prod-pki-cert-apiserver",
      caPem: "CA eu1prod-pki-root-ca",
    });
    assert.equal((await promiseOf(component.notAfter))["etcd-master-1"], "2025-03-02T10:00:00.000Z");
  });

  it("makes the service-account key with pulumi-tls (Vault PKI issues certificates, not bare keys)", () => {
    assert.deepEqual(recorder.one(TLS.key, "eu1prod-pki-sa-key").inputs, { algorithm: "RSA", rsaBits: 2048 });
    assert.equal(recorder.byType(TLS.key).length, 1);
  });
});

describe("ClusterPki (vault backend) configuration", () => {
  let recorder: MockRecorder;
  let mod: Pki;
  let pulumiMod: typeof pulumi;

  before(async () => {
    recorder = installMocks({ outputs: fakePkiOutputs });
    pulumiMod = await import("@pulumi/pulumi");
    mod = await import("../../../components/pki");
  });

  it("uses the Vault namespace in the provider and the published URLs, and leaves the token to VAULT_TOKEN", async () => {
    const spec = vaultClusterSpec();
    const withNamespace = {
      ...spec,
      pki: { ...spec.pki, vault: { address: "https://vault.example.com/", namespace: "platform/g8s" } },
    };
    new mod.ClusterPki("ns", { spec: withNamespace, apiEndpoint: `https://api.${DOMAIN}:6443` });
    await settle();
    const provider = recorder.one(VAULT.provider, "ns-vault").inputs;
    assert.equal(provider.namespace, "platform/g8s");
    assert.equal(provider.token, undefined);
    assert.deepEqual(recorder.one(VAULT.urls, "ns-urls").inputs.issuingCertificates, [
      "https://vault.example.com/v1/platform/g8s/pki-eu1prod/ca",
    ]);
  });

  it("refuses duplicate master keys", () => {
    assert.throws(
      () =>
        new mod.ClusterPki("dup", {
          spec: vaultClusterSpec(),
          apiEndpoint: `https://api.${DOMAIN}:6443`,
          masterNames: ["master-0", "master-0", "master-1"],
        }),
      (err: Error) =>
        err instanceof pulumiMod.ResourceError && err.message === "masterNames: 'master-0' is listed twice",
    );
  });

  it("refuses the admin group for a user", () => {
    const pki = new mod.ClusterPki("grp", { spec: vaultClusterSpec(), apiEndpoint: `https://api.${DOMAIN}:6443` });
    assert.throws(
      () => pki.userKubeconfig("eve", ["system:masters"]),
      (err: Error) =>
        err instanceof pulumiMod.ResourceError &&
        err.message === "userKubeconfig(eve): group system:masters is reserved for the admin kubeconfig",
    );
  });
});
