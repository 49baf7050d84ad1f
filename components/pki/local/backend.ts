/** The local backend: a root CA and every certificate from dynamic providers, no provider plugin. */
import * as pulumi from "@pulumi/pulumi";
import { durationSeconds, type ClusterSpec } from "../../spec";
import type { IssuedCertificate, PkiBackend } from "../backend";
import { clusterDomain } from "../../spec";
import { CA_FIXED_INPUTS, type CertificateSpec } from "../certificates";
import { halfLife } from "../expiry";
import { LocalCertificate, LocalPrivateKey, LocalRootCa } from "./resources";

/** RFC 3339 validity and renewal point of a local certificate, "" while unknown. */
function validityOf(cert: LocalRootCa | LocalCertificate) {
  const notBefore = cert.notBefore.apply((t) => t ?? "");
  const notAfter = cert.notAfter.apply((t) => t ?? "");
  return { notBefore, notAfter, renewAt: pulumi.all([notBefore, notAfter]).apply(([b, a]) => halfLife(b, a)) };
}

/** Subject O of every g8s cluster CA (the tls backend's too). */
export const CA_ORGANIZATION = "g8s";

/**
 * The CA (`${name}-ca`) and one LocalCertificate per certificate (`${name}-<childName>`), the
 * names the tls backend gives its CA and certificates. Every child is parented to `parent`.
 * @internal
 */
export function createLocalBackend(name: string, spec: ClusterSpec, parent: pulumi.Resource): PkiBackend {
  // Renewed at half of caTtl with the same key; every leaf follows (its inputs hold certPem).
  const ca = new LocalRootCa(
    `${name}-ca`,
    {
      commonName: clusterDomain(spec),
      organizations: [CA_ORGANIZATION],
      ttlSeconds: durationSeconds(spec.pki.caTtl),
    },
    { parent, ignoreChanges: [...CA_FIXED_INPUTS.local] },
  );
  return {
    caCertPem: ca.certPem,
    // The same key and subject: leaves issued by the old certificate still verify against the new one.
    ca: { certPem: ca.certPem, ...validityOf(ca), renewedBy: [ca] },
    issue(cert: CertificateSpec, childName: string): IssuedCertificate {
      const issued = new LocalCertificate(
        `${name}-${childName}`,
        {
          caCertPem: ca.certPem,
          caKeyPem: ca.keyPem,
          commonName: cert.commonName,
          organizations: [...cert.organizations],
          dnsNames: [...cert.dnsNames],
          ipAddresses: [...cert.ipAddresses],
          usages: [...cert.usages],
          ttlSeconds: cert.ttlSeconds,
        },
        { parent },
      );
      return {
        certPem: issued.certPem,
        keyPem: pulumi.secret(issued.keyPem),
        ...validityOf(issued),
        renewedBy: [issued],
      };
    },
  };
}

/**
 * A service-account key from the local backend (RSA 2048 by default), as the resource
 * `resourceName`; never renewed by time (see ClusterPki's serviceAccountKeys).
 * @internal
 */
export function createLocalServiceAccountKey(
  resourceName: string,
  parent: pulumi.Resource,
): { publicKeyPem: pulumi.Output<string>; privateKeyPem: pulumi.Output<string> } {
  const key = new LocalPrivateKey(resourceName, {}, { parent });
  return { publicKeyPem: key.publicKeyPem, privateKeyPem: pulumi.secret(key.privateKeyPem) };
}
