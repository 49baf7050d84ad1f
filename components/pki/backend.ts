import type * as pulumi from "@pulumi/pulumi";
import type { CertificateSpec } from "./certificates";

/** A certificate a backend issued: PEM texts and when it expires. */
export interface IssuedCertificate {
  readonly certPem: pulumi.Output<string>;
  /** Always a Pulumi secret. */
  readonly keyPem: pulumi.Output<string>;
  /** RFC 3339 time the certificate expires ("" while unknown). */
  readonly notAfter: pulumi.Output<string>;
}

/** What ClusterPki needs of a backend: the CA and a way to issue a certificate as a named child. */
export interface PkiBackend {
  readonly caCertPem: pulumi.Output<string>;
  /** Issues `cert` as children whose names end in `childName` (`${name}-cert-<key>`). */
  issue(cert: CertificateSpec, childName: string): IssuedCertificate;
}
