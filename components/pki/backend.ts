import type * as pulumi from "@pulumi/pulumi";
import type { CertificateSpec } from "./certificates";

/** A certificate a backend issued: PEM texts and when it expires. */
export interface IssuedCertificate {
  readonly certPem: pulumi.Output<string>;
  /** Always a Pulumi secret. */
  readonly keyPem: pulumi.Output<string>;
  /** RFC 3339 time the certificate expires ("" while unknown). */
  readonly notAfter: pulumi.Output<string>;
  /** RFC 3339 time the certificate was valid from ("" while unknown). */
  readonly notBefore: pulumi.Output<string>;
  /**
   * RFC 3339 time from which the backend reissues the certificate at the next update ("" while
   * unknown, or never: a certificate g8s does not renew by itself).
   */
  readonly renewAt: pulumi.Output<string>;
  /** The resources an update must include to renew it: the targets of a renewal (`up --target`). */
  readonly renewedBy: readonly pulumi.Resource[];
}

/** What ClusterPki needs of a backend: the CA and a way to issue a certificate as a named child. */
export interface PkiBackend {
  /** The trust bundle: every trusted CA certificate (PEM), the issuing one first. */
  readonly caCertPem: pulumi.Output<string>;
  /** The issuing CA certificate as an issued one (no key: it never leaves the backend). */
  readonly ca: Omit<IssuedCertificate, "keyPem">;
  /** The other trusted CAs during a CA rotation, by id (local and tls backends). */
  readonly otherCas?: Readonly<Record<string, Omit<IssuedCertificate, "keyPem">>>;
  /** Issues `cert` as children whose names end in `childName` (`${name}-cert-<key>`). */
  issue(cert: CertificateSpec, childName: string): IssuedCertificate;
}
