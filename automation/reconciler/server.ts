/**
 * The reconciler's HTTP API on node:http: health, readiness, Prometheus metrics, stack status,
 * and one state-changing route (request a run) behind a bearer token.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type pino from "pino";
import type { Registry } from "prom-client";
import { redactText } from "./logger";
import { renderIndex, renderStack } from "./page";
import type { PassRecord, StackStatus } from "./types";

export const DEFAULT_HOST = "127.0.0.1";
/** A run request needs no body, an event a small one; a bigger one is refused with 413. */
export const MAX_BODY_BYTES = 1024;
/** An event's `source`, as logged: a short name such as `eventbridge` or `ci/deploy-42`. */
export const EVENT_SOURCE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/;
export const STACK_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export interface ReconcilerApi {
  /** True after the first discovery finished. */
  isReady(): boolean;
  list(): StackStatus[];
  get(name: string): StackStatus | undefined;
  /** Queues an immediate run (un-stalls a stalled stack). */
  requestRun(name: string): {
    accepted: boolean;
    reason?: "unknown-stack" | "not-runnable" | "shutting-down";
    status?: StackStatus;
  };
  /**
   * A change outside g8s that a pass should look at (an outside event source: EventBridge
   * forwarder, a CI job): coalesced with others, then a pass ahead of routine checks. False: not
   * known (or events are not taken: not a daemon).
   */
  noticeEvent(name: string, source: string): boolean;
  /** The stack's recent passes this process recorded (the status page's stack view), oldest first. */
  passes?(name: string): readonly PassRecord[];
}

export interface ApiServerDeps {
  readonly api: ReconcilerApi;
  readonly registry: Registry;
  /** Bearer token for state-changing routes; without one (or empty) they answer 403. */
  readonly token?: string;
  readonly logger: pino.Logger;
}

export interface ApiServer {
  /**
   * Starts listening (port 0: an ephemeral one) and resolves with the actual port. A second call
   * returns the first's result; after `close()` it rejects.
   */
  listen(port: number, host?: string): Promise<{ port: number }>;
  /** Stops listening and closes every connection, keep-alive ones included. Idempotent. */
  close(): Promise<void>;
}

interface Reply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** A JSON body, or `text` with its own content type. */
  readonly json?: unknown;
  readonly text?: string;
}

interface RouteParams {
  /** The decoded, validated stack name for routes with `:name`. */
  readonly name: string;
  /** The body of a mutating route (size-checked), else empty. */
  readonly body: string;
}

interface Route {
  /** Path segments; `:name` is a stack name. */
  readonly path: readonly string[];
  readonly method: "GET" | "POST";
  /** Changes state: needs the token, and a body is read (and size-checked). */
  readonly mutating?: boolean;
  readonly handle: (params: RouteParams) => Reply | Promise<Reply>;
}

const JSON_TYPE = "application/json; charset=utf-8";
/**
 * The status page's headers: HTML with its own inline style and nothing else (no script, no
 * frame, no outside request), not sniffed, no referrer to follow a link.
 */
const HTML_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/** A stack's passes for its page: what this process recorded, and the status's last pass and drift. */
function passesFor(status: StackStatus, recorded: readonly PassRecord[]): PassRecord[] {
  const byStart = new Map<string, PassRecord>();
  for (const p of [...recorded, status.lastDrift, status.lastPass]) if (p) byStart.set(p.startedAt, p);
  return [...byStart.values()];
}

const errorReply = (status: number, message: string, headers?: Record<string, string>): Reply => ({
  status,
  headers,
  json: { error: message },
});

