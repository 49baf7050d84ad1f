/** How a stack's times read for people, the same in `g8s status` and on the status page. */
import type { RollRecord, StackStatus, UpgradeRecord } from "./types";

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

function nodeTimes(nodes: RollRecord["nodes"]): string {
  return nodes.map((n) => `${n.node} ${n.seconds.toFixed(1)} s`).join(", ");
}

/** A pass's rolling upgrade in one line: `v1.34.12 → v1.35.4 in 333.9 s (master-0 110.6 s, …)`. */
export function upgradeSummary(upgrade: UpgradeRecord): string {
  return `${upgrade.from} → ${upgrade.to} in ${upgrade.seconds.toFixed(1)} s (${nodeTimes(upgrade.nodes)})`;
}

/** A pass's node restarts on a new pod template in one line: `1 node in 97.0 s (pool-a-0 97.0 s)`. */
export function rollSummary(rolled: RollRecord): string {
  const count = `${rolled.nodes.length} node${rolled.nodes.length === 1 ? "" : "s"}`;
  return `${count} in ${rolled.seconds.toFixed(1)} s (${nodeTimes(rolled.nodes)})`;
}
