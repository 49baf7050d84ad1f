import * as assert from "node:assert/strict";
import * as net from "node:net";
import { Registry } from "prom-client";
import { createLogger } from "../../automation/reconciler/logger";
import { ReconcilerMetrics } from "../../automation/reconciler/metrics";
import { createApiServer, type ApiServer, type ReconcilerApi } from "../../automation/reconciler/server";
import type { PassRecord, StackStatus } from "../../automation/reconciler/types";

const TOKEN = "s3cr3t-api-token-0123456789";
const JSON_TYPE = "application/json; charset=utf-8";

const drifted: PassRecord = {
  stack: "eu1prod",
  outcome: "corrected",
  mode: "correct",
  startedAt: "2026-01-01T00:00:00.000Z",
  durationMs: 4200,
  drift: [
    {
      urn: "urn:pulumi:eu1prod::g8s::aws:ec2/vpc:Vpc::eu1prod-vpc",
      type: "aws:ec2/vpc:Vpc",
      name: "eu1prod-vpc",
      op: "update",
      keys: ["tags"],
    },
  ],
};

function status(name: string, phase: StackStatus["phase"], extra: Partial<StackStatus> = {}): StackStatus {
  return { name, phase, mode: "correct", intervalSeconds: 300, consecutiveFailures: 0, ...extra };
}

/** A ReconcilerApi over a map, recording run requests; `failWith` makes every call throw. */
class FakeApi implements ReconcilerApi {
  ready = false;
  failWith?: Error;
  refuse?: "not-runnable" | "shutting-down";
  readonly runs: string[] = [];
  readonly events: Array<[string, string]> = [];
  takesEvents = true;
  readonly stacks = new Map<string, StackStatus>(
    [
      status("eu1prod", "in-sync", { lastDriftAt: drifted.startedAt, lastDrift: drifted, lastPass: drifted }),
      status("edge7", "stalled", { consecutiveFailures: 5 }),
      status("a-lab", "off", { mode: "off" }),
    ].map((s) => [s.name, s]),
  );

  isReady(): boolean {
    this.check();
    return this.ready;
  }
  list(): StackStatus[] {
    this.check();
    return [...this.stacks.values()];
  }
  get(name: string): StackStatus | undefined {
    this.check();
    return this.stacks.get(name);
  }
  requestRun(name: string): ReturnType<ReconcilerApi["requestRun"]> {
    this.check();
    const current = this.stacks.get(name);
    if (!current) return { accepted: false, reason: "unknown-stack" };
    if (this.refuse) return { accepted: false, reason: this.refuse, status: current };
    this.runs.push(name);
    return { accepted: true, status: { ...current, phase: "queued" } };
  }
  noticeEvent(name: string, source: string): boolean {
    this.check();
    if (!this.takesEvents) return false;
    this.events.push([name, source]);
    return true;
  }
  private check(): void {
    if (this.failWith) throw this.failWith;
  }
}

/** Log lines in memory; `next(predicate)` resolves on the first line (past or future) that matches. */
class LogSink {
  readonly lines: Record<string, unknown>[] = [];
  private waiters: {
    predicate: (line: Record<string, unknown>) => boolean;
    resolve: (line: Record<string, unknown>) => void;
  }[] = [];
  write(text: string): void {
    const line = JSON.parse(text) as Record<string, unknown>;
    this.lines.push(line);
    this.waiters = this.waiters.filter((w) => !(w.predicate(line) && (w.resolve(line), true)));
  }
  next(predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    const found = this.lines.find(predicate);
    return found ? Promise.resolve(found) : new Promise((resolve) => this.waiters.push({ predicate, resolve }));
  }
}