export function createApiServer(deps: ApiServerDeps): ApiServer {
  const { api, registry, logger } = deps;
  // Hashing both sides gives timingSafeEqual equal-length inputs and hides the token's length.
  const tokenHash = deps.token ? sha256(deps.token) : undefined;

  const byName = (a: StackStatus, b: StackStatus) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const routes: readonly Route[] = [
    // The status page: read-only, no token, nothing secret (automation/reconciler/page.ts).
    {
      path: [""],
      method: "GET",
      handle: () => ({ status: 200, headers: HTML_HEADERS, text: renderIndex([...api.list()].sort(byName)) }),
    },
    {
      path: ["stacks", ":name"],
      method: "GET",
      handle: ({ name }) => {
        const status = api.get(name);
        if (!status)
          return {
            status: 404,
            headers: HTML_HEADERS,
            text: `<!doctype html><title>not found</title><p>No stack of that name. <a href="/">All stacks</a></p>`,
          };
        return {
          status: 200,
          headers: HTML_HEADERS,
          text: renderStack(status, passesFor(status, api.passes?.(name) ?? [])),
        };
      },
    },
    { path: ["healthz"], method: "GET", handle: () => ({ status: 200, json: { status: "ok" } }) },
    {
      path: ["readyz"],
      method: "GET",
      handle: () =>
        api.isReady() ? { status: 200, json: { status: "ready" } } : { status: 503, json: { status: "not ready" } },
    },
    {
      path: ["metrics"],
      method: "GET",
      handle: async () => ({
        status: 200,
        headers: { "content-type": registry.contentType },
        text: await registry.metrics(),
      }),
    },
    {
      path: ["api", "stacks"],
      method: "GET",
      // Code-unit order, not localeCompare: the same on every host.
      handle: () => ({
        status: 200,
        json: { stacks: [...api.list()].sort(byName) },
      }),
    },
    {
      path: ["api", "stacks", ":name"],
      method: "GET",
      handle: ({ name }) => {
        const status = api.get(name);
        return status ? { status: 200, json: status } : errorReply(404, `unknown stack "${name}"`);
      },
    },
    {
      path: ["api", "stacks", ":name", "reconcile"],
      method: "POST",
      mutating: true,
      handle: ({ name }) => {
        const result = api.requestRun(name);
        if (result.accepted) return { status: 202, json: { accepted: true, stack: name, status: result.status } };
        if (result.reason === "unknown-stack") return errorReply(404, `unknown stack "${name}"`);
        const why = result.reason === "shutting-down" ? "the reconciler is shutting down" : "stack is not runnable";
        return {
          status: 409,
          json: { error: `run of stack "${name}" refused: ${why}`, reason: result.reason ?? "not-runnable" },
        };
      },
    },
    {
      path: ["api", "stacks", ":name", "events"],
      method: "POST",
      mutating: true,
      handle: ({ name, body }) => {
        let source = "api";
        if (body.trim() !== "") {
          let parsed: unknown;
          try {
            parsed = JSON.parse(body);
          } catch {
            return errorReply(400, 'body: must be JSON such as {"source": "eventbridge"}');
          }
          const given = (parsed as { source?: unknown } | null)?.source;
          if (given !== undefined && (typeof given !== "string" || !EVENT_SOURCE_PATTERN.test(given)))
            return errorReply(400, `body.source: must match ${EVENT_SOURCE_PATTERN.source}`);
          if (typeof given === "string") source = given;
        }
        if (api.get(name) === undefined) return errorReply(404, `unknown stack "${name}"`);
        if (!api.noticeEvent(name, source)) return errorReply(409, "this reconciler takes no events (not a daemon)");
        return { status: 202, json: { accepted: true, stack: name, source } };
      },
    },
  ];

  /** Everything between the route table and a reply; throws only on a bug or a failing api. */
  async function dispatch(req: http.IncomingMessage): Promise<Reply> {
    // The query string is ignored; no route takes one.
    const segments = (req.url ?? "/").split("?", 1)[0].split("/").slice(1);
    const matching = routes.filter(
      (r) => r.path.length === segments.length && r.path.every((p, i) => p === ":name" || p === segments[i]),
    );
    if (matching.length === 0) return errorReply(404, "not found");
    // HEAD is GET without a body; node's ServerResponse drops the body of a HEAD reply itself.
    const method = req.method === "HEAD" ? "GET" : req.method;
    const route = matching.find((r) => r.method === method);
    if (!route) {
      const allow = matching.flatMap((r) => (r.method === "GET" ? ["GET", "HEAD"] : [r.method]));
      return errorReply(405, `method ${req.method} not allowed`, { allow: allow.join(", ") });
    }

    if (route.mutating) {
      if (!tokenHash) return errorReply(403, "no API token configured");
      const presented = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? "")?.[1];
      if (!presented || !timingSafeEqual(sha256(presented), tokenHash)) {
        return errorReply(401, "missing or invalid bearer token", { "www-authenticate": "Bearer" });
      }
    }

    let name = "";
    const nameIndex = route.path.indexOf(":name");
    if (nameIndex >= 0) {
      try {
        name = decodeURIComponent(segments[nameIndex]);
      } catch {
        return errorReply(400, "invalid stack name: malformed percent-encoding");
      }
      if (!STACK_NAME_PATTERN.test(name)) {
        return errorReply(400, `invalid stack name: must match ${STACK_NAME_PATTERN.source}`);
      }
    }

    let body = "";
    if (route.mutating) {
      const read = await bodyWithinLimit(req, MAX_BODY_BYTES);
      if (read === undefined)
        return errorReply(413, `request body over ${MAX_BODY_BYTES} bytes`, { connection: "close" });
      body = read;
    }
    return route.handle({ name, body });
  }

  async function onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const path = (req.url ?? "/").split("?", 1)[0];
    // Method, path, status and time only: never headers (Authorization) or the query string.
    res.once("close", () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      logger.debug({ method: req.method, path, status: res.statusCode, durationMs }, "http request");
    });
    let response: Rendered;
    try {
      // Rendering is inside the try too: a status the api returns may not serialise.
      response = render(await dispatch(req));
    } catch (err) {
      logger.error({ method: req.method, path, error: describeError(err) }, "http handler failed");
      response = render(errorReply(500, "internal error"));
    }
    if (res.headersSent || res.destroyed) return; // the client went away
    res.writeHead(response.status, response.headers);
    res.end(response.body);
  }

  const server = http.createServer((req, res) => {
    onRequest(req, res).catch((err: unknown) => {
      // Only a failing logger or socket gets here; the process must not go down for it.
      res.destroy();
      logger.error({ error: describeError(err) }, "http request failed");
    });
  });
  let listening: Promise<{ port: number }> | undefined;
  let closing: Promise<void> | undefined;

  return {
    listen(port, host = DEFAULT_HOST) {
      if (closing) return Promise.reject(new Error("the API server is closed"));
      listening ??= new Promise<{ port: number }>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve({ port: (server.address() as AddressInfo).port });
        });
      }).catch((err: unknown) => {
        listening = undefined; // e.g. EADDRINUSE: a later call may try again
        throw err;
      });
      return listening;
    },
    close() {
      closing ??= (async () => {
        await listening?.catch(() => undefined);
        if (!server.listening) return;
        await new Promise<void>((resolve) => {
          // close() stops accepting and waits for open connections; closeAllConnections() ends
          // them, idle keep-alive sockets and requests in progress alike.
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}

interface Rendered {
  readonly status: number;
  readonly headers: http.OutgoingHttpHeaders;
  readonly body: string;
}

function render(reply: Reply): Rendered {
  const body = reply.text ?? JSON.stringify(reply.json);
  const headers = {
    "content-type": JSON_TYPE,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    ...reply.headers,
    "content-length": Buffer.byteLength(body),
  };
  return { status: reply.status, headers, body };
}

/**
 * Reads and discards the body, false once it is over `limit` bytes. A declared Content-Length
 * over the limit is refused unread; a chunked body is counted as it arrives.
 */
/** The body as text, or undefined when it is over `limit` bytes or the client gave up. */
function bodyWithinLimit(req: http.IncomingMessage, limit: number): Promise<string | undefined> {
  if (Number(req.headers["content-length"] ?? 0) > limit) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      chunks.push(chunk);
      if (size > limit) {
        req.off("data", onData);
        // Stop reading; the 413 goes out with `connection: close`, which ends the socket.
        req.pause();
        resolve(undefined);
      }
    };
    req.on("data", onData);
    req.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    // Closed or reset before the end: the client gave up. Not an error worth logging; the reply
    // goes nowhere and the run is not requested.
    req.once("close", () => resolve(undefined));
    req.once("error", () => resolve(undefined));
  });
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function describeError(err: unknown): string {
  return redactText(err instanceof Error ? (err.stack ?? err.message) : String(err));
}
