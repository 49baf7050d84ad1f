/**
 * People's kubeconfigs: the CA found in a stack's state (local: ECDSA PKCS#8; tls: RSA PKCS#1),
 * the request checked, the certificate judged by Debian's openssl (chain, client purpose only,
 * subject, validity, key match), and every refusal said with its fix.
 */
import * as assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { parse } from "yaml";
import {
  AccessError,
  endpointFromState,
  issueUserKubeconfig,
  reachedAt,
  requestProblems,
  signingCaFromState,
  type SigningCa,
} from "../../../automation/access/userKubeconfig";
import { revealSecrets } from "../../../automation/engine/pulumiEngine";
import type { StateResource } from "../../../automation/reconciler/types";
import { renderKubeconfig } from "../../../components/pki/kubeconfig";
import { LOCAL_TYPES } from "../../../components/pki/local/resources";
import { createSelfSignedCa, generateKeyPair, issueCertificate } from "../../../components/pki/local/x509";
import { fieldsOf, openssl, withFiles } from "../pki/openssl";

const NOW = new Date("2026-12-02T12:00:00Z");
const URN =
  "urn:pulumi:lab9::g8s::g8s:index:GuestCluster$g8s:pki:ClusterPki$pulumi-nodejs:dynamic/g8s-pki:LocalCertificate::lab9-pki";
const SERVER = "https://172.29.0.1:6443";

async function makeCa(years = 10, keyPem?: string): Promise<SigningCa> {
  const key = keyPem ?? (await generateKeyPair()).privateKeyPem;
  const certPem = await createSelfSignedCa({
    commonName: "lab9.k8s.lab.internal",
    organizations: ["g8s"],
    privateKeyPem: key,
    notBefore: new Date(NOW.getTime() - 3600_000),
    notAfter: new Date(NOW.getTime() + years * 365 * 86400_000),
  });
  return { certPem, keyPem: key };
}

/** A stack state as `stack export --show-secrets` gives it once revealed: the root outputs and the admin certificate. */
async function stateOf(ca: SigningCa, backend: "local" | "tls", caKeyInput = ca.keyPem): Promise<StateResource[]> {
  const admin = await generateKeyPair();
  const adminCert = await issueCertificate({
    commonName: "kubernetes-admin",
    organizations: ["system:masters"],
    caCertPem: ca.certPem,
    caPrivateKeyPem: ca.keyPem,
    publicKeyPem: admin.publicKeyPem,
    usages: ["client"],
    notBefore: NOW,
    notAfter: new Date(NOW.getTime() + 86400_000),
  });
  const adminKubeconfig = renderKubeconfig({
    clusterName: "lab9",
    server: SERVER,
    caCertPem: ca.certPem,
    userName: "kubernetes-admin",
    clientCertPem: adminCert,
    clientKeyPem: admin.privateKeyPem,
  });
  const certificate =
    backend === "local"
      ? { type: LOCAL_TYPES.certificate, inputs: { caCertPem: ca.certPem, caKeyPem: caKeyInput } }
      : {
          type: "tls:index/locallySignedCert:LocallySignedCert",
          inputs: { caCertPem: ca.certPem, caPrivateKeyPem: caKeyInput },
        };
  return [
    {
      urn: "urn:pulumi:lab9::g8s::pulumi:pulumi:Stack::g8s-lab9",
      type: "pulumi:pulumi:Stack",
      inputs: {},
      outputs: { adminKubeconfig },
    },
    { urn: `${URN}-cert-apiserver`, type: certificate.type, inputs: {}, outputs: {} },
    { urn: `${URN}-cert-admin`, ...certificate, outputs: { certPem: adminCert } },
  ];
}

/** The certificate and key inside a kubeconfig, and the CA it trusts. */
function credentialsOf(kubeconfig: string) {
  const doc = parse(kubeconfig) as {
    clusters: { cluster: { server: string; "certificate-authority-data": string } }[];
    users: { user: Record<string, string> }[];
    "current-context": string;
  };
  const b64 = (s: string) => Buffer.from(s, "base64").toString("utf8");
  return {
    server: doc.clusters[0].cluster.server,
    ca: b64(doc.clusters[0].cluster["certificate-authority-data"]),
    cert: b64(doc.users[0].user["client-certificate-data"]),
    key: b64(doc.users[0].user["client-key-data"]),
    context: doc["current-context"],
  };
}

