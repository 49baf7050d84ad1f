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

/**
 * What the live CA certificate keeps of an older spec (its CA_FIXED_INPUTS are never applied to
 * it): a CN other than the cluster domain, or a lifetime other than `caTtlSeconds` (within a
 * minute: backdating). Undefined when it matches, or the PEM is not known yet.
 */
export function caSpecMismatch(pem: string | undefined, commonName: string, caTtlSeconds: number): string | undefined {
  if (!pem) return undefined;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return undefined;
  }
  const problems: string[] = [];
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  if (cn !== undefined && cn !== commonName) problems.push(`its CN stays ${cn} (baseDomain now gives ${commonName})`);
  const lifetime = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 1000;
  if (Math.abs(lifetime - caTtlSeconds) > 60) {
    problems.push(
      `its lifetime stays ${Math.round(lifetime / 3600)}h (pki.caTtl now says ${Math.round(caTtlSeconds / 3600)}h)`,
    );
  }
  if (problems.length === 0) return undefined;
  return (
    `pki: the cluster's CA is kept as it is: ${problems.join(" and ")}. Changing it in place would ` +
    "invalidate every certificate the nodes hold at once; the new values apply to the next CA (a CA rotation)."
  );
}
