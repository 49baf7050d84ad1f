/**
 * HTTPS to the host cluster's servers from Node (no kubectl): health endpoints and the few
 * API calls `up` and `status` make, with the host dir's CA and a client certificate.
 */
import * as https from "node:https";

export interface TlsFiles {
  /** PEM of the CA that signed the server's certificate. */
  readonly ca: string;
  /** Client certificate and key (PEM); omitted for an anonymous request. */
  readonly cert?: string;
  readonly key?: string;
  /** A bearer token (a ServiceAccount's), sent as `Authorization: Bearer`. */
  readonly token?: string;
}

export interface HttpResponse {
  readonly status: number;
  readonly body: string;
}

/** One request; rejects on a network error or after `timeoutMs`. Never follows redirects. */
export function httpsRequest(
  url: string,
  tls: TlsFiles,
  options: { method?: string; body?: string; contentType?: string; timeoutMs?: number; agent?: https.Agent } = {},
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const headers = authHeaders(tls);
    if (options.body !== undefined) {
      headers["Content-Type"] = options.contentType ?? "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(options.body));
    }
    const req = https.request(
      url,
      {
        method: options.method ?? "GET",
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        headers,
        agent: options.agent ?? false,
        timeout: options.timeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timed out after ${options.timeoutMs ?? 5000} ms`)));
    req.on("error", reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

function authHeaders(tls: TlsFiles): Record<string, string> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (tls.token !== undefined) headers.Authorization = `Bearer ${tls.token}`;
  return headers;
}

/**
 * A long GET whose body is newline-delimited JSON (a watch): `onLine` gets each line as it
 * arrives. Resolves when the server ends the stream (a watch's timeout), rejects on a status
 * other than 200 (with the body's first 300 characters), a network error, no byte for
 * `idleTimeoutMs`, or `signal` aborting.
 */
export function httpsLines(
  url: string,
  tls: TlsFiles,
  onLine: (line: string) => void,
  options: { idleTimeoutMs: number; signal: AbortSignal },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: "GET",
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      headers: authHeaders(tls),
      agent: false,
      timeout: options.idleTimeoutMs,
      signal: options.signal,
    });
    req.on("response", (res) => {
      let pending = "";
      res.setEncoding("utf8");
      if (res.statusCode !== 200) {
        res.on("data", (c: string) => (pending += c));
        res.on("end", () =>
          reject(new ApiError(res.statusCode ?? 0, `HTTP ${res.statusCode}: ${pending.slice(0, 300)}`)),
        );
        return;
      }
      res.on("data", (chunk: string) => {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line.trim() !== "") onLine(line);
        }
      });
      res.on("end", () => resolve());
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no data for ${options.idleTimeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** An error response of the API: its status and the Status message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The API server as the admin (or any client certificate) sees it: JSON in, JSON out. */
export class KubeApi {
  private readonly agent = new https.Agent({ keepAlive: true, maxSockets: 4 });

  constructor(
    readonly server: string,
    private readonly tls: TlsFiles,
  ) {}

  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<{ status: number; json: T | undefined; text: string }> {
    const res = await httpsRequest(`${this.server}${path}`, this.tls, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      contentType,
      agent: this.agent,
    });
    let json: T | undefined;
    try {
      json = JSON.parse(res.body) as T;
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text: res.body };
  }

  /** GET that must succeed; an ApiError with the server's message otherwise. */
  async get<T>(path: string): Promise<T> {
    const res = await this.request<T>("GET", path);
    if (res.status !== 200) throw apiError("GET", path, res);
    return res.json as T;
  }

  /** Server-side apply as field manager `g8s-host`, forcing conflicts: g8s owns these objects. */
  async apply(path: string, object: unknown): Promise<void> {
    const res = await this.request(
      "PATCH",
      `${path}?fieldManager=g8s-host&force=true`,
      object,
      "application/apply-patch+yaml",
    );
    if (res.status !== 200 && res.status !== 201) throw apiError("PATCH", path, res);
  }

  /** POST that may find the object there already (409 is fine). */
  async create(path: string, object: unknown): Promise<"created" | "exists"> {
    const res = await this.request("POST", path, object);
    if (res.status === 409) return "exists";
    if (res.status !== 201 && res.status !== 200) throw apiError("POST", path, res);
    return "created";
  }

  async mergePatch(path: string, patch: unknown): Promise<void> {
    const res = await this.request("PATCH", path, patch, "application/merge-patch+json");
    if (res.status !== 200) throw apiError("PATCH", path, res);
  }

  async delete(path: string): Promise<void> {
    const res = await this.request("DELETE", path);
    if (res.status !== 200 && res.status !== 202 && res.status !== 404) throw apiError("DELETE", path, res);
  }

  /** /readyz: true when the server says ok. */
  async ready(): Promise<boolean> {
    try {
      const res = await httpsRequest(`${this.server}/readyz`, this.tls, { agent: this.agent, timeoutMs: 3000 });
      return res.status === 200 && res.body.trim() === "ok";
    } catch {
      return false;
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

function apiError(method: string, path: string, res: { status: number; json: unknown; text: string }): ApiError {
  const message = (res.json as { message?: string } | undefined)?.message ?? res.text.slice(0, 200);
  return new ApiError(res.status, `${method} ${path}: ${res.status} ${message}`);
}
