/**
 * Certificate renewal as a duty of its own: whatever a stack's mode or phase, certificates past
 * their renewal point are renewed by an update limited to them and to what carries them to the
 * nodes, so nothing else of the stack changes and nothing of it counts as drift.
 *
 * The stack's program says what to renew (stack output `pki`, see components/cluster.ts): per
 * certificate its validity, its renewal point (`renewAt`, the backend's own rule) and the
 * resources that reissue it; and the carriers (KVM Secrets, SSM parameters). The decision is
 * the reconciler's, on its clock; the update re-judges it with the backend's rule.
 */
import type { Clock } from "./clock";
import {
  EngineFailure,
  OperationAbortedError,
  StackBusyError,
  type CertificateStatus,
  type Engine,
  type RenewalOutcome,
  type RenewalRecord,
  type RenewalStatus,
  type RenewalTargets,
  type StackStatus,
} from "./types";
import { backoffDelay } from "./lifecycle";

/** The key of the CA among the certificates (components/pki CA_RECORD_KEY). */
export const CA_KEY = "ca";

/** What the stack output `pki` says, checked. */
export interface PkiOutput {
  readonly certificates: readonly CertificateStatus[];
  readonly carriers: readonly string[];
}

const isTime = (v: unknown): v is string => typeof v === "string" && (v === "" || !Number.isNaN(Date.parse(v)));

/**
 * Reads the stack output `pki`. Undefined (no output: a stack never updated, or a program
 * without PKI) reads as nothing to renew; a malformed one is an error naming the field.
 */
export function parsePkiOutput(value: unknown): PkiOutput {
  if (value === undefined || value === null) return { certificates: [], carriers: [] };
  const fail = (what: string): never => {
    throw new TypeError(`stack output pki: ${what}`);
  };
  if (typeof value !== "object") fail(`expected an object, got ${typeof value}`);
  const { certificates, carriers } = value as { certificates?: unknown; carriers?: unknown };
  if (typeof certificates !== "object" || certificates === null || Array.isArray(certificates))
    fail("certificates must be an object keyed by certificate");
  if (!Array.isArray(carriers) || !carriers.every((c) => typeof c === "string"))
    fail("carriers must be a list of URNs");
  const list: CertificateStatus[] = [];
  for (const [key, raw] of Object.entries(certificates as Record<string, unknown>)) {
    const r = raw as Record<string, unknown> | null;
    if (typeof r !== "object" || r === null) fail(`certificates.${key} must be an object`);
    const { notBefore, notAfter, renewAt, urns } = r as Record<string, unknown>;
    for (const [field, v] of Object.entries({ notBefore, notAfter, renewAt })) {
      if (!isTime(v)) fail(`certificates.${key}.${field} must be an RFC 3339 time or ""`);
    }
    if (!Array.isArray(urns) || !urns.every((u) => typeof u === "string"))
      fail(`certificates.${key}.urns must be a list of URNs`);
    list.push({
      key,
      notBefore: notBefore as string,
      notAfter: notAfter as string,
      renewAt: renewAt as string,
      urns: [...(urns as string[])],
    });
  }
  list.sort((a, b) => a.key.localeCompare(b.key));
  return { certificates: list, carriers: [...(carriers as string[])] };
}

/** g8s renews it by itself: it has a renewal point and resources that reissue it. */
export function renewable(cert: CertificateStatus): boolean {
  return cert.renewAt !== "" && cert.urns.length > 0;
}

/** Renewable certificates whose renewal point has come at `now` (epoch ms). */
export function dueCertificates(certs: readonly CertificateStatus[], now: number): CertificateStatus[] {
  return certs.filter((c) => renewable(c) && Date.parse(c.renewAt) <= now);
}

/** The earliest renewal point of the renewable certificates (epoch ms), if any. */
export function nextRenewalAt(certs: readonly CertificateStatus[]): number | undefined {
  const times = certs.filter(renewable).map((c) => Date.parse(c.renewAt));
  return times.length === 0 ? undefined : Math.min(...times);
}

/**
 * The resources a renewal updates: the due certificates' (every renewable one when the CA is
 * due: a renewed CA certificate is a new input of every leaf), and every carrier. Never their
 * dependents: a StatefulSet that mounts a carrier keeps whatever it has now.
 */
export function renewalTargets(
  certs: readonly CertificateStatus[],
  due: readonly CertificateStatus[],
  carriers: readonly string[],
): RenewalTargets {
  const chosen = due.some((c) => c.key === CA_KEY) ? certs.filter(renewable) : due;
  return { update: [...new Set([...chosen.flatMap((c) => c.urns), ...carriers])], replace: [] };
}

/**
 * `g8s renew --all`: every renewable leaf reissued now, due or not, with a new key (replaced:
 * the backends reissue in place only once due), and the carriers. Never the CA: replacing it in
 * one step would invalidate every certificate the nodes hold.
 */
export function forcedTargets(certs: readonly CertificateStatus[], carriers: readonly string[]): RenewalTargets {
  const leaves = certs.filter((c) => renewable(c) && c.key !== CA_KEY);
  return { update: [...carriers], replace: [...new Set(leaves.flatMap((c) => c.urns))] };
}

/** Phases in which no renewal runs: nothing a program could run with (no file, a broken one) or nothing left. */
const NO_RENEWAL: ReadonlySet<StackStatus["phase"]> = new Set(["invalid", "orphaned", "destroyed"]);

