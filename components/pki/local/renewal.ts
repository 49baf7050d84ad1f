/**
 * When the local backend reissues a certificate, as pure functions of the certificate's own
 * validity and an injected clock. No imports at run time: the dynamic providers serialize these.
 */

/**
 * True once less than half of the certificate's validity (notAfter − notBefore) remains at
 * `now`, including once it has expired. A window that cannot be read (invalid dates, notAfter
 * not after notBefore) also needs renewal: reissuing is always safe, keeping it is not.
 */
export function needsRenewal(notBefore: Date, notAfter: Date, now: Date): boolean {
  const start = notBefore.getTime();
  const end = notAfter.getTime();
  const at = now.getTime();
  if (!Number.isFinite(start) || !Number.isFinite(end) || !Number.isFinite(at) || end <= start) return true;
  return end - at < (end - start) / 2;
}

/** The moment needsRenewal turns true: halfway through the validity. */
export function renewalTime(notBefore: Date, notAfter: Date): Date {
  return new Date(notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) / 2);
}

/**
 * The validity of a certificate issued at `now` for `ttlSeconds`: it starts `backdateSeconds`
 * early, so a node whose clock is a little behind accepts it at once, and ends `ttlSeconds`
 * after `now`. Both ends are whole seconds (X.509 time precision).
 */
export function validityWindow(
  now: Date,
  ttlSeconds: number,
  backdateSeconds: number,
): { notBefore: Date; notAfter: Date } {
  const seconds = Math.floor(now.getTime() / 1000);
  return { notBefore: new Date((seconds - backdateSeconds) * 1000), notAfter: new Date((seconds + ttlSeconds) * 1000) };
}
