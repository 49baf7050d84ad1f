/**
 * The local PKI backend: ClusterPki's graph under mocks (the same certificate table as the tls
 * backend, secrets, no provider plugin), the spec, the renewal decision with an injected clock,
 * the providers with real crypto checked by openssl, and the serialized providers on their own.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import { parseClusterSpec, type ClusterSpec } from "../../../components/spec";
import { GET_ZONE_TOKEN, fakeAwsOutputs, stubZones } from "../aws/helpers";
import { installMocks, promiseOf, settle, type MockRecorder } from "../mocks";
import { awsSpec, expectIssues, kvmSpec, withChange } from "../spec/helpers";
import { LOCAL, TLS, expectedCertificates, fakePkiOutputs, tlsClusterSpec } from "./helpers";
import { extensionsOf, fieldsOf, keyMatchesCertificate, verify } from "./openssl";

type Pki = typeof import("../../../components/pki");
type Local = typeof import("../../../components/pki/local");

const NOW = new Date("2025-03-01T10:00:00Z");
/** How a secret input looks in the recorded inputs (rpc.specialSigKey / rpc.specialSecretSig). */
const SECRET = { key: "4dabf18193072939515e22adb298388d", sig: "1b47061264138c4ac30d75fd1eb44270" } as const;
const API = {
  apiEndpoint: "https://api.edge7.k8s.corp.internal:6443",
  apiNames: ["edge7-api.g8s-edge7.svc"],
  apiAddresses: ["10.96.0.20"],
  masterAddresses: { "master-0": "10.244.1.5" },
};

/** edge7 as in helpers.tlsClusterSpec, with `pki: { backend: local, certTtl: 24h }`. */
function localClusterSpec(): ClusterSpec {
  return parseClusterSpec(
    withChange(kvmSpec(), (s) => {
      s.masters = { count: 1 };
      s.kubernetes = { serviceCidr: "172.30.0.0/16", podCidr: "10.60.0.0/16" };
      s.pki = { backend: "local", certTtl: "24h" };
    }),
  );
}