describe("reconciler HTTP API", () => {
  const api = new FakeApi();
  const sink = new LogSink();
  const registry = new Registry();
  let server: ApiServer;
  let base: string;
  const auth = { authorization: `Bearer ${TOKEN}` };

  before(async () => {
    new ReconcilerMetrics(registry).setInFlight(1);
    server = createApiServer({
      api,
      registry,
      token: TOKEN,
      logger: createLogger({ level: "debug", destination: sink }),
    });
    const { port } = await server.listen(0);
    base = `http://127.0.0.1:${port}`;
  });
  after(() => server.close());
  beforeEach(() => {
    api.ready = true;
    api.failWith = undefined;
    api.refuse = undefined;
    api.runs.length = 0;
    api.events.length = 0;
    api.takesEvents = true;
  });

  async function call(path: string, init?: RequestInit): Promise<{ status: number; headers: Headers; body: unknown }> {
    const res = await fetch(base + path, init);
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      body: text && res.headers.get("content-type") === JSON_TYPE ? JSON.parse(text) : text,
    };
  }

  describe("listen and close", () => {
    it("listens on an ephemeral port of 127.0.0.1 and returns the same port when asked again", async () => {
      const { port } = await server.listen(0);
      assert.ok(port > 0);
      assert.equal(base, `http://127.0.0.1:${port}`);
    });

    it("rejects a port already in use", async () => {
      const other = createApiServer({ api, registry, logger: createLogger({ destination: sink }) });
      await assert.rejects(other.listen(Number(new URL(base).port)), { code: "EADDRINUSE" });
      await other.close();
    });

    it("closes a connection with a request in progress, is idempotent, and cannot listen again", async () => {
      const other = createApiServer({ api, registry, logger: createLogger({ destination: sink }) });
      const { port } = await other.listen(0);
      const socket = net.connect(port, "127.0.0.1");
      await new Promise((resolve) => socket.once("connect", resolve));
      const closed = new Promise((resolve) => socket.once("close", resolve));
      socket.on("error", () => undefined); // the server resets it: expected
      // Half a request: without closing every connection, close() would wait for the headers timeout.
      socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
      await Promise.all([other.close(), other.close()]);
      await closed;
      await other.close();
      await assert.rejects(other.listen(0), /closed/);
    });
  });

  describe("health, readiness and metrics", () => {
    it("GET /healthz answers 200 ok as JSON", async () => {
      const res = await call("/healthz");
      assert.deepEqual([res.status, res.headers.get("content-type"), res.body], [200, JSON_TYPE, { status: "ok" }]);
    });

    it("GET /readyz answers 503 until the first discovery, then 200", async () => {
      api.ready = false;
      assert.deepEqual(await call("/readyz").then((r) => [r.status, r.body]), [503, { status: "not ready" }]);
      api.ready = true;
      assert.deepEqual(await call("/readyz").then((r) => [r.status, r.body]), [200, { status: "ready" }]);
    });

    it("GET /metrics answers the registry's text with its content type", async () => {
      const res = await call("/metrics");
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), registry.contentType);
      assert.match(String(res.body), /^g8s_reconcile_in_flight 1$/m);
    });

    it("HEAD is GET without a body", async () => {
      const res = await fetch(`${base}/healthz`, { method: "HEAD" });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-length"), String(JSON.stringify({ status: "ok" }).length));
      assert.equal(await res.text(), "");
    });
  });

  describe("stack status", () => {
    it("GET /api/stacks lists every stack sorted by name", async () => {
      const res = await call("/api/stacks");
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), JSON_TYPE);
      const { stacks } = res.body as { stacks: StackStatus[] };
      assert.deepEqual(
        stacks.map((s) => s.name),
        ["a-lab", "edge7", "eu1prod"],
      );
      assert.deepEqual(stacks[2], api.stacks.get("eu1prod"));
    });

    it("GET /api/stacks/:name answers the status with the last drift's details", async () => {
      const res = await call("/api/stacks/eu1prod");
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, api.stacks.get("eu1prod"));
      assert.deepEqual((res.body as StackStatus).lastDrift?.drift[0].keys, ["tags"]);
    });

    it("decodes a percent-encoded name", async () => {
      assert.equal((await call("/api/stacks/eu1%70rod")).status, 200);
    });

    it("GET /api/stacks/:name answers 404 for an unknown stack", async () => {
      const res = await call("/api/stacks/nope");
      assert.deepEqual(
        [res.status, res.headers.get("content-type"), res.body],
        [404, JSON_TYPE, { error: 'unknown stack "nope"' }],
      );
    });

    for (const [what, path] of [
      ["a space", "/api/stacks/eu1%20prod"],
      ["an encoded slash", "/api/stacks/a%2Fb"],
      ["a leading dot", "/api/stacks/.hidden"],
      ["malformed percent-encoding", "/api/stacks/%E0%A4%A"],
      ["an empty name", "/api/stacks/"],
      ["101 characters", `/api/stacks/${"a".repeat(101)}`],
    ]) {
      it(`answers 400 for a name with ${what}`, async () => {
        const res = await call(path);
        assert.equal(res.status, 400);
        assert.match((res.body as { error: string }).error, /^invalid stack name/);
      });
    }
  });

  describe("POST /api/stacks/:name/reconcile", () => {
    const post = (name: string, init: RequestInit = {}) =>
      call(`/api/stacks/${name}/reconcile`, { method: "POST", ...init });

    it("queues a run and answers 202 with the stack", async () => {
      const res = await post("edge7", { headers: auth });
      assert.equal(res.status, 202);
      assert.deepEqual(res.body, {
        accepted: true,
        stack: "edge7",
        status: { ...api.stacks.get("edge7"), phase: "queued" },
      });
      assert.deepEqual(api.runs, ["edge7"]);
    });

    it("accepts a lower-case scheme and a small body", async () => {
      const res = await post("edge7", { headers: { authorization: `bearer ${TOKEN}` }, body: "{}" });
      assert.equal(res.status, 202);
    });

    it("answers 401 with WWW-Authenticate without a token", async () => {
      const res = await post("edge7");
      assert.deepEqual(
        [res.status, res.headers.get("www-authenticate"), res.body],
        [401, "Bearer", { error: "missing or invalid bearer token" }],
      );
      assert.deepEqual(api.runs, []);
    });

    for (const [what, header] of [
      ["a wrong token", `Bearer ${TOKEN.slice(0, -1)}x`],
      ["a shorter token", `Bearer ${TOKEN.slice(0, 4)}`],
      ["another scheme", `Basic ${TOKEN}`],
      ["the bare token", TOKEN],
    ]) {
      it(`answers 401 with WWW-Authenticate for ${what}`, async () => {
        const res = await post("edge7", { headers: { authorization: header } });
        assert.deepEqual([res.status, res.headers.get("www-authenticate")], [401, "Bearer"]);
        assert.deepEqual(api.runs, []);
      });
    }

    it("answers 404 for an unknown stack", async () => {
      const res = await post("nope", { headers: auth });
      assert.deepEqual([res.status, res.body], [404, { error: 'unknown stack "nope"' }]);
    });

    it("answers 409 for a stack that cannot run now", async () => {
      api.refuse = "not-runnable";
      const res = await post("a-lab", { headers: auth });
      assert.deepEqual(
        [res.status, res.body],
        [409, { error: 'run of stack "a-lab" refused: stack is not runnable', reason: "not-runnable" }],
      );
    });

    it("answers 409 while shutting down", async () => {
      api.refuse = "shutting-down";
      const res = await post("edge7", { headers: auth });
      assert.deepEqual([res.status, (res.body as { reason: string }).reason], [409, "shutting-down"]);
    });

    it("answers 400 for a bad name", async () => {
      assert.equal((await post("-x", { headers: auth })).status, 400);
      assert.equal((await post("%ZZ", { headers: auth })).status, 400);
    });

    it("answers 413 for a declared body over 1 KiB", async () => {
      const res = await post("edge7", { headers: auth, body: "x".repeat(1025) });
      assert.deepEqual([res.status, res.body], [413, { error: "request body over 1024 bytes" }]);
      assert.deepEqual(api.runs, []);
    });

    it("answers 413 for a chunked body over 1 KiB", async () => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array(600));
          controller.enqueue(new Uint8Array(600));
          controller.close();
        },
      });
      const res = await post("edge7", { headers: auth, body, duplex: "half" } as RequestInit);
      assert.equal(res.status, 413);
      assert.deepEqual(api.runs, []);
    });

    it("answers 403 on a server started without a token (or with an empty one)", async () => {
      for (const token of [undefined, ""]) {
        const other = createApiServer({ api, registry, token, logger: createLogger({ destination: sink }) });
        const { port } = await other.listen(0);
        try {
          const res = await fetch(`http://127.0.0.1:${port}/api/stacks/edge7/reconcile`, {
            method: "POST",
            headers: auth,
          });
          assert.deepEqual([res.status, await res.json()], [403, { error: "no API token configured" }]);
        } finally {
          await other.close();
        }
      }
      assert.deepEqual(api.runs, []);
    });
  });

  describe("POST /api/stacks/:name/events", () => {
    const post = (name: string, init: RequestInit = {}) =>
      call(`/api/stacks/${name}/events`, { method: "POST", ...init });

    it("takes an event without a body as from 'api' and answers 202", async () => {
      const res = await post("eu1prod", { headers: auth });
      assert.deepEqual([res.status, res.body], [202, { accepted: true, stack: "eu1prod", source: "api" }]);
      assert.deepEqual(api.events, [["eu1prod", "api"]]);
    });

    it("names the event's source from the body", async () => {
      const res = await post("eu1prod", { headers: auth, body: '{"source":"eventbridge/ec2"}' });
      assert.equal(res.status, 202);
      assert.deepEqual(api.events, [["eu1prod", "eventbridge/ec2"]]);
    });

    for (const [what, body, error] of [
      ["a body that is not JSON", "source=x", 'body: must be JSON such as {"source": "eventbridge"}'],
      ["a source that is no name", '{"source":"a b"}', "body.source: must match"],
      ["a source that is no string", '{"source":7}', "body.source: must match"],
    ]) {
      it(`answers 400 for ${what}, and takes no event`, async () => {
        const res = await post("eu1prod", { headers: auth, body });
        assert.equal(res.status, 400);
        assert.ok((res.body as { error: string }).error.startsWith(error), JSON.stringify(res.body));
        assert.deepEqual(api.events, []);
      });
    }

    it("needs the token", async () => {
      assert.equal((await post("eu1prod")).status, 401);
      assert.deepEqual(api.events, []);
    });

    it("answers 404 for an unknown stack", async () => {
      const res = await post("nope", { headers: auth });
      assert.deepEqual([res.status, res.body], [404, { error: 'unknown stack "nope"' }]);
    });

    it("answers 409 where events are not taken", async () => {
      api.takesEvents = false;
      const res = await post("eu1prod", { headers: auth });
      assert.deepEqual([res.status, res.body], [409, { error: "this reconciler takes no events (not a daemon)" }]);
    });
  });

  describe("the status page", () => {
    it("serves every stack at / as HTML without a token, with a strict content policy", async () => {
      const res = await call("/");
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
      assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'none'; style-src 'unsafe-inline'/);
      const html = String(res.body);
      for (const name of ["eu1prod", "edge7", "a-lab"]) assert.match(html, new RegExp(`href="/stacks/${name}"`));
      assert.match(html, /update eu1prod-vpc/);
      assert.doesNotMatch(html, /<script/i);
    });

    it("serves a stack's page with its recent passes, and 404 for a stack it does not know", async () => {
      const res = await call("/stacks/eu1prod");
      assert.equal(res.status, 200);
      assert.match(String(res.body), /<h1>eu1prod<\/h1>/);
      assert.match(String(res.body), /2026-01-01T00:00:00.000Z/);
      const missing = await call("/stacks/nope");
      assert.deepEqual([missing.status, missing.headers.get("content-type")], [404, "text/html; charset=utf-8"]);
    });
  });

  describe("routing errors", () => {
    for (const path of [
      "/nope",
      "/stacks",
      "/healthz/",
      "/api",
      "/api/stacks/eu1prod/nope",
      "/api/stacks/eu1prod/reconcile/x",
    ]) {
      it(`answers 404 JSON for ${path}`, async () => {
        const res = await call(path);
        assert.deepEqual(
          [res.status, res.headers.get("content-type"), res.body],
          [404, JSON_TYPE, { error: "not found" }],
        );
      });
    }

    for (const [method, path, allow] of [
      ["POST", "/healthz", "GET, HEAD"],
      ["DELETE", "/api/stacks/eu1prod", "GET, HEAD"],
      ["PUT", "/metrics", "GET, HEAD"],
      ["GET", "/api/stacks/eu1prod/reconcile", "POST"],
      ["HEAD", "/api/stacks/eu1prod/reconcile", "POST"],
    ]) {
      it(`answers 405 with Allow: ${allow} for ${method} ${path}`, async () => {
        const res = await call(path, { method, headers: auth });
        assert.deepEqual([res.status, res.headers.get("allow")], [405, allow]);
        assert.deepEqual(api.runs, []);
      });
    }
  });

  describe("failures and logging", () => {
    it("answers 500 with a generic message when the api throws, and logs the error redacted", async () => {
      api.failWith = new Error("engine said: Authorization: Bearer leaked-engine-token");
      for (const path of ["/readyz", "/api/stacks", "/api/stacks/eu1prod"]) {
        const res = await call(path);
        assert.deepEqual(
          [res.status, res.headers.get("content-type"), res.body],
          [500, JSON_TYPE, { error: "internal error" }],
        );
      }
      const res = await call("/api/stacks/edge7/reconcile", { method: "POST", headers: auth });
      assert.equal(res.status, 500);
      const logged = await sink.next(
        (l) => l.msg === "http handler failed" && l.path === "/api/stacks/edge7/reconcile",
      );
      assert.equal(logged.level, "error");
      assert.match(String(logged.error), /^Error: engine said: Authorization: Bearer \[redacted\]\n/);
      // The server is still serving.
      api.failWith = undefined;
      assert.equal((await call("/healthz")).status, 200);
    });

    it("answers 500 when the registry cannot render", async () => {
      const broken = new Registry();
      broken.registerMetric({
        name: "broken",
        get: () => Promise.reject(new Error("collect failed")),
      } as unknown as Parameters<Registry["registerMetric"]>[0]);
      const other = createApiServer({ api, registry: broken, logger: createLogger({ destination: sink }) });
      const { port } = await other.listen(0);
      try {
        assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 500);
      } finally {
        await other.close();
      }
    });

    it("logs each request at debug with method, path, status and duration, never the token", async () => {
      await call("/api/stacks/edge7/reconcile?verbose=1", { method: "POST", headers: auth });
      const line = await sink.next((l) => l.msg === "http request" && l.path === "/api/stacks/edge7/reconcile");
      assert.deepEqual(
        { level: line.level, method: line.method, status: line.status, durationType: typeof line.durationMs },
        { level: "debug", method: "POST", status: 202, durationType: "number" },
      );
      assert.ok(!JSON.stringify(sink.lines).includes(TOKEN));
      assert.ok(!JSON.stringify(sink.lines).includes("leaked-engine-token"));
    });
  });
});
