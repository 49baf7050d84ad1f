/**
 * The status page the daemon serves at `/` (every stack) and `/stacks/<name>` (one stack and its
 * recent passes): server-rendered HTML with a little inline CSS, no script, reloading itself.
 * Read-only and without a token, so it shows only what status already holds with secrets
 * redacted (phases, outcomes, resource names, one-line errors), never an engine's whole output;
 * every value is escaped.
 */
import { age, firstExpiry, rollSummary, upgradeSummary } from "./present";
import type { PassRecord, StackStatus } from "./types";

/** Seconds between the page's reloads. */
export const PAGE_REFRESH_SECONDS = 10;

const ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text as HTML text or an attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** Where a stack's page is. */
export function stackHref(name: string): string {
  return `/stacks/${encodeURIComponent(name)}`;
}

/** Healthy, waiting, or needing a look: the colour of a phase or an outcome. */
function tone(word: string): "ok" | "warn" | "bad" | "idle" {
  if (["in-sync", "corrected", "destroyed"].includes(word)) return "ok";
  if (["drifted", "busy", "backoff", "running", "queued", "pending"].includes(word)) return "warn";
  if (["failed", "stalled", "blocked", "invalid", "needs-attention", "orphaned", "aborted"].includes(word))
    return "bad";
  return "idle";
}

const badge = (word: string) => `<span class="badge ${tone(word)}">${escapeHtml(word)}</span>`;

