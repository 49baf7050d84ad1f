/** The tls backend: a self-signed CA and locally signed certificates, all in Pulumi state. */
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { ClusterSpec } from "../spec";
import { clusterDomain, durationSeconds } from "../spec";
import type { IssuedCertificate, PkiBackend } from "./backend";
import {
  CA_FIXED_INPUTS,
  CA_KEY_BITS,
  CA_ORGANIZATION,
  LEAF_KEY_BITS,
  caKeyResourceName,
  caResourceName,
  pemBundle,
  trustOrder,
  rotationTrigger,
  rotationWindow,
  tlsAllowedUses,
  type CertificateSpec,
} from "./certificates";

/**
 * When a leaf issued in the rotation window of `now` is replaced: as the window rolls over (the
 * trigger changes), at most half a TTL after issue.
 * @internal
 */
export function rotationWindowEnd(now: Date, ttlSeconds: number): string {
  return new Date((rotationWindow(now, ttlSeconds) + 1) * (ttlSeconds / 2) * 1000).toISOString();
}

/**
 * Options of a rotating tls child (a leaf key, CSR or certificate): replaced when the
 * rotation window rolls over. `earlyRenewalHours` is deliberately not used (see README).
 * @internal
 */
export function rotatingOptions(parent: pulumi.Resource, now: Date, ttlSeconds: number): pulumi.CustomResourceOptions {
  return { parent, replacementTrigger: rotationTrigger(now, ttlSeconds) };
}

/**
 * The subject of a tls certificate request. pulumi-tls has one `organization`; checkUser
 * refuses more than one group for this backend before it gets here.
 */
export function tlsSubject(cert: CertificateSpec): tls.types.input.CertRequestSubject {
  if (cert.organizations.length > 1) {
    throw new RangeError(`${cert.key}: pulumi-tls takes one organization (got ${cert.organizations.join(", ")})`);
  }
  return {
    commonName: cert.commonName,
    ...(cert.organizations.length === 1 ? { organization: cert.organizations[0] } : {}),
  };
}

/** One tls CA: its key and self-signed certificate, made once (CA_FIXED_INPUTS). */
function createTlsCa(name: string, id: string, spec: ClusterSpec, parent: pulumi.Resource) {
  // The issuing CA is protected (a CA retired by rotation stopped issuing one update earlier).
  const protect = id === spec.pki.certificateAuthorities.issuing;
  const key = new tls.PrivateKey(
    caKeyResourceName(name, id),
    { algorithm: "RSA", rsaBits: CA_KEY_BITS },
    { parent, protect, ignoreChanges: [...CA_FIXED_INPUTS.tlsKey] },
  );
  // Not rotated by the window: replacing a CA invalidates every certificate at once. A new CA is
  // a new id in pki.certificateAuthorities.
  const cert = new tls.SelfSignedCert(
    caResourceName(name, id),
    {
      privateKeyPem: key.privateKeyPem,
      subject: { commonName: clusterDomain(spec), organization: CA_ORGANIZATION },
      validityPeriodHours: durationSeconds(spec.pki.caTtl) / 3600,
      isCaCertificate: true,
      allowedUses: ["cert_signing", "crl_signing", "digital_signature", "key_encipherment"],
    },
    { parent, protect, ignoreChanges: [...CA_FIXED_INPUTS.tls] },
  );
  return { key, cert };
}

/** A tls CA as an issued certificate: never renewed by itself, its expiry reported, not acted on. */
function caRecord(ca: tls.SelfSignedCert): Omit<IssuedCertificate, "keyPem"> {
  return {
    certPem: ca.certPem,
    notBefore: ca.validityStartTime,
    notAfter: ca.validityEndTime,
    renewAt: pulumi.output(""),
    renewedBy: [],
  };
}

/**
 * One CA per trusted id of `pki.certificateAuthorities` (`${name}-ca-key` / `${name}-ca` for the
 * first, `-<id>` appended for the others: the local backend's names), leaves from the issuing
 * one, `caCertPem` the bundle of every trusted CA, the issuing one first. A leaf's CA inputs are
 * the issuing CA's, so a new issuing CA replaces every leaf in the same update.
 * @internal
 */
export function createTlsBackend(name: string, spec: ClusterSpec, parent: pulumi.Resource, now: Date): PkiBackend {
  const { trusted, issuing } = spec.pki.certificateAuthorities;
  const cas = new Map(trusted.map((id) => [id, createTlsCa(name, id, spec, parent)]));
  const issuer = cas.get(issuing);
  if (issuer === undefined)
    throw new pulumi.ResourceError(`pki.certificateAuthorities.issuing '${issuing}' is not trusted`, parent);
  const { key: caKey, cert: ca } = issuer;
  return {
    caCertPem: pulumi
      .all(trustOrder(spec).map((id) => cas.get(id)?.cert.certPem as pulumi.Output<string>))
      .apply(pemBundle),
    ca: caRecord(ca),
    otherCas: Object.fromEntries(
      trusted
        .filter((id) => id !== issuing)
        .map((id) => [id, caRecord((cas.get(id) as { cert: tls.SelfSignedCert }).cert)]),
    ),
    issue(cert: CertificateSpec, childName: string): IssuedCertificate {
      const suffix = childName.replace(/^cert-/, "");
      const opts = rotatingOptions(parent, now, cert.ttlSeconds);
      const key = new tls.PrivateKey(`${name}-key-${suffix}`, { algorithm: "RSA", rsaBits: LEAF_KEY_BITS }, opts);
      const csr = new tls.CertRequest(
        `${name}-csr-${suffix}`,
        {
          privateKeyPem: key.privateKeyPem,
          subject: tlsSubject(cert),
          dnsNames: [...cert.dnsNames],
          ipAddresses: [...cert.ipAddresses],
        },
        opts,
      );
      const signed = new tls.LocallySignedCert(
        `${name}-${childName}`,
        {
          certRequestPem: csr.certRequestPem,
          caPrivateKeyPem: caKey.privateKeyPem,
          caCertPem: ca.certPem,
          validityPeriodHours: cert.ttlSeconds / 3600,
          allowedUses: tlsAllowedUses(cert.usages),
        },
        opts,
      );
      return {
        certPem: signed.certPem,
        keyPem: pulumi.secret(key.privateKeyPem),
        notBefore: signed.validityStartTime.apply((t) => t ?? ""),
        notAfter: signed.validityEndTime.apply((t) => t ?? ""),
        // Outputs are written by the update that issued it, when `now` was its window.
        renewAt: pulumi.output(rotationWindowEnd(now, cert.ttlSeconds)),
        renewedBy: [key, csr, signed],
      };
    },
  };
}
