/** The pure parts of components/pki: rotation windows, policies, validation, kubeconfig, expiry. */
import * as assert from "node:assert/strict";
import { parseClusterSpec } from "../../../components/spec";
import {
  certificateExpiry,
  certificateSet,
  checkMasterNames,
  minSecondsRemaining,
  renderKubeconfig,
  rotationTrigger,
  rotationWindow,
  secondsToExpiry,
} from "../../../components/pki";
import { awsSpec, expectIssues, kvmSpec, withChange } from "../spec/helpers";
import { tlsClusterSpec, vaultClusterSpec } from "./helpers";

const DAY = 24 * 60 * 60;

/** A self-signed P-256 certificate made with openssl; notAfter=Nov 27 19:49:16 2026 GMT. */
const FIXTURE_PEM = `-----BEGIN CERTIFICATE-----
MIIBiDCCAS2gAwIBAgIUHMyZxHY49VdVX82/pydFbb5JDK0wCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOZXhwaXJ5LWZpeHR1cmUwHhcNMjYxMTI1MTk0OTE2WhcNMjYx
MTI3MTk0OTE2WjAZMRcwFQYDVQQDDA5leHBpcnktZml4dHVyZTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABBP9okFxZUxV672/wAJNu0tE8WzQUWa0pxHzGw/XL0Bq
wY0DFDlTNmzGcFFr/FYRT3seBYGz4EDm2ycQaumxHAajUzBRMB0GA1UdDgQWBBS5
yjAiu7kOyFPFsvMppoz6Kp0wMTAfBgNVHSMEGDAWgBS5yjAiu7kOyFPFsvMppoz6
Kp0wMTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQCAZ+wji85I
SLHQ3sr4ECyKZnQEVi+U8AvbIqvboAC5cgIhAJqHQSS5DEt/jSDipTLrDQgEJuA8
eTQ+ECHBOLWaLGq7
-----END CERTIFICATE-----
`;

describe("pki rotation", () => {
  it("counts half-TTL windows from the epoch", () => {
    assert.equal(rotationWindow(new Date("1970-01-01T00:00:00Z"), DAY), 0);
    assert.equal(rotationWindow(new Date("1970-01-01T11:59:59Z"), DAY), 0);
    assert.equal(rotationWindow(new Date("1970-01-01T12:00:00Z"), DAY), 1);
    assert.equal(rotationWindow(new Date("1970-01-01T00:59:59Z"), 2 * 3600), 0);
    assert.equal(rotationWindow(new Date("1970-01-01T01:00:00Z"), 2 * 3600), 1);
  });

  it("gives the same trigger for two times within one window and a new one across the boundary", () => {
    const a = rotationTrigger(new Date("2025-03-01T12:00:00Z"), DAY);
    const b = rotationTrigger(new Date("2025-03-01T23:59:59.999Z"), DAY);
    const c = rotationTrigger(new Date("2025-03-02T00:00:00Z"), DAY);
    assert.equal(a, b);
    assert.notEqual(b, c);
    assert.equal(c, "ttl=86400s;window=40298");
  });

  it("changes the trigger when the TTL changes", () => {
    const now = new Date("2025-03-01T00:00:00Z");
    assert.notEqual(rotationTrigger(now, DAY), rotationTrigger(now, 2 * DAY));
  });

  it("refuses a TTL of 0 instead of dividing by it", () => {
    assert.throws(() => rotationWindow(new Date(), 0), /TTL must be positive \(got 0\)/);
  });

  it("renews Vault certificates once half the TTL is gone", () => {
    assert.equal(minSecondsRemaining(DAY), 43200);
    assert.equal(minSecondsRemaining(3600), 1800);
  });
});

describe("pki certificate set", () => {
  it("names certificates by stable keys, independent of the order of masterNames", () => {
    const input = (masterNames: string[]) => ({
      spec: vaultClusterSpec(),
      masterNames,
      masterAddresses: {},
      apiNames: [],
      apiAddresses: [],
      serviceDnsDomain: "cluster.local",
    });
    const keys = (names: string[]) =>
      certificateSet(input(names))
        .map((c) => c.key)
        .sort();
    assert.deepEqual(keys(["master-0", "master-1", "master-2"]), keys(["master-2", "master-0", "master-1"]));
  });

  it("puts a custom in-cluster DNS domain in the API server's SANs", () => {
    const [api] = certificateSet({
      spec: tlsClusterSpec(),
      masterNames: ["master-0"],
      masterAddresses: {},
      apiNames: [],
      apiAddresses: [],
      serviceDnsDomain: "edge7.local",
    });
    assert.ok(api.dnsNames.includes("kubernetes.default.svc.edge7.local"));
    assert.ok(!api.dnsNames.includes("kubernetes.default.svc.cluster.local"));
  });
});

