/** How a stack's times read for people, the same in `g8s status` and on the status page. */
import type { StackStatus, UpgradeRecord } from "./types";

/** A time relative to now: `in 3m`, `40s ago`, `-` for none. */
export function age(iso: string | undefined, now: number): string {
  if (!iso) return "-";
  const s = Math.round((Date.parse(iso) - now) / 1000);
  const a = Math.abs(s);
  const text = a < 90 ? `${a}s` : a < 5400 ? `${Math.round(a / 60)}m` : `${Math.round(a / 3600)}h`;
  return s < 0 ? `${text} ago` : `in ${text}`;
}

/** The earliest expiry among the stack's certificates, and which one, e.g. `in 11h (apiserver)`. */
export function firstExpiry(stack: StackStatus, now: number): string {
  const known = (stack.certificates ?? []).filter((c) => c.notAfter !== "");
  if (known.length === 0) return "-";
  const first = known.reduce((a, b) => (Date.parse(b.notAfter) < Date.parse(a.notAfter) ? b : a));
  const renewing = (stack.renewal?.consecutiveFailures ?? 0) > 0 ? ", renewal failing" : "";
  return `${age(first.notAfter, now)} (${first.key}${renewing})`;
}

/** A pass's rolling upgrade in one line: `v1.34.12 → v1.35.4 in 333.9 s (master-0 110.6 s, …)`. */
export function upgradeSummary(upgrade: UpgradeRecord): string {
  const nodes = upgrade.nodes.map((n) => `${n.node} ${n.seconds.toFixed(1)} s`).join(", ");
  return `${upgrade.from} → ${upgrade.to} in ${upgrade.seconds.toFixed(1)} s (${nodes})`;
}