describe("ClusterPki (local backend)", () => {
  let recorder: MockRecorder;
  let pulumiMod: typeof pulumi;
  let component: InstanceType<Pki["ClusterPki"]>;
  let userKubeconfig: pulumi.Output<string>;

  before(async () => {
    recorder = installMocks({ outputs: fakePkiOutputs });
    pulumiMod = await import("@pulumi/pulumi");
    const { ClusterPki } = await import("../../../components/pki");
    // The tls backend for the same cluster, as the reference table.
    new ClusterPki("tls-pki", { spec: tlsClusterSpec(), ...API, now: NOW });
    component = new ClusterPki("edge7-pki", { spec: localClusterSpec(), ...API });
    userKubeconfig = component.userKubeconfig("jane", ["dev-team", "ops-team"]);
    await promiseOf(component.bundles);
    await settle();
  });

  const ownChildren = () => recorder.resources.filter((r) => /g8s:pki:ClusterPki::edge7-pki$/.test(r.parent ?? ""));
  const leaf = (key: string) => recorder.one(LOCAL.cert, `edge7-pki-cert-${key}`).inputs;

  it("issues the tls backend's table: the same keys, CNs, O, DNS and IP SANs, usages and TTL", () => {
    const tlsKeys = recorder
      .byType(TLS.cert)
      .filter((r) => r.name.startsWith("tls-pki-cert-"))
      .map((r) => r.name.replace("tls-pki-cert-", ""))
      .sort();
    const localKeys = recorder
      .byType(LOCAL.cert)
      .filter((r) => r.name.startsWith("edge7-pki-cert-"))
      .map((r) => r.name.replace("edge7-pki-cert-", ""))
      .sort();
    assert.deepEqual(localKeys, tlsKeys);
    assert.equal(localKeys.length, 9);
    for (const key of tlsKeys) {
      const csr = recorder.one(TLS.csr, `tls-pki-csr-${key}`).inputs;
      const signed = recorder.one(TLS.cert, `tls-pki-cert-${key}`).inputs;
      const mine = leaf(key);
      const subject = csr.subject as { commonName: string; organization?: string };
      assert.equal(mine.commonName, subject.commonName, key);
      assert.deepEqual(mine.organizations, subject.organization ? [subject.organization] : [], key);
      assert.deepEqual(mine.dnsNames, csr.dnsNames, key);
      assert.deepEqual(mine.ipAddresses, csr.ipAddresses, key);
      const uses = signed.allowedUses as string[];
      assert.deepEqual(
        mine.usages,
        [...(uses.includes("server_auth") ? ["server"] : []), ...(uses.includes("client_auth") ? ["client"] : [])],
        key,
      );
      assert.equal(mine.ttlSeconds, (signed.validityPeriodHours as number) * 3600, key);
    }
  });

  for (const cert of expectedCertificates("edge7.k8s.corp.internal", "172.30.0.1", API.masterAddresses, {
    names: API.apiNames,
    addresses: API.apiAddresses,
  })) {
    it(`issues ${cert.key}: CN ${cert.cn}${cert.o ? `, O ${cert.o}` : ""}, its SANs and usages, 24h, from the CA`, () => {
      const inputs = leaf(cert.key);
      assert.equal(inputs.commonName, cert.cn);
      assert.deepEqual(inputs.organizations, cert.o ? [cert.o] : []);
      assert.deepEqual(inputs.dnsNames, cert.dns);
      assert.deepEqual(inputs.ipAddresses, cert.ip);
      assert.deepEqual(inputs.usages, [...(cert.server ? ["server"] : []), ...(cert.client ? ["client"] : [])]);
      assert.equal(inputs.ttlSeconds, 86400);
      assert.equal(inputs.caCertPem, "CA edge7-pki-ca");
      assert.deepEqual(inputs.caKeyPem, { [SECRET.key]: SECRET.sig, value: "CAKEY edge7-pki-ca" }, "a secret");
      assert.equal(inputs.keyAlgorithm, "ecdsa-p256");
      assert.equal(inputs.backdateSeconds, 30);
    });
  }

  it("protects the issuing CA and nothing else (the tls twin built beside it: its CA key and certificate)", () => {
    assert.deepEqual(
      recorder.resources
        .filter((r) => r.protect)
        .map((r) => r.name)
        .sort(),
      ["edge7-pki-ca", "tls-pki-ca", "tls-pki-ca-key"],
    );
  });

  it("never applies a new caTtl, baseDomain or key algorithm to the live CA (ignoreChanges): it would reissue it under another name", () => {
    assert.deepEqual(recorder.one(LOCAL.rootCa, "edge7-pki-ca").ignoreChanges, [
      "commonName",
      "organizations",
      "ttlSeconds",
      "keyAlgorithm",
    ]);
    assert.deepEqual(
      recorder.one(LOCAL.cert, "edge7-pki-cert-apiserver").ignoreChanges ?? [],
      [],
      "leaves follow the spec",
    );
  });

  it("creates the CA edge7-pki-ca: CN = the cluster domain, O g8s, valid for caTtl", () => {
    const ca = recorder.one(LOCAL.rootCa, "edge7-pki-ca").inputs;
    assert.equal(ca.commonName, "edge7.k8s.corp.internal");
    assert.deepEqual(ca.organizations, ["g8s"]);
    assert.equal(ca.ttlSeconds, 87600 * 3600);
    assert.equal(ca.keyAlgorithm, "ecdsa-p256");
  });

  it("needs no provider plugin: every child is a g8s-pki dynamic resource parented to the component", () => {
    const types = [...new Set(ownChildren().map((r) => r.type))].sort();
    assert.deepEqual(types, [LOCAL.rootCa, LOCAL.cert, LOCAL.key].sort());
    assert.deepEqual(
      ownChildren().filter((r) => r.type.startsWith("tls:") || r.type.startsWith("vault:")),
      [],
    );
    for (const r of ownChildren()) assert.equal(typeof r.inputs.__provider, "string", `${r.name} carries its provider`);
  });

  it("keeps private keys secret: additional secret outputs, and the CA key sent to every leaf as a secret", () => {
    assert.deepEqual(recorder.one(LOCAL.rootCa, "edge7-pki-ca").additionalSecretOutputs, ["keyPem"]);
    assert.deepEqual(recorder.one(LOCAL.key, "edge7-pki-sa-key").additionalSecretOutputs, ["privateKeyPem"]);
    const leaves = recorder.byType(LOCAL.cert).filter((r) => r.name.startsWith("edge7-pki-"));
    assert.equal(leaves.length, 10, "9 component certificates and jane's");
    for (const r of leaves) {
      assert.deepEqual(r.additionalSecretOutputs, ["keyPem"], r.name);
      assert.deepEqual(r.secretInputs, ["caKeyPem"], r.name);
    }
  });

  it("keeps bundles, kubeconfigs and the service-account key secret; the CA and notAfter public", async () => {
    for (const [label, output] of [
      ["bundles", component.bundles],
      ["adminKubeconfig", component.adminKubeconfig],
      ["serviceAccountKey", component.serviceAccountKey],
      ["userKubeconfig", userKubeconfig],
    ] as const) {
      assert.equal(await pulumiMod.isSecret(output as pulumi.Output<unknown>), true, label);
    }
    assert.equal(await pulumiMod.isSecret(component.caCertPem), false);
    assert.equal(await pulumiMod.isSecret(component.notAfter), false);
    assert.equal((await promiseOf(component.notAfter)).apiserver, "2025-03-02T10:00:00.000Z");
  });

  it("bundles cert, key and CA of every certificate under its key, as bootstrap reads them", async () => {
    const bundles = await promiseOf(component.bundles);
    assert.equal(Object.keys(bundles).length, 9);
    assert.deepEqual(bundles["etcd-master-0"], {
      certPem: "CERT edge7-pki-cert-etcd-master-0",
      keyPem: "KEY edge7-pki-cert-etcd-master-0",
      caPem: "CA edge7-pki-ca",
    });
  });

  it("makes the service-account key a LocalPrivateKey (RSA 2048), not a pulumi-tls key", async () => {
    assert.equal(recorder.one(LOCAL.key, "edge7-pki-sa-key").inputs.algorithm, "rsa-2048");
    assert.deepEqual(await promiseOf(component.serviceAccountKey), {
      publicKeyPem: "PUB edge7-pki-sa-key",
      privateKeyPem: "KEY edge7-pki-sa-key",
    });
  });

  it("rotates the service-account key by id: every trusted key's public key accepted, the signing key's private key used", async () => {
    const spec = parseClusterSpec(
      withChange(kvmSpec(), (s) => {
        s.id = "edge9";
        s.masters = { count: 1 };
        s.pki = { backend: "local", serviceAccountKeys: { trusted: ["initial", "2026-12"], signing: "2026-12" } };
      }),
    );
    const { ClusterPki } = await import("../../../components/pki");
    const rotating = new ClusterPki("edge9-pki", { spec, ...API });
    assert.deepEqual(await promiseOf(rotating.serviceAccountKey), {
      publicKeyPem: "PUB edge9-pki-sa-key\nPUB edge9-pki-sa-key-2026-12\n",
      privateKeyPem: "KEY edge9-pki-sa-key-2026-12",
    });
    await settle();
    // The first key keeps its name (no replacement when ids came in); each new id is a key of its own.
    assert.equal(recorder.one(LOCAL.key, "edge9-pki-sa-key").inputs.algorithm, "rsa-2048");
    assert.equal(recorder.one(LOCAL.key, "edge9-pki-sa-key-2026-12").inputs.algorithm, "rsa-2048");
  });

  it("rotates the CA by id: every trusted CA in the trust bundle (the issuing one first), every leaf from the issuing CA", async () => {
    const spec = parseClusterSpec(
      withChange(kvmSpec(), (s) => {
        s.id = "edge8";
        s.masters = { count: 1 };
        s.pki = { backend: "local", certificateAuthorities: { trusted: ["initial", "next"], issuing: "next" } };
      }),
    );
    const { ClusterPki } = await import("../../../components/pki");
    const rotating = new ClusterPki("edge8-pki", { spec, ...API });
    assert.equal(await promiseOf(rotating.caCertPem), "CA edge8-pki-ca-next\nCA edge8-pki-ca\n");
    const bundles = await promiseOf(rotating.bundles);
    assert.equal(
      bundles.apiserver.caPem,
      "CA edge8-pki-ca-next\nCA edge8-pki-ca\n",
      "nodes get the bundle as their CA",
    );
    const records = await promiseOf(rotating.certificateRecords());
    assert.ok(records.ca.urns[0].endsWith("::edge8-pki-ca-next"), "the issuing CA is `ca`");
    assert.ok(records["ca-initial"].urns[0].endsWith("::edge8-pki-ca"), "the other trusted one `ca-<id>`");
    await settle();
    // The first CA keeps its name (no replacement when ids came in); leaves come from the issuing one.
    assert.equal(
      recorder.one(LOCAL.rootCa, "edge8-pki-ca").inputs.commonName,
      "edge7.k8s.corp.internal".replace("edge7", "edge8"),
    );
    assert.equal(recorder.one(LOCAL.cert, "edge8-pki-cert-apiserver").inputs.caCertPem, "CA edge8-pki-ca-next");
  });

  it("puts every RBAC group of a user in O (the tls backend allows one)", () => {
    const jane = recorder.one(LOCAL.cert, "edge7-pki-user-jane").inputs;
    assert.equal(jane.commonName, "jane");
    assert.deepEqual(jane.organizations, ["dev-team", "ops-team"]);
    assert.deepEqual(jane.usages, ["client"]);
  });
});