/** The first line of a message, at most `max` characters. */
function firstLine(text: string | undefined, max = 160): string {
  const line = (text ?? "").split("\n")[0];
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** The names of what a pass found drifted (`update master`), never values. */
function driftNames(pass: PassRecord | undefined): string {
  if (!pass || pass.drift.length === 0) return "-";
  return pass.drift.map((d) => `${d.op} ${d.name}`).join(", ");
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`;
}

function lastPassCell(pass: PassRecord | undefined, now: number): string {
  if (!pass) return "-";
  const how = pass.direct ? " at once" : "";
  return `${badge(pass.outcome)}${how} <span class="muted">${escapeHtml(age(pass.startedAt, now))}, ${escapeHtml(seconds(pass.durationMs))}</span>`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2430;background:#fafbfc}
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{font-weight:600;background:#f0f2f5}
.muted{color:#6a7380}.badge{padding:.05rem .45rem;border-radius:.6rem;font-size:.85em}
.ok{background:#dcf5e3;color:#17602f}.warn{background:#fff1cc;color:#6e4b00}
.bad{background:#fde0df;color:#8c1d18}.idle{background:#eceef1;color:#4a525e}
a{color:#0b57b0;text-decoration:none}a:hover{text-decoration:underline}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{color:#6a7380}dd{margin:0}
`;

function page(title: string, body: string, now: number): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${PAGE_REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
<p class="muted">As of ${escapeHtml(new Date(now).toISOString())}; reloads every ${PAGE_REFRESH_SECONDS} s. JSON: <a href="/api/stacks">/api/stacks</a>, metrics: <a href="/metrics">/metrics</a>.</p>
</body>
</html>
`;
}

/** Every stack, one row each. */
export function renderIndex(stacks: readonly StackStatus[], now = Date.now()): string {
  const owners = stacks.some((s) => s.owner !== undefined);
  const head = [
    "Stack",
    ...(owners ? ["Owner"] : []),
    "Phase",
    "Mode",
    "Last pass",
    "Drifted",
    "Failures",
    "Next run",
    "Certificates expire",
  ];
  const rows = stacks.map((s) => {
    const cells = [
      `<a href="${escapeHtml(stackHref(s.name))}">${escapeHtml(s.name)}</a>`,
      ...(owners ? [escapeHtml(s.owner ?? "-")] : []),
      `${badge(s.phase)}${s.message ? `<div class="muted">${escapeHtml(firstLine(s.message, 90))}</div>` : ""}`,
      escapeHtml(s.mode),
      lastPassCell(s.lastPass, now),
      `${escapeHtml(driftNames(s.lastDrift))}${s.lastDrift ? ` <span class="muted">${escapeHtml(age(s.lastDrift.startedAt, now))}</span>` : ""}`,
      String(s.consecutiveFailures),
      escapeHtml(age(s.nextRunAt, now)),
      escapeHtml(firstExpiry(s, now)),
    ];
    return `<tr data-stack="${escapeHtml(s.name)}">${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`;
  });
  const counts = new Map<string, number>();
  for (const s of stacks) counts.set(s.phase, (counts.get(s.phase) ?? 0) + 1);
  const summary = [...counts].map(([phase, n]) => `${n} ${badge(phase)}`).join(" ");
  return page(
    `g8s: ${stacks.length} stacks`,
    `<h1>g8s: ${stacks.length} stack${stacks.length === 1 ? "" : "s"}</h1>
<p>${summary || "No stack files found."}</p>
<table>
<thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>`,
    now,
  );
}

/** One stack: where it stands, its certificates and its recent passes, newest first. */
export function renderStack(stack: StackStatus, passes: readonly PassRecord[], now = Date.now()): string {
  const facts: Array<[string, string]> = [
    ["Phase", badge(stack.phase)],
    ["Mode", escapeHtml(stack.mode)],
    ["Interval", `${stack.intervalSeconds} s`],
    ...(stack.owner !== undefined ? ([["Owner", escapeHtml(stack.owner)]] as Array<[string, string]>) : []),
    ["Message", escapeHtml(firstLine(stack.message, 400) || "-")],
    ["Failures in a row", String(stack.consecutiveFailures)],
    ["Last success", escapeHtml(age(stack.lastSuccessAt, now))],
    ["Next run", escapeHtml(age(stack.nextRunAt, now))],
    ["Last drift", `${escapeHtml(driftNames(stack.lastDrift))} ${escapeHtml(age(stack.lastDrift?.startedAt, now))}`],
    ["Stack file", escapeHtml(stack.file ?? "-")],
  ];
  const certs = (stack.certificates ?? []).map(
    (c) =>
      `<tr><td>${escapeHtml(c.key)}</td><td>${escapeHtml(c.notAfter || "-")} <span class="muted">${escapeHtml(age(c.notAfter || undefined, now))}</span></td><td>${escapeHtml(c.renewAt === "" ? "not renewed by g8s" : age(c.renewAt, now))}</td></tr>`,
  );
  const history = [...passes].sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt));
  const rows = history.map(
    (p) =>
      `<tr><td>${escapeHtml(p.startedAt)}</td><td>${badge(p.outcome)}${p.direct ? " at once" : ""}</td><td>${escapeHtml(seconds(p.durationMs))}</td><td>${escapeHtml(seconds(p.detectMs))}</td><td>${escapeHtml(seconds(p.correctMs))}</td><td>${escapeHtml(driftNames(p))}${p.rolled ? `<div class="muted">restarted on the new template ${escapeHtml(rollSummary(p.rolled))}</div>` : ""}${p.upgrade ? `<div class="muted">upgraded ${escapeHtml(upgradeSummary(p.upgrade))}</div>` : ""}</td><td>${escapeHtml(firstLine(p.error))}</td></tr>`,
  );
  return page(
    `g8s: ${stack.name}`,
    `<p><a href="/">← all stacks</a></p>
<h1>${escapeHtml(stack.name)}</h1>
<dl>${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl>
<h2>Certificates</h2>
${certs.length > 0 ? `<table><thead><tr><th>Certificate</th><th>Expires</th><th>Renewal</th></tr></thead><tbody>${certs.join("")}</tbody></table>` : '<p class="muted">None known.</p>'}
<h2>Recent passes</h2>
${rows.length > 0 ? `<table id="passes"><thead><tr><th>Started</th><th>Outcome</th><th>Took</th><th>Detect</th><th>Correct</th><th>Drifted</th><th>Error</th></tr></thead><tbody>${rows.join("\n")}</tbody></table>` : '<p class="muted">No pass yet.</p>'}`,
    now,
  );
}
