/** The local backend's X.509 primitives, judged by Debian's openssl (spawned), not by themselves. */
import * as assert from "node:assert/strict";
import {
  createSelfSignedCa,
  generateKeyPair,
  issueCertificate,
  parseCertificate,
  type KeyPairPem,
} from "../../../components/pki/local/x509";
import { extensionsOf, fieldsOf, keyMatchesCertificate, opensslOk, verify, withFiles } from "./openssl";

const HOUR = 3600_000;
const START = new Date("2026-01-10T08:00:00.750Z"); // not on a whole second, on purpose
const inHours = (h: number) => new Date(START.getTime() + h * HOUR);
/** When openssl verifies: inside every window below (which lie in the past or future of the test run). */
const AT = inHours(0.5);

describe("x509 primitives (checked with openssl)", () => {
  let caKey: KeyPairPem;
  let caPem: string;
  let otherCaPem: string;
  let leafKey: KeyPairPem;
  let serverPem: string;
  let clientPem: string;
  let bothPem: string;

  before(async () => {
    caKey = await generateKeyPair();
    caPem = await createSelfSignedCa({
      commonName: "edge7.k8s.corp.internal",
      organizations: ["g8s"],
      privateKeyPem: caKey.privateKeyPem,
      notBefore: START,
      notAfter: inHours(24 * 365),
    });
    const otherKey = await generateKeyPair();
    otherCaPem = await createSelfSignedCa({
      commonName: "edge7.k8s.corp.internal", // same name, other key: must not verify
      organizations: ["g8s"],
      privateKeyPem: otherKey.privateKeyPem,
      notBefore: START,
      notAfter: inHours(24 * 365),
    });
    leafKey = await generateKeyPair();
    const issue = (commonName: string, extra: Partial<Parameters<typeof issueCertificate>[0]>) =>
      issueCertificate({
        caCertPem: caPem,
        caPrivateKeyPem: caKey.privateKeyPem,
        publicKeyPem: leafKey.publicKeyPem,
        commonName,
        notBefore: START,
        notAfter: inHours(24),
        ...extra,
      });
    serverPem = await issue("kube-apiserver", {
      dnsNames: ["kubernetes", "kubernetes.default.svc.cluster.local", "api.edge7.k8s.corp.internal"],
      ipAddresses: ["172.30.0.1", "127.0.0.1", "fd00::1"],
      usages: ["server"],
    });
    clientPem = await issue("jane", { organizations: ["dev-team", "ops-team"], usages: ["client"] });
    bothPem = await issue("master-0.edge7.k8s.corp.internal", {
      dnsNames: ["master-0", "localhost"],
      usages: ["server", "client"],
    });
  });

  it("generates PKCS#8 keys: ECDSA P-256 by default, RSA 2048 on request", async () => {
    const rsa = await generateKeyPair("rsa-2048");
    assert.match(caKey.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.match(caKey.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
    withFiles({ "ec.pem": caKey.privateKeyPem, "rsa.pem": rsa.privateKeyPem }, (dir) => {
      assert.match(opensslOk(["pkey", "-in", "ec.pem", "-noout", "-text"], dir), /ASN1 OID: prime256v1/);
      assert.match(opensslOk(["pkey", "-in", "rsa.pem", "-noout", "-text"], dir), /Private-Key: \(2048 bit/);
    });
    await assert.rejects(generateKeyPair("dsa-1024" as never), /algorithm must be one of ecdsa-p256, rsa-2048/);
  });

  it("self-signs a CA: CA:TRUE critical, certificate and CRL signing, O then CN, the requested window", () => {
    const ext = extensionsOf(caPem, ["basicConstraints", "keyUsage"]);
    assert.match(ext, /Basic Constraints: critical\n\s+CA:TRUE\n/);
    assert.match(ext, /Key Usage: critical\n\s+Digital Signature, Certificate Sign, CRL Sign\n/);
    const fields = fieldsOf(caPem);
    assert.equal(fields.subject, "CN=edge7.k8s.corp.internal,O=g8s"); // RFC 2253 prints the last RDN first
    assert.equal(fields.notBefore.toISOString(), "2026-01-10T08:00:00.000Z");
    assert.equal(
      fields.notAfter.toISOString(),
      inHours(24 * 365)
        .toISOString()
        .replace(".750", ".000"),
    );
    assert.equal(verify(caPem, caPem, { at: AT }).code, 0, "a root verifies against itself");
  });

  it("issues leaves that openssl verifies against their CA, and not against another CA of the same name", () => {
    for (const pem of [serverPem, clientPem, bothPem]) {
      const ok = verify(caPem, pem, { at: AT });
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /cert\.pem: OK/);
      const wrong = verify(otherCaPem, pem, { at: AT });
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /certificate signature failure|unable to get local issuer/);
    }
  });

  it("puts the DNS and IP subject alternative names in, in order", () => {
    assert.match(
      extensionsOf(serverPem, ["subjectAltName"]),
      /DNS:kubernetes, DNS:kubernetes\.default\.svc\.cluster\.local, DNS:api\.edge7\.k8s\.corp\.internal, IP Address:172\.30\.0\.1, IP Address:127\.0\.0\.1, IP Address:FD00:0:0:0:0:0:0:1/i,
    );
    assert.doesNotMatch(extensionsOf(clientPem, ["subjectAltName"]), /DNS:|IP Address:/);
  });

  it("sets the extended key usages from usages, so openssl's purpose checks pass and fail accordingly", () => {
    assert.match(
      extensionsOf(serverPem, ["extendedKeyUsage"]),
      /Extended Key Usage: \n\s+TLS Web Server Authentication\n/,
    );
    assert.match(
      extensionsOf(clientPem, ["extendedKeyUsage"]),
      /Extended Key Usage: \n\s+TLS Web Client Authentication\n/,
    );
    assert.match(
      extensionsOf(bothPem, ["extendedKeyUsage"]),
      /TLS Web Server Authentication, TLS Web Client Authentication\n/,
    );
    assert.equal(verify(caPem, serverPem, { purpose: "sslserver", at: AT }).code, 0);
    assert.notEqual(verify(caPem, serverPem, { purpose: "sslclient", at: AT }).code, 0);
    assert.equal(verify(caPem, clientPem, { purpose: "sslclient", at: AT }).code, 0);
    assert.notEqual(verify(caPem, clientPem, { purpose: "sslserver", at: AT }).code, 0);
    assert.equal(verify(caPem, bothPem, { purpose: "sslserver", at: AT }).code, 0);
    assert.equal(verify(caPem, bothPem, { purpose: "sslclient", at: AT }).code, 0);
  });

  it("marks leaves CA:FALSE with digital signature, adding key encipherment only for RSA keys (RFC 5480)", async () => {
    const ext = extensionsOf(serverPem, ["basicConstraints", "keyUsage"]);
    assert.match(ext, /Basic Constraints: critical\n\s+CA:FALSE\n/);
    assert.match(ext, /Key Usage: critical\n\s+Digital Signature\n/);
    const rsa = await generateKeyPair("rsa-2048");
    const rsaLeaf = await issueCertificate({
      caCertPem: caPem,
      caPrivateKeyPem: caKey.privateKeyPem,
      publicKeyPem: rsa.publicKeyPem,
      commonName: "rsa-leaf",
      usages: ["server"],
      notBefore: START,
      notAfter: inHours(1),
    });
    assert.match(extensionsOf(rsaLeaf, ["keyUsage"]), /Digital Signature, Key Encipherment\n/);
    assert.equal(verify(caPem, rsaLeaf, { purpose: "sslserver", at: AT }).code, 0);
    assert.ok(keyMatchesCertificate(rsa.privateKeyPem, rsaLeaf));
  });

  it("puts every O value in the subject, CN last", () => {
    assert.equal(fieldsOf(clientPem).subject, "CN=jane,O=ops-team,O=dev-team");
  });

  it("uses exactly the requested validity window, truncated to whole seconds", () => {
    const fields = fieldsOf(bothPem);
    assert.equal(fields.notBefore.toISOString(), "2026-01-10T08:00:00.000Z");
    assert.equal(fields.notAfter.toISOString(), "2026-01-11T08:00:00.000Z");
    assert.match(verify(caPem, bothPem, { at: inHours(24.01) }).stderr, /certificate has expired/);
    assert.match(verify(caPem, bothPem, { at: inHours(-0.01) }).stderr, /certificate is not yet valid/);
  });

  it("issues for the subject's public key: the subject's private key matches, the CA's does not", () => {
    assert.ok(keyMatchesCertificate(leafKey.privateKeyPem, serverPem));
    assert.ok(!keyMatchesCertificate(caKey.privateKeyPem, serverPem));
  });

  it("gives every certificate a new positive serial", () => {
    const serials = [caPem, serverPem, clientPem, bothPem].map((p) => fieldsOf(p).serial);
    assert.equal(new Set(serials).size, 4);
    for (const s of serials) assert.match(s, /^[4-7][0-9a-f]{31}$/, "16 bytes, high bit clear, no leading zero byte");
  });

  it("issues an intermediate CA whose leaves verify through it", async () => {
    const intermediateKey = await generateKeyPair();
    const intermediate = await issueCertificate({
      caCertPem: caPem,
      caPrivateKeyPem: caKey.privateKeyPem,
      publicKeyPem: intermediateKey.publicKeyPem,
      commonName: "edge7 intermediate",
      ca: { pathLength: 0 },
      notBefore: START,
      notAfter: inHours(48),
    });
    assert.match(
      extensionsOf(intermediate, ["basicConstraints", "keyUsage"]),
      /CA:TRUE, pathlen:0\n[\s\S]*Digital Signature, Certificate Sign, CRL Sign/,
    );
    const leaf = await issueCertificate({
      caCertPem: intermediate,
      caPrivateKeyPem: intermediateKey.privateKeyPem,
      publicKeyPem: leafKey.publicKeyPem,
      commonName: "through-intermediate",
      usages: ["client"],
      notBefore: START,
      notAfter: inHours(1),
    });
    assert.notEqual(verify(caPem, leaf, { at: AT }).code, 0, "not without the intermediate");
    const chained = verify(caPem, leaf, { untrusted: intermediate, purpose: "sslclient", at: AT });
    assert.equal(chained.code, 0, chained.stderr);
  });

  it("keeps issued certificates valid under a CA certificate reissued with the same key and name", async () => {
    const reissued = await createSelfSignedCa({
      commonName: "edge7.k8s.corp.internal",
      organizations: ["g8s"],
      privateKeyPem: caKey.privateKeyPem,
      notBefore: inHours(1),
      notAfter: inHours(24 * 400),
    });
    assert.notEqual(fieldsOf(reissued).serial, fieldsOf(caPem).serial);
    const r = verify(reissued, serverPem, { at: inHours(2) });
    assert.equal(r.code, 0, r.stderr);
  });

  it("reads a certificate back as openssl does: serial, window, subject, SANs, usages, CA flag", () => {
    const info = parseCertificate(serverPem);
    const fields = fieldsOf(serverPem);
    assert.equal(info.serial, fields.serial);
    assert.equal(info.notBefore.getTime(), fields.notBefore.getTime());
    assert.equal(info.notAfter.getTime(), fields.notAfter.getTime());
    assert.deepEqual(info.subject, { commonName: "kube-apiserver", organizations: [] });
    assert.deepEqual(info.dnsNames, [
      "kubernetes",
      "kubernetes.default.svc.cluster.local",
      "api.edge7.k8s.corp.internal",
    ]);
    assert.deepEqual(info.ipAddresses, ["172.30.0.1", "127.0.0.1", "fd00::1"]);
    assert.deepEqual(info.usages, ["server"]);
    assert.equal(info.isCa, false);
    assert.equal(info.issuer, "O=g8s, CN=edge7.k8s.corp.internal");
    assert.deepEqual(parseCertificate(clientPem).subject, {
      commonName: "jane",
      organizations: ["dev-team", "ops-team"],
    });
    assert.equal(parseCertificate(caPem).isCa, true);
  });

  it("reads a certificate openssl made", () => {
    const made = withFiles({}, (dir) => {
      opensslOk(
        [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:P-256",
          "-nodes",
          "-keyout",
          "k.pem",
          "-out",
          "c.pem",
          "-days",
          "2",
          "-subj",
          "/O=ops/CN=made-by-openssl",
          "-addext",
          "subjectAltName=DNS:a.example,IP:10.0.0.9",
          "-addext",
          "extendedKeyUsage=clientAuth",
        ],
        dir,
      );
      return opensslOk(["x509", "-in", "c.pem"], dir);
    });
    const info = parseCertificate(made);
    assert.deepEqual(info.subject, { commonName: "made-by-openssl", organizations: ["ops"] });
    assert.deepEqual(info.dnsNames, ["a.example"]);
    assert.deepEqual(info.ipAddresses, ["10.0.0.9"]);
    assert.deepEqual(info.usages, ["client"]);
    assert.equal(info.serial, fieldsOf(made).serial.replace(/^0+/, ""));
  });

  it("refuses bad requests with messages that name the field, never echoing key material", async () => {
    const base = {
      caCertPem: caPem,
      caPrivateKeyPem: caKey.privateKeyPem,
      publicKeyPem: leafKey.publicKeyPem,
      commonName: "x",
      notBefore: START,
      notAfter: inHours(1),
    };
    await assert.rejects(
      issueCertificate({ ...base, notAfter: START }),
      /notAfter \(.*\) must be at least a second after notBefore/,
    );
    await assert.rejects(issueCertificate({ ...base, commonName: " " }), /commonName must be a non-empty string/);
    await assert.rejects(
      issueCertificate({ ...base, ipAddresses: ["10.0.0.300"] }),
      /ipAddresses: '10\.0\.0\.300' is not an IPv4 or IPv6 address/,
    );
    await assert.rejects(
      issueCertificate({ ...base, dnsNames: ["bad name"] }),
      /dnsNames: 'bad name' is not a DNS name/,
    );
    await assert.rejects(
      issueCertificate({ ...base, caCertPem: serverPem }),
      /caCertPem \(CN=kube-apiserver\) is not a CA certificate/,
    );
    const otherKey = await generateKeyPair();
    await assert.rejects(
      issueCertificate({ ...base, caPrivateKeyPem: otherKey.privateKeyPem }),
      (err: Error) =>
        /caPrivateKeyPem does not belong to caCertPem/.test(err.message) && !err.message.includes("PRIVATE KEY"),
    );
    await assert.rejects(
      issueCertificate({
        ...base,
        caPrivateKeyPem: "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
      }),
      (err: Error) => /caPrivateKeyPem is not a PEM key/.test(err.message) && !err.message.includes("not a key"),
    );
    assert.throws(() => parseCertificate("hello"), /not a PEM certificate/);
  });
});

describe("a live CA kept as it was made (CA_FIXED_INPUTS)", () => {
  it("says what the live CA keeps of an older spec: its CN, its lifetime; nothing when they match", async () => {
    const { caSpecMismatch } = await import("../../../components/pki");
    const key = await generateKeyPair();
    const pem = await createSelfSignedCa({
      commonName: "edge7.k8s.corp.internal",
      organizations: ["g8s"],
      privateKeyPem: key.privateKeyPem,
      notBefore: new Date(START.getTime() - 30_000), // backdated, as the local backend does
      notAfter: inHours(87600),
    });
    const tenYears = 87600 * 3600;
    assert.equal(caSpecMismatch(pem, "edge7.k8s.corp.internal", tenYears), undefined);
    assert.equal(caSpecMismatch(undefined, "edge7.k8s.corp.internal", tenYears), undefined, "unknown during a preview");
    assert.equal(
      caSpecMismatch(pem, "edge7.k8s.example.com", 2 * tenYears),
      "pki: the cluster's CA is kept as it is: its CN stays edge7.k8s.corp.internal (baseDomain now gives " +
        "edge7.k8s.example.com) and its lifetime stays 87600h (pki.caTtl now says 175200h). Changing it in place " +
        "would invalidate every certificate the nodes hold at once; the new values apply to the next CA (a CA rotation).",
    );
  });
});
