/** ClusterPki with the tls backend, under mocks: the graph, every certificate, rotation, secrets. */
import * as assert from "node:assert/strict";
import type * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { installMocks, promiseOf, settle, type MockRecorder } from "../mocks";
import { parseClusterSpec } from "../../../components/spec";
import { kvmSpec, withChange } from "../spec/helpers";
import { TLS, expectedCertificates, fakePkiOutputs, tlsClusterSpec } from "./helpers";

type Pki = typeof import("../../../components/pki");

const NOW = new Date("2025-03-01T10:00:00Z"); // window index 20148 of 12h windows
const DAY = 24 * 60 * 60;

/* eslint-disable @typescript-eslint/no-explicit-any -- parsed kubeconfig YAML */

describe("ClusterPki (tls backend)", () => {
  let recorder: MockRecorder;
  let mod: Pki;
  let pulumiMod: typeof pulumi;
  let component: InstanceType<Pki["ClusterPki"]>;
  let userKubeconfig: pulumi.Output<string>;

  before(async () => {
    recorder = installMocks({ outputs: fakePkiOutputs });
    pulumiMod = await import("@pulumi/pulumi");
    mod = await import("../../../components/pki");
    component = new mod.ClusterPki("edge7-pki", {
      spec: tlsClusterSpec(),
      apiEndpoint: "https://api.edge7.k8s.corp.internal:6443",
      apiNames: ["edge7-api.g8s-edge7.svc"],
      apiAddresses: ["10.96.0.20"],
      masterAddresses: { "master-0": "10.244.1.5" },
      now: NOW,
    });
    userKubeconfig = component.userKubeconfig("jane", ["dev-team"]);
    await promiseOf(component.bundles);
    await settle();
  });

  const expected = () =>
    expectedCertificates(
      "edge7.k8s.corp.internal",
      "172.30.0.1",
      { "master-0": "10.244.1.5" },
      {
        names: ["edge7-api.g8s-edge7.svc"],
        addresses: ["10.96.0.20"],
      },
    );

  it("creates a CA key and a self-signed CA certificate named after the cluster domain, valid for caTtl", () => {
    assert.deepEqual(recorder.one(TLS.key, "edge7-pki-ca-key").inputs, { algorithm: "RSA", rsaBits: 4096 });
    const ca = recorder.one(TLS.selfSigned, "edge7-pki-ca").inputs;
    assert.deepEqual(ca.subject, { commonName: "edge7.k8s.corp.internal", organization: "g8s" });
    assert.equal(ca.isCaCertificate, true);
    assert.equal(ca.validityPeriodHours, 87600);
    assert.deepEqual(ca.allowedUses, ["cert_signing", "crl_signing", "digital_signature", "key_encipherment"]);
    assert.equal(recorder.one(TLS.selfSigned, "edge7-pki-ca").replacementTrigger, undefined);
  });

  it("issues exactly the certificates of the table, plus the requested user", () => {
    const names = recorder
      .byType(TLS.cert)
      .map((r) => r.name)
      .sort();
    assert.deepEqual(names, [...expected().map((c) => `edge7-pki-cert-${c.key}`), "edge7-pki-user-jane"].sort());
  });

  for (const cert of expectedCertificates(
    "edge7.k8s.corp.internal",
    "172.30.0.1",
    { "master-0": "10.244.1.5" },
    {
      names: ["edge7-api.g8s-edge7.svc"],
      addresses: ["10.96.0.20"],
    },
  )) {
    it(`issues ${cert.key}: CN ${cert.cn}${cert.o ? `, O ${cert.o}` : ""}, its SANs, usages and a 24h TTL`, () => {
      const csr = recorder.one(TLS.csr, `edge7-pki-csr-${cert.key}`).inputs;
      assert.deepEqual(csr.subject, cert.o ? { commonName: cert.cn, organization: cert.o } : { commonName: cert.cn });
      assert.deepEqual(csr.dnsNames, cert.dns);
      assert.deepEqual(csr.ipAddresses, cert.ip);
      const signed = recorder.one(TLS.cert, `edge7-pki-cert-${cert.key}`).inputs;
      assert.equal(signed.validityPeriodHours, 24);
      assert.deepEqual(signed.allowedUses, [
        "digital_signature",
        "key_encipherment",
        ...(cert.server ? ["server_auth"] : []),
        ...(cert.client ? ["client_auth"] : []),
      ]);
      assert.deepEqual(recorder.one(TLS.key, `edge7-pki-key-${cert.key}`).inputs, { algorithm: "RSA", rsaBits: 2048 });
    });
  }

  it("issues the user certificate with CN = user and O = the RBAC group", () => {
    const csr = recorder.one(TLS.csr, "edge7-pki-csr-user-jane").inputs;
    assert.deepEqual(csr.subject, { commonName: "jane", organization: "dev-team" });
    assert.deepEqual(recorder.one(TLS.cert, "edge7-pki-user-jane").inputs.allowedUses, [
      "digital_signature",
      "key_encipherment",
      "client_auth",
    ]);
  });

  it("passes the rotation window as replacementTrigger to every leaf key, CSR and certificate, never to the CA", () => {
    const trigger = "ttl=86400s;window=40296";
    assert.equal(mod.rotationTrigger(NOW, DAY), trigger);
    const leaves = recorder.resources.filter(
      (r) =>
        [TLS.key, TLS.csr, TLS.cert].includes(r.type as never) &&
        r.name !== "edge7-pki-ca-key" &&
        r.name !== "edge7-pki-sa-key",
    );
    assert.equal(leaves.length, 3 * (expected().length + 1));
    for (const r of leaves) assert.equal(r.replacementTrigger, trigger, `${r.type} ${r.name}`);
    assert.equal(recorder.one(TLS.key, "edge7-pki-ca-key").replacementTrigger, undefined);
    assert.equal(recorder.one(TLS.key, "edge7-pki-sa-key").replacementTrigger, undefined);
  });

  it("never applies a new caTtl or baseDomain to the live CA or its key (ignoreChanges): pulumi-tls would replace them", () => {
    assert.deepEqual(recorder.one(TLS.key, "edge7-pki-ca-key").ignoreChanges, ["algorithm", "rsaBits", "ecdsaCurve"]);
    assert.deepEqual(recorder.one(TLS.selfSigned, "edge7-pki-ca").ignoreChanges, [
      "subject",
      "validityPeriodHours",
      "isCaCertificate",
      "allowedUses",
      "privateKeyPem",
    ]);
  });

  it("creates the service-account signing key as a tls private key, not rotated", () => {
    assert.deepEqual(recorder.one(TLS.key, "edge7-pki-sa-key").inputs, { algorithm: "RSA", rsaBits: 2048 });
  });

  it("parents every child to the component and uses no vault resource", () => {
    const children = recorder.resources.filter((r) => r.type.startsWith("tls:"));
    for (const r of children) assert.match(r.parent ?? "", /g8s:pki:ClusterPki::edge7-pki$/, `${r.type} ${r.name}`);
    assert.deepEqual(
      recorder.resources.filter((r) => r.type.startsWith("vault:") || r.type === "pulumi:providers:vault"),
      [],
    );
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
    assert.equal(await pulumiMod.isSecret(component.notAfter), false);
  });

  it("bundles cert, key and CA of every certificate under its key", async () => {
    const bundles = await promiseOf(component.bundles);
    assert.deepEqual(
      Object.keys(bundles).sort(),
      expected()
        .map((c) => c.key)
        .sort(),
    );
    assert.deepEqual(bundles["etcd-master-0"], {
      certPem: "CERT edge7-pki-cert-etcd-master-0",
      keyPem: "KEY edge7-pki-key-etcd-master-0",
      caPem: "CA edge7-pki-ca",
    });
  });

  it("renders the admin kubeconfig for the API endpoint from the admin certificate and the CA", async () => {
    const config = parse(await promiseOf(component.adminKubeconfig)) as Record<string, any>;
    const b64 = (t: string) => Buffer.from(t).toString("base64");
    assert.deepEqual(config, {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "edge7",
          cluster: {
            server: "https://api.edge7.k8s.corp.internal:6443",
            "certificate-authority-data": b64("CA edge7-pki-ca"),
          },
        },
      ],
      users: [
        {
          name: "kubernetes-admin@edge7",
          user: {
            "client-certificate-data": b64("CERT edge7-pki-cert-admin"),
            "client-key-data": b64("KEY edge7-pki-key-admin"),
          },
        },
      ],
      contexts: [{ name: "kubernetes-admin@edge7", context: { cluster: "edge7", user: "kubernetes-admin@edge7" } }],
      "current-context": "kubernetes-admin@edge7",
      preferences: {},
    });
    const user = parse(await promiseOf(userKubeconfig)) as Record<string, any>;
    assert.equal(user["current-context"], "jane@edge7");
    assert.equal(user.users[0].user["client-certificate-data"], b64("CERT edge7-pki-user-jane"));
  });

  it("exposes each certificate's expiry (validityEndTime) as a plain output for metrics", async () => {
    const notAfter = await promiseOf(component.notAfter);
    assert.deepEqual(
      Object.keys(notAfter).sort(),
      expected()
        .map((c) => c.key)
        .sort(),
    );
    assert.equal(notAfter.apiserver, "2025-03-02T10:00:00Z");
  });

  it("refuses more than one RBAC group per user (pulumi-tls has one subject organization)", () => {
    assert.throws(
      () => component.userKubeconfig("joe", ["a", "b"]),
      (err: Error) =>
        err instanceof pulumiMod.ResourceError &&
        err.message ===
          "userKubeconfig(joe): the tls backend puts one group in O (pulumi-tls has a single subject organization) " +
            "(got 2): bind the user by name or use pki.backend vault",
    );
  });
});

