/** The host cluster's certificate table and the files ensureHostPki keeps in line with it. */
import * as assert from "node:assert/strict";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { hostLayout } from "../../../automation/host/config";
import {
  ADMIN_USER,
  CAS,
  certificateTable,
  ensureHostPki,
  KWOK_USER,
  reissueReason,
  type LeafSpec,
} from "../../../automation/host/pki";
import type { CertificateInfo } from "../../../components/pki/local/x509";

const byName = (name: string) => certificateTable().find((c) => c.name === name) as LeafSpec;
const DAY = 24 * 3600 * 1000;

describe("host PKI: the certificate table", () => {
  it("names the API server by every address a client uses, the first service IP included", () => {
    const api = byName("apiserver");
    assert.equal(api.ca, "ca");
    assert.deepEqual(api.usages, ["server"]);
    assert.deepEqual(api.dnsNames, [
      "localhost",
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
    ]);
    assert.deepEqual(api.ipAddresses, ["127.0.0.1", "10.96.0.1"]);
    assert.deepEqual(certificateTable("172.30.0.0/16").find((c) => c.name === "apiserver")?.ipAddresses, [
      "127.0.0.1",
      "172.30.0.1",
    ]);
  });

  it("makes the admin a member of system:masters and nobody else but the kubelet client", () => {
    assert.deepEqual(byName("admin").organizations, ["system:masters"]);
    assert.equal(byName("admin").commonName, ADMIN_USER);
    const masters = certificateTable()
      .filter((c) => c.organizations.includes("system:masters"))
      .map((c) => c.name);
    assert.deepEqual(masters, ["apiserver-kubelet-client", "admin"]);
  });

  it("gives the controller manager and the scheduler the user names their default RBAC roles bind", () => {
    assert.equal(byName("controller-manager").commonName, "system:kube-controller-manager");
    assert.equal(byName("scheduler").commonName, "system:kube-scheduler");
    assert.equal(byName("kwok").commonName, KWOK_USER);
  });

  it("issues everything that talks to etcd from the etcd CA, and nothing else from it", () => {
    const etcd = certificateTable()
      .filter((c) => c.ca === "etcd/ca")
      .map((c) => c.name);
    assert.deepEqual(etcd, ["etcd/server", "etcd/peer", "etcd/healthcheck-client", "apiserver-etcd-client"]);
    assert.deepEqual(byName("etcd/server").ipAddresses, ["127.0.0.1"]);
    assert.deepEqual(byName("etcd/peer").usages, ["server", "client"]);
  });

  it("makes client certificates client-only and serving certificates server-only (etcd's aside)", () => {
    for (const c of certificateTable()) {
      if (c.name.startsWith("etcd/server") || c.name.startsWith("etcd/peer")) continue;
      const serving = c.name === "apiserver" || c.name.endsWith("-server");
      assert.deepEqual(c.usages, [serving ? "server" : "client"], c.name);
      if (!serving) assert.deepEqual([...c.dnsNames, ...c.ipAddresses], [], `${c.name} needs no SANs`);
    }
  });
});

describe("host PKI: when a certificate is issued again", () => {
  const spec = byName("apiserver");
  const now = new Date("2027-01-01T00:00:00Z");
  const good: CertificateInfo = {
    serial: "1",
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + 300 * DAY),
    subject: { commonName: spec.commonName, organizations: [] },
    issuer: "CN=g8s-host-ca",
    dnsNames: [...spec.dnsNames].reverse(),
    ipAddresses: spec.ipAddresses,
    usages: ["server"],
    isCa: false,
  };
  const cases: [string, CertificateInfo | undefined, boolean, string | undefined][] = [
    ["a good certificate (SAN order aside)", good, false, undefined],
    ["no file", undefined, false, "missing"],
    ["a new CA", good, true, "new CA"],
    ["29 days left", { ...good, notAfter: new Date(now.getTime() + 29 * DAY) }, false, "expires soon"],
    ["a SAN gone", { ...good, ipAddresses: ["127.0.0.1"] }, false, "SANs changed"],
    ["another CN", { ...good, subject: { commonName: "x", organizations: [] } }, false, "subject changed"],
    [
      "another O",
      { ...good, subject: { commonName: spec.commonName, organizations: ["g"] } },
      false,
      "subject changed",
    ],
    ["client usage", { ...good, usages: ["client"] }, false, "usages changed"],
    ["from the future", { ...good, notBefore: new Date(now.getTime() + DAY) }, false, "not yet valid"],
  ];
  for (const [what, current, caRenewed, reason] of cases) {
    it(`${reason ?? "keeps"} for ${what}`, () => assert.equal(reissueReason(spec, current, now, caRenewed), reason));
  }
});

describe("host PKI: files", function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "g8s-host-pki-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("issues every certificate once, then nothing on a warm start, and renews what expires", async () => {
    const layout = hostLayout(dir);
    const first = await ensureHostPki(layout);
    assert.deepEqual(
      first.issued.map((i) => i.name),
      [...CAS.map((c) => c.name), ...certificateTable().map((c) => c.name), "sa"],
    );
    assert.deepEqual((await ensureHostPki(layout)).issued, []);
    const later = new Date(Date.now() + 340 * DAY); // 25 days before the leaves expire
    const renewed = await ensureHostPki(layout, later);
    assert.deepEqual(
      renewed.issued.map((i) => `${i.name}: ${i.reason}`),
      certificateTable().map((c) => `${c.name}: expires soon`),
    );
  });

  it("chains every leaf to its CA, matches each key, and keeps private keys private", () => {
    const layout = hostLayout(dir);
    const ca = new X509Certificate(readFileSync(layout.cert("ca")));
    const etcdCa = new X509Certificate(readFileSync(layout.cert("etcd/ca")));
    for (const spec of certificateTable()) {
      const cert = new X509Certificate(readFileSync(layout.cert(spec.name)));
      const issuer = spec.ca === "ca" ? ca : etcdCa;
      assert.ok(cert.verify(issuer.publicKey), `${spec.name} is signed by ${spec.ca}`);
      assert.ok(cert.checkPrivateKey(createPrivateKey(readFileSync(layout.key(spec.name)))), `${spec.name} key`);
      assert.equal(statSync(layout.key(spec.name)).mode & 0o777, 0o600, `${spec.name}.key mode`);
    }
    assert.ok(!ca.verify(etcdCa.publicKey), "the two CAs are distinct");
    assert.equal(createPrivateKey(readFileSync(path.join(layout.pkiDir, "sa.key"))).asymmetricKeyType, "rsa");
  });
});
