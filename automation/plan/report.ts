/** The plan as Markdown for a pull request comment, and as a short summary for the terminal. */
import { formatViolation, mandatory } from "../policy/runner";
import type { PlanResult, StackPlan } from "./plan";

const OPS = ["create", "update", "replace", "delete"] as const;

function count(plan: StackPlan, op: (typeof OPS)[number]): number {
  const s = plan.changeSummary ?? {};
  return op === "replace" ? (s.replace ?? 0) + (s["create-replacement"] ?? 0) : (s[op] ?? 0);
}

function verdict(plan: StackPlan): string {
  if (mandatory(plan.violations ?? []).length > 0) return "⛔ blocked by policy";
  const reportOnly = plan.verdict === "drifted" ? " (mode detect: reported, not applied)" : "";
  switch (plan.kind) {
    case "invalid":
      return "❌ invalid stack file";
    case "failed":
      return "❌ preview failed";
    case "orphaned":
      return "⚠️ orphaned, nothing will be destroyed";
    case "gone":
      return "removed (never deployed)";
    case "off":
      return "reconcile mode off: not previewed";
    case "destroy":
      return "🗑️ decommissioned: will be destroyed";
    case "new":
      return `🆕 new cluster${reportOnly}`;
    default:
      return OPS.some((op) => count(plan, op) > 0) ? `changes${reportOnly}` : "no changes";
  }
}

export function renderMarkdown(result: PlanResult): string {
  const lines: string[] = [];
  const touched = result.stacks.length;
  lines.push(`## g8s plan against \`${result.base}\``, "");
  if (touched === 0) {
    lines.push("This change touches no stack.", "");
    return lines.join("\n");
  }
  lines.push(`${touched} stack(s) touched.`, "");
  lines.push("| stack | why | create | update | replace | delete | result |");
  lines.push("| --- | --- | ---: | ---: | ---: | ---: | --- |");
  for (const p of result.stacks) {
    const why = p.reason === "program" ? "program changed" : `file ${p.reason}`;
    lines.push(`| \`${p.stack}\` | ${why} | ${OPS.map((op) => count(p, op)).join(" | ")} | ${verdict(p)} |`);
  }
  lines.push("");
  for (const p of result.stacks) {
    const risky = (p.preview?.drift ?? []).filter((d) => d.op === "replace" || d.op === "delete");
    const violations = p.violations ?? [];
    if (risky.length === 0 && p.error === undefined && violations.length === 0) continue;
    lines.push(`### \`${p.stack}\``, "");
    if (p.error !== undefined) lines.push("```", p.error, "```", "");
    if (violations.length > 0) {
      lines.push("Policy violations:", "");
      for (const v of violations) lines.push(`- ${formatViolation(v)}`);
      lines.push("");
    }
    if (risky.length > 0) {
      lines.push("Resources that would be **replaced or deleted**:", "");
      for (const d of risky)
        lines.push(`- **${d.op}** \`${d.type}\` \`${d.name}\`${d.keys.length ? ` (${d.keys.join(", ")})` : ""}`);
      lines.push("");
    }
  }
  return lines.join("\n");
}

export function renderSummary(result: PlanResult): string {
  if (result.stacks.length === 0) return `g8s plan: no stack touched since ${result.base}`;
  const rows = result.stacks.map(
    (p) => `  ${p.stack.padEnd(20)} ${OPS.map((op) => `${op[0]}${count(p, op)}`).join(" ")}  ${verdict(p)}`,
  );
  return [`g8s plan: ${result.stacks.length} stack(s) touched since ${result.base}`, ...rows].join("\n");
}