describe("pki.backend local in a stack file", () => {
  it("accepts `pki: { backend: local, certTtl: 24h }` for aws and kvm, with the default caTtl", () => {
    for (const raw of [awsSpec(), kvmSpec()]) {
      const spec = parseClusterSpec(withChange(raw, (s) => (s.pki = { backend: "local", certTtl: "24h" })));
      assert.deepEqual(spec.pki, {
        backend: "local",
        certTtl: "24h",
        caTtl: "87600h",
        users: [],
        certificateAuthorities: { trusted: ["initial"], issuing: "initial" },
        serviceAccountKeys: { trusted: ["initial"], signing: "initial" },
      });
    }
  });

  it("accepts fractions of an hour (validity is counted in seconds)", () => {
    const spec = parseClusterSpec(withChange(kvmSpec(), (s) => (s.pki = { backend: "local", certTtl: "1h30m" })));
    assert.equal(spec.pki.certTtl, "1h30m");
  });

  it("bounds certTtl like the other backends", () =>
    expectIssues(
      withChange(kvmSpec(), (s) => (s.pki = { backend: "local", certTtl: "30m" })),
      [{ path: "pki.certTtl", message: "must be between 1h and 720h (got 30m)" }],
    ));

  it("needs a CA that outlives two certificate lifetimes", () =>
    expectIssues(
      withChange(awsSpec(), (s) => (s.pki = { backend: "local", certTtl: "24h", caTtl: "36h" })),
      [{ path: "pki.caTtl", message: "must be at least twice pki.certTtl (24h) (got 36h)" }],
    ));

  it("refuses a vault block, naming the field and the fix", () =>
    expectIssues(
      withChange(awsSpec(), (s) => (s.pki = { backend: "local", vault: { address: "https://vault.example.com" } })),
      [{ path: "pki.vault", message: "is only used with pki.backend vault: remove it or set backend: vault" }],
    ));
});