describe("ClusterPki (tls backend) rotation", () => {
  let recorder: MockRecorder;
  let mod: Pki;

  before(async () => {
    recorder = installMocks({ outputs: fakePkiOutputs });
    mod = await import("../../../components/pki");
  });

  function triggerAt(name: string, now: Date): unknown {
    new mod.ClusterPki(name, { spec: tlsClusterSpec(), apiEndpoint: "https://api.edge7.k8s.corp.internal:6443", now });
    return settle().then(() => recorder.one(TLS.cert, `${name}-cert-apiserver`).replacementTrigger);
  }

  it("keeps the trigger within one 12h window (24h TTL) and changes it when the window rolls over", async () => {
    const start = await triggerAt("a", new Date("2025-03-01T00:00:00Z"));
    const sameWindow = await triggerAt("b", new Date("2025-03-01T11:59:59Z"));
    const nextWindow = await triggerAt("c", new Date("2025-03-01T12:00:00Z"));
    assert.equal(start, "ttl=86400s;window=40296");
    assert.equal(sameWindow, start);
    assert.equal(nextWindow, "ttl=86400s;window=40297");
  });

  it("rotates the CA by id: every trusted CA in the trust bundle (the issuing one first), every leaf signed by the issuing CA", async () => {
    const spec = parseClusterSpec(
      withChange(kvmSpec(), (s) => {
        s.id = "edge8";
        s.masters = { count: 1 };
        s.pki = { backend: "tls", certificateAuthorities: { trusted: ["initial", "next"], issuing: "next" } };
      }),
    );
    const rotating = new mod.ClusterPki("edge8-pki", {
      spec,
      apiEndpoint: "https://api.edge8.k8s.corp.internal:6443",
      now: NOW,
    });
    const bundle = "CA edge8-pki-ca-next\nCA edge8-pki-ca\n";
    assert.equal(await promiseOf(rotating.caCertPem), bundle);
    assert.equal((await promiseOf(rotating.bundles)).apiserver.caPem, bundle, "nodes get the bundle as their CA");
    const kubeconfig = parse(await promiseOf(rotating.adminKubeconfig));
    assert.equal(
      Buffer.from(kubeconfig.clusters[0].cluster["certificate-authority-data"], "base64").toString(),
      bundle,
    );
    const records = await promiseOf(rotating.certificateRecords());
    assert.deepEqual(
      Object.keys(records).filter((k) => k.startsWith("ca")),
      ["ca", "ca-initial"],
    );
    await settle();
    // The first CA and its key keep their names (no replacement when ids came in); each id has its own key.
    // Private keys travel as secrets: the mock sees `{ <sig>: <secret>, value }`.
    const keyOf = (v: unknown) => (v as { value: unknown }).value;
    assert.equal(keyOf(recorder.one(TLS.selfSigned, "edge8-pki-ca").inputs.privateKeyPem), "KEY edge8-pki-ca-key");
    assert.equal(
      keyOf(recorder.one(TLS.selfSigned, "edge8-pki-ca-next").inputs.privateKeyPem),
      "KEY edge8-pki-ca-key-next",
    );
    assert.deepEqual(recorder.one(TLS.selfSigned, "edge8-pki-ca-next").ignoreChanges, [
      "subject",
      "validityPeriodHours",
      "isCaCertificate",
      "allowedUses",
      "privateKeyPem",
    ]);
    for (const leaf of recorder.byType(TLS.cert).filter((r) => r.name.startsWith("edge8-pki-"))) {
      assert.equal(leaf.inputs.caCertPem, "CA edge8-pki-ca-next", leaf.name);
      assert.equal(keyOf(leaf.inputs.caPrivateKeyPem), "KEY edge8-pki-ca-key-next", leaf.name);
    }
  });

  it("defaults now to the current time", async () => {
    const before = mod.rotationTrigger(new Date(), DAY);
    new mod.ClusterPki("d", { spec: tlsClusterSpec(), apiEndpoint: "https://api.edge7.k8s.corp.internal:6443" });
    await settle();
    const after = mod.rotationTrigger(new Date(), DAY);
    assert.ok([before, after].includes(recorder.one(TLS.cert, "d-cert-apiserver").replacementTrigger as string));
  });
});