describe("access: a person's kubeconfig from the stack's CA", () => {
  for (const backend of ["local", "tls"] as const) {
    it(`issues a client certificate openssl accepts for the client purpose only (${backend} backend)`, async () => {
      // tls keeps an RSA CA key as PKCS#1; local an ECDSA key as PKCS#8.
      const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const ca =
        backend === "local"
          ? await makeCa()
          : await makeCa(10, rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString());
      const keyInput =
        backend === "local" ? ca.keyPem : rsa.privateKey.export({ type: "pkcs1", format: "pem" }).toString();
      assert.ok(backend === "local" || keyInput.includes("BEGIN RSA PRIVATE KEY"));
      const state = await stateOf(ca, backend, keyInput);
      const issued = await issueUserKubeconfig(
        { id: "lab9" },
        signingCaFromState(state, backend, "lab9"),
        endpointFromState(state, "lab9"),
        { user: "sam", groups: ["web-readers", "oncall"], ttlSeconds: 3600 },
        NOW,
      );
      const c = credentialsOf(issued.kubeconfig);
      assert.equal(c.server, SERVER);
      assert.equal(c.ca, ca.certPem);
      assert.equal(c.context, "sam@lab9");
      const fields = fieldsOf(c.cert);
      assert.equal(fields.subject, "CN=sam,O=oncall,O=web-readers"); // RFC 2253 prints the RDNs last first
      assert.equal(fields.serial, issued.serial);
      assert.equal(fields.notBefore.getTime(), NOW.getTime() - 30_000, "backdated 30 s for clocks that lag");
      assert.equal(fields.notAfter.getTime(), NOW.getTime() + 3600_000);
      withFiles({ "ca.pem": ca.certPem, "c.pem": c.cert, "k.pem": c.key }, (dir) => {
        const verify = (purpose: string) =>
          openssl(
            ["verify", "-attime", String(NOW.getTime() / 1000 + 60), "-purpose", purpose, "-CAfile", "ca.pem", "c.pem"],
            dir,
          );
        assert.equal(verify("sslclient").code, 0, verify("sslclient").stderr);
        assert.notEqual(verify("sslserver").code, 0, "never a server certificate");
        const certKey = openssl(["x509", "-in", "c.pem", "-noout", "-pubkey"], dir).stdout;
        const ownKey = openssl(["pkey", "-in", "k.pem", "-pubout"], dir).stdout;
        assert.equal(certKey, ownKey, "the kubeconfig's key belongs to its certificate");
      });
    });
  }

  it("finds the issuing CA in the admin certificate, not another certificate's inputs", async () => {
    const ca = await makeCa();
    const state = await stateOf(ca, "local");
    const other = await makeCa();
    const withDecoy: StateResource[] = [
      {
        urn: `${URN}-cert-admin-old`,
        type: LOCAL_TYPES.certificate,
        inputs: { caCertPem: other.certPem, caKeyPem: other.keyPem },
        outputs: {},
      },
      ...state,
    ];
    assert.equal(signingCaFromState(withDecoy, "local", "lab9").certPem, ca.certPem);
  });

  it("refuses a state that holds no admin certificate or no admin kubeconfig, saying to apply the stack", async () => {
    const state = await stateOf(await makeCa(), "local");
    assert.throws(
      () => signingCaFromState(state, "tls", "lab9"),
      (e: Error) => e instanceof AccessError && /no admin certificate .*g8s reconcile lab9/.test(e.message),
    );
    assert.throws(
      () => endpointFromState(state.slice(1), "lab9"),
      (e: Error) => e instanceof AccessError && /exports no adminKubeconfig yet/.test(e.message),
    );
  });

  it("reaches the API at another address, still checking its certificate for the stack's API name", () => {
    const endpoint = { server: "https://api.g8s-lab9.svc:6443", trustBundlePem: "ca" };
    assert.deepEqual(reachedAt(endpoint, "https://10.123.5.10:6443"), {
      server: "https://10.123.5.10:6443",
      trustBundlePem: "ca",
      tlsServerName: "api.g8s-lab9.svc",
    });
    assert.deepEqual(reachedAt(endpoint, "https://api.g8s-lab9.svc:443"), {
      server: "https://api.g8s-lab9.svc:443",
      trustBundlePem: "ca",
    });
  });

  it("refuses a TTL that outlives the CA", async () => {
    const ca = await makeCa(0.0001); // about 53 minutes
    const state = await stateOf(ca, "local");
    await assert.rejects(
      issueUserKubeconfig(
        { id: "lab9" },
        signingCaFromState(state, "local", "lab9"),
        endpointFromState(state, "lab9"),
        { user: "sam", groups: [], ttlSeconds: 3600 },
        NOW,
      ),
      (e: Error) => e instanceof AccessError && /CA is valid only until .*shorter --ttl/.test(e.message),
    );
  });

  it("checks the request: user name, groups and TTL, each problem naming its flag", () => {
    assert.deepEqual(requestProblems("sam", ["web-readers"], "8h"), []);
    assert.deepEqual(requestProblems("jane.doe@example.com", [], "1m"), []);
    const problems = requestProblems("Sam Smith", ["system:masters", "system:nodes", " ops"], "25h");
    assert.equal(problems.length, 5, problems.join("\n"));
    assert.match(problems[0], /^--user must be 1 to 64 lowercase/);
    assert.match(problems[1], /^--group system:masters is the admin kubeconfig's group.*ClusterRoleBinding/);
    assert.match(problems[2], /^--group 'system:nodes': system: groups/);
    assert.match(problems[3], /^--group ' ops'/);
    assert.match(problems[4], /^--ttl 25h: between 1m and 24h .*pki\.users/);
    assert.match(requestProblems("sam", [], "soon")[0], /--ttl 'soon' is not a duration/);
    assert.match(requestProblems("sam", [], "30s")[0], /--ttl 30s: between 1m and 24h/);
    assert.deepEqual(requestProblems("sam", [], "1h", "https://10.0.0.1:6443"), []);
    assert.deepEqual(requestProblems("sam", [], "1h", "http://api:6443"), [
      "--server 'http://api:6443': an https URL like https://api.example.com:6443",
    ]);
  });
});

describe("engine: secrets of a state export", () => {
  const SIG = "4dabf18193072939515e22adb298388d";
  it("reveals every secret the export decrypted, nested ones too", () => {
    const secret = (v: unknown) => ({ [SIG]: "1b47061264138c4ac30d75fd1eb44270", plaintext: JSON.stringify(v) });
    assert.deepEqual(revealSecrets({ a: secret("key"), b: [1, secret({ c: "d" })], e: { f: secret(secret("x")) } }), {
      a: "key",
      b: [1, { c: "d" }],
      e: { f: "x" },
    });
  });
  it("refuses a secret left as ciphertext, naming where, never its value", () => {
    assert.throws(
      () => revealSecrets({ outputs: { keyPem: { [SIG]: "1b47061264138c4ac30d75fd1eb44270", ciphertext: "v1:abc" } } }),
      /secret outputs\.keyPem was not decrypted \(is the backend's passphrase or key set\?\)/,
    );
  });
});