describe("local renewal decision (needsRenewal, injected clock)", () => {
  let local: Local;
  before(async () => {
    local = await import("../../../components/pki/local");
  });
  const ISSUED = new Date("2026-03-01T00:00:00Z");
  const EXPIRES = new Date("2026-03-02T00:00:00Z"); // 24h
  const leftFraction = (f: number) => new Date(EXPIRES.getTime() - f * 24 * 3600_000);

  const table: Array<[string, Date, boolean]> = [
    ["just issued", ISSUED, false],
    ["51% left", leftFraction(0.51), false],
    ["exactly half left", leftFraction(0.5), false],
    ["49% left", leftFraction(0.49), true],
    ["one second left", new Date(EXPIRES.getTime() - 1000), true],
    ["expired", new Date(EXPIRES.getTime() + 1000), true],
    ["before notBefore (clock behind)", new Date(ISSUED.getTime() - 60_000), false],
  ];
  for (const [label, now, expected] of table) {
    it(`${label} → ${expected ? "renew" : "keep"}`, () => {
      assert.equal(local.needsRenewal(ISSUED, EXPIRES, now), expected);
    });
  }

  it("renews a certificate whose window cannot be read", () => {
    assert.equal(local.needsRenewal(new Date("x"), EXPIRES, ISSUED), true);
    assert.equal(local.needsRenewal(EXPIRES, ISSUED, ISSUED), true, "notAfter before notBefore");
  });

  it("turns at the halfway point, and a backdated window starts before issue", () => {
    assert.equal(local.renewalTime(ISSUED, EXPIRES).toISOString(), "2026-03-01T12:00:00.000Z");
    assert.deepEqual(local.validityWindow(new Date("2026-03-01T00:00:00.900Z"), 86400, 30), {
      notBefore: new Date("2026-02-28T23:59:30Z"),
      notAfter: new Date("2026-03-02T00:00:00Z"),
    });
  });
});

