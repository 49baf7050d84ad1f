/** The local backend: a root CA and every certificate from dynamic providers, no provider plugin. */
import * as pulumi from "@pulumi/pulumi";
import { durationSeconds, type ClusterSpec } from "../../spec";
import type { IssuedCertificate, PkiBackend } from "../backend";
import { clusterDomain } from "../../spec";
import {
  CA_FIXED_INPUTS,
  CA_ORGANIZATION,
  caResourceName,
  pemBundle,
  trustOrder,
  type CertificateSpec,
} from "../certificates";
import { halfLife } from "../expiry";
import { LocalCertificate, LocalPrivateKey, LocalRootCa } from "./resources";

/** RFC 3339 validity and renewal point of a local certificate, "" while unknown. */
function validityOf(cert: LocalRootCa | LocalCertificate) {
  const notBefore = cert.notBefore.apply((t) => t ?? "");
  const notAfter = cert.notAfter.apply((t) => t ?? "");
  return { notBefore, notAfter, renewAt: pulumi.all([notBefore, notAfter]).apply(([b, a]) => halfLife(b, a)) };
}

/**
 * One LocalRootCa per trusted CA id (`pki.certificateAuthorities`; `${name}-ca` for the first)
 * and one LocalCertificate per certificate (`${name}-<childName>`, the tls backend's names),
 * issued by the issuing CA. `caCertPem` is the trust bundle: every trusted CA, the issuing one
 * first, so a CA rotation adds a CA to every bundle before anything is issued from it, and
 * removes one only after every leaf was reissued from its successor. Every child is parented to
 * `parent`.
 * @internal
 */
export function createLocalBackend(name: string, spec: ClusterSpec, parent: pulumi.Resource): PkiBackend {
  const { trusted, issuing } = spec.pki.certificateAuthorities;
  // Each renewed at half of caTtl with the same key; the leaves follow the issuing one (their
  // inputs hold its certPem). What a CA was made with stays (CA_FIXED_INPUTS).
  const cas = new Map(
    trusted.map((id) => [
      id,
      new LocalRootCa(
        caResourceName(name, id),
        {
          commonName: clusterDomain(spec),
          organizations: [CA_ORGANIZATION],
          ttlSeconds: durationSeconds(spec.pki.caTtl),
        },
        // The issuing CA is protected; one retired by rotation stopped issuing an update earlier.
        { parent, protect: id === issuing, ignoreChanges: [...CA_FIXED_INPUTS.local] },
      ),
    ]),
  );
  const ca = cas.get(issuing);
  if (ca === undefined)
    throw new pulumi.ResourceError(`pki.certificateAuthorities.issuing '${issuing}' is not trusted`, parent);
  const bundle = pulumi.all(trustOrder(spec).map((id) => (cas.get(id) as LocalRootCa).certPem)).apply(pemBundle);
  return {
    caCertPem: bundle,
    // The same key and subject: leaves issued by the old certificate still verify against the new one.
    ca: { certPem: ca.certPem, ...validityOf(ca), renewedBy: [ca] },
    otherCas: Object.fromEntries(
      trusted
        .filter((id) => id !== issuing)
        .map((id) => {
          const other = cas.get(id) as LocalRootCa;
          return [id, { certPem: other.certPem, ...validityOf(other), renewedBy: [other] }];
        }),
    ),
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
