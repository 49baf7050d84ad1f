/**
 * The alert rules shipped in monitoring/: valid for Prometheus (`promtool check rules`), firing
 * when and only when their tests say (`promtool test rules`, Debian's prometheus package), and
 * written against metrics the reconciler really exports.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { Registry } from "prom-client";
import { parse } from "yaml";
import { ReconcilerMetrics } from "../../automation/reconciler/metrics";

const DIR = path.join(__dirname, "..", "..", "monitoring");

function promtool(...args: string[]): string {
  const r = spawnSync("promtool", args, { cwd: DIR, encoding: "utf8", timeout: 60_000 });
  if (r.error) throw new Error(`promtool: ${r.error.message} (install Debian's prometheus package)`);
  assert.equal(r.status, 0, `promtool ${args.join(" ")}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

describe("monitoring/alerts.yaml", () => {
  it("is a valid rule file", () => {
    assert.match(promtool("check", "rules", "alerts.yaml"), /SUCCESS: 4 rules found/);
  });

  it("fires past 75 % of a certificate's life, on failing and on overdue renewal, on a master without a fresh etcd snapshot, and stays quiet when all works", () => {
    assert.match(promtool("test", "rules", "alerts.test.yaml"), /SUCCESS/);
  });

  it("uses only metrics the reconciler exports", async () => {
    const rules = parse(readFileSync(path.join(DIR, "alerts.yaml"), "utf8")) as {
      groups: Array<{ rules: Array<{ expr: string }> }>;
    };
    const used = new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => r.expr.match(/g8s_[a-z_]+/g) ?? [])));
    const registry = new Registry();
    new ReconcilerMetrics(registry);
    const exported = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
    assert.ok(used.size >= 4, [...used].join(", "));
    for (const name of used) assert.ok(exported.has(name), `${name} is not a reconciler metric`);
  });
});