describe("local providers (real crypto, injected clock)", () => {
  type RootCaState = import("../../../components/pki/local/resources").RootCaState;
  type CertificateState = import("../../../components/pki/local/resources").CertificateState;
  type CertificateInputs = import("../../../components/pki/local/resources").CertificateInputs;
  let local: Local;
  let now: Date;
  const clock = () => now;
  const T0 = new Date("2026-06-01T00:00:00Z");
  const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
  let ca: RootCaState;
  let leafInputs: CertificateInputs;
  let leaf: CertificateState;
  const caInputs = {
    commonName: "edge7.k8s.corp.internal",
    organizations: ["g8s"],
    ttlSeconds: 8000,
    backdateSeconds: 0,
    keyAlgorithm: "ecdsa-p256" as const,
  };

  before(async () => {
    local = await import("../../../components/pki/local");
    now = T0;
    ca = (await local.rootCaProvider(clock).create(caInputs)).outs as RootCaState;
    leafInputs = {
      commonName: "kube-apiserver",
      organizations: [],
      ttlSeconds: 1000,
      backdateSeconds: 0,
      keyAlgorithm: "ecdsa-p256",
      caCertPem: ca.certPem,
      caKeyPem: ca.keyPem,
      dnsNames: ["kubernetes", "api.edge7.k8s.corp.internal"],
      ipAddresses: ["172.30.0.1"],
      usages: ["server"],
    };
    leaf = (await local.certificateProvider(clock).create(leafInputs)).outs as CertificateState;
  });

  const leafDiff = async (seconds: number, news: Partial<CertificateInputs> = {}, olds = leaf) => {
    now = at(seconds);
    return (await local.certificateProvider(clock).diff!("id", olds, { ...leafInputs, ...news })).changes;
  };

  it("issues what it stores: a chain openssl verifies, the key that matches, the window of the TTL", () => {
    assert.equal(verify(ca.certPem, leaf.certPem, { purpose: "sslserver", at: at(1) }).code, 0);
    assert.ok(keyMatchesCertificate(leaf.keyPem, leaf.certPem));
    assert.equal(fieldsOf(leaf.certPem).serial, leaf.serial);
    assert.equal(leaf.notBefore, T0.toISOString());
    assert.equal(leaf.notAfter, at(1000).toISOString());
    assert.equal("caKeyPem" in leaf, false, "the CA key is an input only, never an output");
  });

  it("keeps a just-issued certificate (diff: no changes)", async () => {
    assert.equal(await leafDiff(0), false);
    assert.equal(await leafDiff(499), false);
  });

  it("reissues once less than half is left (49%) and once expired", async () => {
    assert.equal(await leafDiff(510), true);
    assert.equal(await leafDiff(1001), true);
  });

  it("reissues on a changed input, not on an unchanged one", async () => {
    assert.equal(await leafDiff(1, { dnsNames: ["kubernetes"] }), true);
    assert.equal(await leafDiff(1, { usages: ["server", "client"] }), true);
    assert.equal(await leafDiff(1, { ...leafInputs }), false);
  });

  it("reissues every leaf when its CA is reissued, and shows it in a preview (CA unknown)", async () => {
    now = at(4001); // past half of the CA's 8000 s
    assert.equal((await local.rootCaProvider(clock).diff!("id", ca, caInputs)).changes, true);
    const renewedCa = (await local.rootCaProvider(clock).update!("id", ca, caInputs)).outs as RootCaState;
    assert.notEqual(renewedCa.serial, ca.serial);
    assert.equal(renewedCa.publicKeyPem, ca.publicKeyPem, "same key");
    // The leaf itself has half of its validity left at 1 s; only the CA changed.
    assert.equal(await leafDiff(1), false);
    assert.equal(await leafDiff(1, { caCertPem: renewedCa.certPem }), true);
    assert.equal(await leafDiff(1, { caCertPem: local.UNKNOWN }), true);
  });

  it("update reissues with the same key: new serial, later notAfter, chain to the (renewed) CA", async () => {
    now = at(600);
    const renewedCa = (await local.rootCaProvider(clock).update!("id", ca, caInputs)).outs as RootCaState;
    const news = { ...leafInputs, caCertPem: renewedCa.certPem, caKeyPem: renewedCa.keyPem };
    const renewed = (await local.certificateProvider(clock).update!("id", leaf, news)).outs as CertificateState;
    assert.notEqual(renewed.serial, leaf.serial);
    assert.equal(renewed.notAfter, at(1600).toISOString());
    assert.equal(renewed.keyPem, leaf.keyPem);
    assert.equal(verify(renewedCa.certPem, renewed.certPem, { purpose: "sslserver", at: at(601) }).code, 0);
    assert.equal(await leafDiff(601, { caCertPem: renewedCa.certPem }, renewed), false);
  });

  it("issues a new key when keyAlgorithm changes", async () => {
    now = at(1);
    const news = { ...leafInputs, keyAlgorithm: "rsa-2048" as const };
    assert.equal(await leafDiff(1, { keyAlgorithm: "rsa-2048" }), true);
    const rsa = (await local.certificateProvider(clock).update!("id", leaf, news)).outs as CertificateState;
    assert.notEqual(rsa.keyPem, leaf.keyPem);
    assert.ok(keyMatchesCertificate(rsa.keyPem, rsa.certPem));
  });

  it("re-reads validity from the certificate on refresh, and reissues one it cannot read", async () => {
    const provider = local.certificateProvider(clock);
    const tampered = { ...leaf, notAfter: "2099-01-01T00:00:00.000Z" };
    const read = await provider.read!("id", tampered);
    assert.equal((read.props as CertificateState).notAfter, leaf.notAfter);
    assert.equal(await leafDiff(1, {}, { ...leaf, certPem: "garbage" }), true);
  });

  it("rejects bad inputs in check, naming the property, and leaves unknown values to the next run", async () => {
    const provider = local.certificateProvider(clock);
    const failures = async (news: Partial<Record<keyof CertificateInputs, unknown>>) =>
      (await provider.check!({} as CertificateInputs, { ...leafInputs, ...news } as CertificateInputs)).failures;
    assert.deepEqual(await failures({}), []);
    assert.deepEqual(await failures({ ttlSeconds: 0 }), [
      { property: "ttlSeconds", reason: "must be a positive whole number of seconds (got 0)" },
    ]);
    assert.deepEqual(await failures({ backdateSeconds: 200 }), [
      {
        property: "backdateSeconds",
        reason:
          "must be a whole number of seconds from 0 to a tenth of ttlSeconds (100) (got 200): " +
          "a longer backdate would make the certificate due for renewal soon after issue",
      },
    ]);
    assert.deepEqual(await failures({ usages: [] }), [
      { property: "usages", reason: "must be a non-empty list of server, client (got [])" },
    ]);
    assert.deepEqual(await failures({ keyAlgorithm: "dsa" }), [
      { property: "keyAlgorithm", reason: 'must be one of ecdsa-p256, rsa-2048 (got "dsa")' },
    ]);
    assert.deepEqual(await failures({ caCertPem: local.UNKNOWN, caKeyPem: local.UNKNOWN, usages: local.UNKNOWN }), []);
  });

  it("issues every certificate of the cluster's table for real, as openssl reads it", async () => {
    const { certificateSet } = await import("../../../components/pki");
    const table = certificateSet({
      spec: localClusterSpec(),
      masterNames: ["master-0"],
      masterAddresses: API.masterAddresses,
      apiNames: API.apiNames,
      apiAddresses: API.apiAddresses,
      serviceDnsDomain: "cluster.local",
    });
    assert.equal(table.length, 9);
    now = at(0);
    const provider = local.certificateProvider(clock);
    for (const cert of table) {
      const issued = (
        await provider.create({
          ...leafInputs,
          commonName: cert.commonName,
          organizations: cert.organizations,
          dnsNames: cert.dnsNames as string[],
          ipAddresses: cert.ipAddresses as string[],
          usages: cert.usages,
          ttlSeconds: cert.ttlSeconds,
        })
      ).outs as CertificateState;
      const fields = fieldsOf(issued.certPem);
      assert.equal(
        fields.subject,
        [`CN=${cert.commonName}`, ...[...cert.organizations].reverse().map((o) => `O=${o}`)].join(","),
      );
      assert.equal((fields.notAfter.getTime() - fields.notBefore.getTime()) / 1000, 86400);
      const sans = extensionsOf(issued.certPem, ["subjectAltName"]);
      for (const name of cert.dnsNames) assert.ok(sans.includes(`DNS:${name}`), `${cert.key}: DNS:${name}`);
      for (const ip of cert.ipAddresses) assert.ok(sans.includes(`IP Address:${ip}`), `${cert.key}: IP ${ip}`);
      assert.equal((sans.match(/DNS:|IP Address:/g) ?? []).length, cert.dnsNames.length + cert.ipAddresses.length);
      for (const [usage, purpose] of [
        ["server", "sslserver"],
        ["client", "sslclient"],
      ] as const) {
        const r = verify(ca.certPem, issued.certPem, { purpose, at: at(1) });
        assert.equal(r.code === 0, cert.usages.includes(usage), `${cert.key} as ${purpose}: ${r.stderr}`);
      }
    }
  });

  it("uses the engine's marker for unknown values", async () => {
    const rpc = await import("@pulumi/pulumi/runtime/rpc");
    assert.equal(local.UNKNOWN, rpc.unknownValue);
  });
});

