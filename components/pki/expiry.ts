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

/**
 * When a certificate valid from `notBefore` to `notAfter` (RFC 3339) is due for renewal: half-way
 * through its validity, the point the local and vault backends renew at. "" when either end is
 * unknown or unreadable.
 */
export function halfLife(notBefore: string, notAfter: string): string {
  const start = Date.parse(notBefore);
  const end = Date.parse(notAfter);
  if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) return "";
  return new Date(start + (end - start) / 2).toISOString();
}

/** notBefore and notAfter (RFC 3339) of the first certificate in a PEM text; "" for each when there is none yet. */
export function pemValidity(pem: string | undefined): { notBefore: string; notAfter: string } {
  if (!pem) return { notBefore: "", notAfter: "" };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return { notBefore: "", notAfter: "" };
  }
  return { notBefore: new Date(cert.validFrom).toISOString(), notAfter: new Date(cert.validTo).toISOString() };
}
