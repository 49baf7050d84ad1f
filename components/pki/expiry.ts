/** Reading a certificate's expiry, for time-to-expiry metrics and alerts. */
import { X509Certificate } from "node:crypto";

/**
 * The notAfter of the first certificate in a PEM text.
 * @throws RangeError when the text holds no parsable certificate
 */
export function certificateExpiry(pem: string): Date {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new RangeError(`not a PEM certificate: ${(err as Error).message}`, { cause: err });
  }
  return new Date(cert.validTo);
}

/** Seconds until the certificate expires (negative once it has). */
export function secondsToExpiry(pem: string, now: Date): number {
  return Math.floor((certificateExpiry(pem).getTime() - now.getTime()) / 1000);
}