/**
 * When the stack's renewal duty is next due (epoch ms), whatever its phase: at once while its
 * certificates are unknown (never read, e.g. a stack in mode off since before this daemon),
 * after a failure at its retry time, else at the earliest renewal point.
 */
export function renewalDueAt(status: StackStatus, now: number): number | undefined {
  if (NO_RENEWAL.has(status.phase)) return undefined;
  const retry = status.renewal?.nextAttemptAt;
  if (retry !== undefined) return Date.parse(retry);
  if (status.certificates === undefined) return now;
  return nextRenewalAt(status.certificates);
}

/** How long renewal retries wait after failures: doubling from `baseMs`, never beyond `maxMs`. */
export interface RenewalRetry {
  readonly baseMs: number;
  readonly maxMs: number;
}

/** What a renewal (its own or a pass's) does to the stack's status: certificates, counters, retry time. */
export function renewalEnded(
  status: StackStatus,
  record: RenewalRecord,
  now: number,
  retry: RenewalRetry,
): StackStatus {
  const before = status.renewal ?? { consecutiveFailures: 0 };
  const certificates = record.certificates ?? status.certificates;
  let renewal: RenewalStatus;
  switch (record.outcome) {
    case "not-due":
      renewal = {
        ...before,
        lastCheckAt: record.startedAt,
        consecutiveFailures: 0,
        nextAttemptAt: undefined,
        lastError: undefined,
      };
      break;
    case "renewed":
      renewal = {
        ...before,
        lastCheckAt: record.startedAt,
        lastRenewedAt: new Date(now).toISOString(),
        lastRenewed: record.renewed,
        consecutiveFailures: 0,
        nextAttemptAt: undefined,
        lastError: undefined,
      };
      break;
    case "busy":
      // Someone else's update holds the lock: not a failure, but try again soon.
      renewal = { ...before, lastCheckAt: record.startedAt, nextAttemptAt: new Date(now + retry.baseMs).toISOString() };
      break;
    case "aborted":
      renewal = { ...before, nextAttemptAt: undefined };
      break;
    case "failed": {
      const failures = before.consecutiveFailures + 1;
      renewal = {
        ...before,
        lastCheckAt: record.startedAt,
        consecutiveFailures: failures,
        lastError: record.error,
        nextAttemptAt: new Date(now + backoffDelay(failures, retry.baseMs, retry.maxMs)).toISOString(),
      };
      break;
    }
  }
  return { ...status, ...(certificates !== undefined ? { certificates } : {}), renewal: prune(renewal) };
}

function prune(r: RenewalStatus): RenewalStatus {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as RenewalStatus;
}

export interface RenewalContext {
  readonly engine: Engine;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  readonly redact: (text: string) => string;
}

/**
 * The renewal duty of one stack: read its certificates, renew the due ones with an update
 * limited to them and their carriers, read them again. `force` renews every renewable
 * certificate, due or not (`g8s renew --all`).
 */
export async function runRenewal(
  stack: string,
  ctx: RenewalContext,
  options: { readonly force?: boolean } = {},
): Promise<RenewalRecord> {
  const { engine, clock, signal } = ctx;
  const started = clock.now();
  const base = { stack, startedAt: new Date(started).toISOString() };
  const done = (outcome: RenewalOutcome, extra: Partial<RenewalRecord> = {}): RenewalRecord => ({
    ...base,
    outcome,
    renewed: [],
    durationMs: clock.now() - started,
    ...extra,
  });
  let certificates: readonly CertificateStatus[] | undefined;
  let renewing: string[] = [];
  try {
    const before = parsePkiOutput(await engine.pkiOutput(stack));
    certificates = before.certificates;
    const due = options.force
      ? before.certificates.filter((c) => renewable(c) && c.key !== CA_KEY)
      : dueCertificates(before.certificates, clock.now());
    if (due.length === 0) return done("not-due", { certificates });
    renewing = due.map((c) => c.key);
    const targets = options.force
      ? forcedTargets(before.certificates, before.carriers)
      : renewalTargets(before.certificates, due, before.carriers);
    const result = await engine.upTargets(stack, targets, { signal });
    const after = parsePkiOutput(await engine.pkiOutput(stack));
    certificates = after.certificates;
    // The update re-judges each certificate with its backend's rule: one it did not reissue is
    // still due, and retried with backoff (a clock far apart, a backend that refused).
    const still = dueCertificates(after.certificates, clock.now()).map((c) => c.key);
    const missed = options.force ? [] : renewing.filter((k) => still.includes(k));
    const renewed = renewing.filter((k) => !missed.includes(k));
    if (missed.length > 0) {
      return done("failed", {
        certificates,
        renewed,
        resourceChanges: result.resourceChanges,
        error: `the update did not reissue ${missed.join(", ")}: still past the renewal point`,
      });
    }
    return done("renewed", { certificates, renewed, resourceChanges: result.resourceChanges });
  } catch (err) {
    const extra = {
      certificates,
      due: renewing,
      error: ctx.redact((err as Error).message),
      ...(err instanceof EngineFailure ? { output: ctx.redact(err.output) } : {}),
    };
    if (err instanceof StackBusyError) return done("busy", extra);
    if (err instanceof OperationAbortedError || signal.aborted) return done("aborted", extra);
    return done("failed", extra);
  }
}
