import * as assert from "node:assert/strict";
import { escapeHtml, renderIndex, renderStack, stackHref } from "../../automation/reconciler/page";
import { PassHistory } from "../../automation/reconciler/history";
import type { PassRecord, StackStatus } from "../../automation/reconciler/types";

const NOW = Date.parse("2026-12-02T12:00:00.000Z");

const pass = (startedAt: string, extra: Partial<PassRecord> = {}): PassRecord => ({
  stack: "s",
  outcome: "in-sync",
  mode: "correct",
  startedAt,
  durationMs: 2500,
  drift: [],
  ...extra,
});

const status = (name: string, extra: Partial<StackStatus> = {}): StackStatus => ({
  name,
  phase: "in-sync",
  mode: "correct",
  intervalSeconds: 300,
  consecutiveFailures: 0,
  ...extra,
});

describe("the status page", () => {
  it("escapes every value a stack file, an engine or a person can put in a status", () => {
    const failed = pass("2026-12-02T11:59:00.000Z", {
      outcome: "failed",
      error: "<b>bold</b>",
      drift: [{ urn: "u", type: "t", name: "<i>x</i>", op: "update", keys: [] }],
    });
    const hostile = status("evil", {
      phase: "failed" as StackStatus["phase"],
      message: `<script>alert("x")</script> & 'quotes'`,
      owner: `r1"><img src=x onerror=alert(1)>`,
      lastPass: failed,
      lastDrift: failed,
    });
    for (const html of [renderIndex([hostile], NOW), renderStack(hostile, [failed], NOW)]) {
      assert.doesNotMatch(html, /<script>|<img|<b>bold|<i>x/);
      assert.match(html, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt; &amp; &#39;quotes&#39;|&lt;b&gt;bold/);
    }
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });

  it("lists every stack with phase, mode, last pass, drift names, failures, next run and certificate expiry", () => {
    const html = renderIndex(
      [
        status("a", {
          lastPass: pass("2026-12-02T11:58:00.000Z", { outcome: "corrected", direct: true }),
          lastDrift: pass("2026-12-02T11:58:00.000Z", {
            outcome: "corrected",
            drift: [{ urn: "u", type: "t", name: "master", op: "update", keys: ["spec"] }],
          }),
          lastDriftAt: "2026-12-02T11:58:00.000Z",
          nextRunAt: "2026-12-02T12:05:00.000Z",
          certificates: [
            { key: "apiserver", notBefore: "", notAfter: "2026-12-03T00:00:00.000Z", renewAt: "", urns: [] },
          ],
        }),
        status("b", { phase: "stalled", consecutiveFailures: 5, message: "stalled after 5 consecutive failures" }),
      ],
      NOW,
    );
    assert.match(html, /<title>g8s: 2 stacks<\/title>/);
    assert.match(html, /<meta http-equiv="refresh" content="10">/);
    assert.match(html, /<tr data-stack="a"><td><a href="\/stacks\/a">a<\/a><\/td>/);
    assert.match(html, /badge ok">corrected<\/span> at once <span class="muted">2m ago, 2.5 s/);
    assert.match(html, /update master <span class="muted">2m ago/);
    assert.match(html, /in 5m/);
    assert.match(html, /in 12h \(apiserver\)/);
    assert.match(html, /badge bad">stalled<\/span><div class="muted">stalled after 5 consecutive failures/);
    assert.doesNotMatch(html, /<th>Owner<\/th>/, "no owner column without replicas");
    assert.match(renderIndex([status("a", { owner: "r2" })], NOW), /<th>Owner<\/th>.*<td>r2<\/td>/s);
  });

  it("links stack names safely", () => {
    assert.equal(stackHref("a.b_c-1"), "/stacks/a.b_c-1");
  });

  it("shows a stack's recent passes newest first, with what drifted and the first line of an error", () => {
    const passes = [
      pass("2026-12-02T11:50:00.000Z"),
      pass("2026-12-02T11:55:00.000Z", { outcome: "failed", error: "detect: boom\nstack trace", detectMs: 1200 }),
    ];
    const html = renderStack(status("s", { lastPass: passes[1] }), passes, NOW);
    const rows = [...html.matchAll(/<tr><td>(2026-[^<]+)<\/td>/g)].map((m) => m[1]);
    assert.deepEqual(rows, ["2026-12-02T11:55:00.000Z", "2026-12-02T11:50:00.000Z"]);
    assert.match(html, /detect: boom<\/td>/);
    assert.doesNotMatch(html, /stack trace/);
    assert.match(html, /<a href="\/">← all stacks<\/a>/);
  });

  it("shows the rolling upgrade a pass made", () => {
    const upgrade = { from: "v1.34.12", to: "v1.35.4", nodes: [{ node: "master-0", seconds: 110.6 }], seconds: 120 };
    const html = renderStack(status("s"), [pass("2026-12-02T11:50:00.000Z", { upgrade })], NOW);
    assert.match(html, /upgraded v1\.34\.12 → v1\.35\.4 in 120\.0 s \(master-0 110\.6 s\)/);
    const rolled = {
      nodes: [
        { node: "pool-a-0", seconds: 48.5 },
        { node: "pool-a-1", seconds: 50 },
      ],
      seconds: 99,
    };
    const restarted = renderStack(status("s"), [pass("2026-12-02T11:50:00.000Z", { rolled })], NOW);
    assert.match(restarted, /restarted on the new template 2 nodes in 99\.0 s \(pool-a-0 48\.5 s, pool-a-1 50\.0 s\)/);
  });

  it("keeps the last passes of each stack, without the engine's output", () => {
    const history = new PassHistory(3);
    for (let i = 0; i < 5; i++) history.record(pass(`2026-12-02T11:5${i}:00.000Z`, { output: "x".repeat(1000) }));
    assert.deepEqual(
      history.of("s").map((p) => [p.startedAt.slice(11, 16), p.output]),
      [
        ["11:52", undefined],
        ["11:53", undefined],
        ["11:54", undefined],
      ],
    );
    history.forget("s");
    assert.deepEqual(history.of("s"), []);
  });
});