describe("pki configuration errors", () => {
  // The rules live in components/spec (parseClusterSpec); these are the PKI ones, located.
  it("rejects a certificate TTL of 0 at pki.certTtl", () =>
    expectIssues(
      withChange(kvmSpec(), (s) => (s.pki.certTtl = "0s")),
      [{ path: "pki.certTtl", message: "must be between 1h and 720h (got 0s)" }],
    ));

  it("rejects a certificate TTL above the maximum at pki.certTtl", () =>
    expectIssues(
      withChange(awsSpec(), (s) => (s.pki.certTtl = "721h")),
      [{ path: "pki.certTtl", message: "must be between 1h and 720h (got 721h)" }],
    ));

  it("rejects the vault backend without an address at pki.vault.address", () =>
    expectIssues(
      withChange(awsSpec(), (s) => (s.pki = { backend: "vault" })),
      [
        {
          path: "pki.vault.address",
          message: "is required with pki.backend vault: set the Vault URL, e.g. https://vault.example.com",
        },
      ],
    ));

  it("rejects an unknown backend at pki.backend", () =>
    expectIssues(
      withChange(kvmSpec(), (s) => (s.pki.backend = "cfssl")),
      [{ path: "pki.backend", message: "must be one of vault, tls, local (got 'cfssl')" }],
    ));

  it("rejects TTLs in fractions of an hour with the tls backend (pulumi-tls counts hours)", () =>
    expectIssues(
      withChange(kvmSpec(), (s) => Object.assign(s.pki, { certTtl: "1h30m", caTtl: "100h30m" })),
      [
        {
          path: "pki.certTtl",
          message: "must be whole hours with pki.backend tls (got 1h30m): pulumi-tls counts validity in hours",
        },
        {
          path: "pki.caTtl",
          message: "must be whole hours with pki.backend tls (got 100h30m): pulumi-tls counts validity in hours",
        },
      ],
    ));

  it("accepts fractions of an hour with the vault backend", () => {
    const spec = parseClusterSpec(withChange(awsSpec(), (s) => (s.pki.certTtl = "1h30m")));
    assert.equal(spec.pki.certTtl, "1h30m");
  });

  it("refuses master keys that cannot name a certificate, and duplicates", () => {
    assert.equal(checkMasterNames(["master-0", "master-1"]), undefined);
    assert.equal(
      checkMasterNames(["Master_0"]),
      "masterNames: 'Master_0' must be a DNS label (it is a SAN and names the etcd certificate)",
    );
    assert.equal(checkMasterNames(["master-0", "master-0"]), "masterNames: 'master-0' is listed twice");
  });
});

describe("renderKubeconfig", () => {
  it("refuses an API endpoint that is not an https URL", () => {
    assert.throws(
      () =>
        renderKubeconfig({
          clusterName: "c",
          server: "api.example.com:6443",
          caCertPem: "ca",
          userName: "u",
          clientCertPem: "cert",
          clientKeyPem: "key",
        }),
      (err: Error) =>
        err.message ===
        "apiEndpoint must be an https URL like https://api.example.com:6443 (got 'api.example.com:6443')",
    );
  });
});

describe("certificateExpiry", () => {
  it("reads notAfter from a PEM certificate", () => {
    assert.equal(certificateExpiry(FIXTURE_PEM).toISOString(), "2026-11-27T19:49:16.000Z");
  });

  it("gives the seconds left, negative once expired", () => {
    assert.equal(secondsToExpiry(FIXTURE_PEM, new Date("2026-11-27T19:48:16Z")), 60);
    assert.equal(secondsToExpiry(FIXTURE_PEM, new Date("2026-11-27T19:50:16Z")), -60);
  });

  it("refuses text that is not a certificate", () => {
    assert.throws(
      () => certificateExpiry("KEY"),
      (err: Error) => err instanceof RangeError && /^not a PEM certificate: /.test(err.message),
    );
  });
});