describe("local providers serialized as Pulumi stores them", function () {
  this.timeout(60_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "g8s-serialized-"));
    // Only node_modules next to it, as in a project; none of the repository's sources.
    symlinkSync(path.resolve(__dirname, "../../../node_modules"), path.join(dir, "node_modules"), "dir");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("runs on its own in a fresh node process: creates a CA and a leaf that openssl verifies", async () => {
    const pulumiMod = await import("@pulumi/pulumi");
    const local = await import("../../../components/pki/local");
    for (const [name, provider] of [
      ["ca.js", local.rootCaProvider(local.systemClock)],
      ["cert.js", local.certificateProvider(local.systemClock)],
    ] as const) {
      const serialized = await pulumiMod.runtime.serializeFunction(() => provider, { allowSecrets: true });
      assert.doesNotMatch(serialized.text, /require\("\.{1,2}\//, `${name}: no relative require`);
      writeFileSync(path.join(dir, name), serialized.text);
    }
    const script = `
      const ca = require("./ca.js").handler();
      const cert = require("./cert.js").handler();
      (async () => {
        const c = (await ca.create({ commonName: "s", organizations: [], ttlSeconds: 3600, backdateSeconds: 0, keyAlgorithm: "ecdsa-p256" })).outs;
        const l = (await cert.create({ commonName: "l", organizations: ["o"], ttlSeconds: 600, backdateSeconds: 0,
          keyAlgorithm: "ecdsa-p256", caCertPem: c.certPem, caKeyPem: c.keyPem, dnsNames: ["l.example"],
          ipAddresses: [], usages: ["client"] })).outs;
        process.stdout.write(JSON.stringify({ ca: c.certPem, leaf: l.certPem, key: l.keyPem }));
      })().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });`;
    const run = spawnSync(process.execPath, ["-e", script], { cwd: dir, encoding: "utf8", timeout: 30_000 });
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { ca: string; leaf: string; key: string };
    assert.equal(verify(out.ca, out.leaf, { purpose: "sslclient" }).code, 0);
    assert.ok(keyMatchesCertificate(out.key, out.leaf));
  });

  it("LocalSecret: makes a new random value of `bytes` bytes on create, keeps it while `bytes` stays, refuses too few", async () => {
    const pulumiMod = await import("@pulumi/pulumi");
    const { secretProvider } = await import("../../../components/pki/local");
    const serialized = await pulumiMod.runtime.serializeFunction(() => secretProvider, { allowSecrets: true });
    assert.doesNotMatch(serialized.text, /require\("\.{1,2}\//, "no relative require");
    writeFileSync(path.join(dir, "secret.js"), serialized.text);
    const script = `
      const p = require("./secret.js").handler();
      (async () => {
        const a = (await p.create({ bytes: 32 })).outs;
        const b = (await p.create({ bytes: 32 })).outs;
        const same = await p.diff("id", a, { bytes: 32 });
        const grown = await p.diff("id", a, { bytes: 64 });
        const few = await p.check({}, { bytes: 8 });
        process.stdout.write(JSON.stringify({ a: a.value, b: b.value, same: same.changes, grown: grown.changes, few: few.failures }));
      })().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });`;
    const run = spawnSync(process.execPath, ["-e", script], { cwd: dir, encoding: "utf8", timeout: 30_000 });
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { a: string; b: string; same: boolean; grown: boolean; few: unknown[] };
    assert.match(out.a, /^[0-9a-f]{64}$/);
    assert.notEqual(out.a, out.b, "random: two creates never agree");
    assert.equal(out.same, false, "no drift: the value stays");
    assert.equal(out.grown, true);
    assert.deepEqual(out.few, [{ property: "bytes", reason: "must be an integer from 16 to 1024 (got 8)" }]);
  });
});

describe("GuestCluster with pki: { backend: local, certTtl: 24h }", () => {
  const ROOT = path.resolve(__dirname, "../../..");

  /** The example stack's `g8s:cluster` with its pki replaced. */
  function exampleWithLocalPki(stack: string): unknown {
    const file = parseYaml(readFileSync(path.join(ROOT, `stacks/Pulumi.${stack}.yaml`), "utf8")) as {
      config: Record<string, unknown>;
    };
    return { ...(file.config["g8s:cluster"] as Record<string, unknown>), pki: { backend: "local", certTtl: "24h" } };
  }

  for (const [stack, provider] of [
    ["eu1prod", "aws"],
    ["edge7", "kvm"],
  ] as const) {
    it(`builds ${stack} (${provider}) with the local backend and no tls or vault resource`, async () => {
      const recorder = installMocks({
        stack,
        outputs: (args) => ({ ...fakePkiOutputs(args), ...fakeAwsOutputs(args) }),
      });
      stubZones(recorder);
      recorder.calls.set(GET_ZONE_TOKEN, (args) => ({ zoneId: "Z0EXAMPLE", name: args.inputs.name }));
      const pulumiMod = await import("@pulumi/pulumi");
      const { GuestCluster } = await import("../../../components");
      const spec = parseClusterSpec(exampleWithLocalPki(stack), `stacks/Pulumi.${stack}.yaml`);
      assert.equal(spec.provider, provider);
      const cluster = new GuestCluster(stack, { spec });
      assert.equal(await pulumiMod.isSecret(cluster.adminKubeconfig), true);
      await settle();
      assert.deepEqual(
        recorder.resources
          .filter((r) => /^(tls|vault):|^pulumi:providers:(tls|vault)$/.test(r.type))
          .map((r) => r.name),
        [],
      );
      assert.equal(recorder.byType(LOCAL.rootCa).length, 1);
      assert.equal(recorder.byType(LOCAL.key).length, 1);
      const masters = provider === "aws" ? 3 : 1;
      assert.equal(recorder.byType(LOCAL.cert).length, 8 + masters, "the table: 8 + one etcd certificate per master");
    });
  }
});
