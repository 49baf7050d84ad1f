/**
 * The Kubernetes API the daemon coordinates through: from `KUBECONFIG` (its first file, the
 * current context) or, inside a pod, the ServiceAccount's token and CA. Client certificates,
 * bearer tokens and token files; no exec or auth-provider plugins (a controller does not log in
 * interactively). Every problem names the file and the field.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { KubeApi, type TlsFiles } from "../host/https";

/** Where a pod finds its ServiceAccount's credentials. */
export const IN_CLUSTER_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export class KubeconfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KubeconfigError";
  }
}

export interface KubeTarget {
  readonly server: string;
  readonly tls: TlsFiles;
  /** Where it came from, for logs: `<file> (context <name>)` or `in-cluster`. */
  readonly source: string;
}

type Named<T> = Array<{ name?: unknown } & T>;

function decode(b64: unknown, where: string): string {
  if (typeof b64 !== "string" || b64 === "") throw new KubeconfigError(`${where}: must be base64 text`);
  return Buffer.from(b64, "base64").toString("utf8");
}

/** Reads `file` relative to the kubeconfig's folder, as kubectl does. */
function readBeside(kubeconfig: string, file: unknown, where: string, read: (p: string) => string): string {
  if (typeof file !== "string" || file === "") throw new KubeconfigError(`${where}: must be a file path`);
  const full = path.resolve(path.dirname(kubeconfig), file);
  try {
    return read(full);
  } catch (err) {
    throw new KubeconfigError(
      `${where}: cannot read ${full} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/** The target of a kubeconfig's current context. */
export function targetFromKubeconfig(
  file: string,
  read: (p: string) => string = (p) => readFileSync(p, "utf8"),
): KubeTarget {
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    throw new KubeconfigError(
      `${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new KubeconfigError(`${file}: not YAML (${(err as Error).message.split("\n")[0]})`);
  }
  if (doc === null || typeof doc !== "object")
    throw new KubeconfigError(`${file}: not a kubeconfig (expected a mapping)`);
  const current = doc["current-context"];
  if (typeof current !== "string" || current === "")
    throw new KubeconfigError(`${file}: current-context is not set: set it (kubectl config use-context <name>)`);
  const find = <T>(list: unknown, kind: string, name: unknown): T => {
    const found = (Array.isArray(list) ? (list as Named<T>) : []).find((e) => e?.name === name);
    if (found === undefined)
      throw new KubeconfigError(`${file}: ${kind} '${String(name)}' is not defined (named by context '${current}')`);
    return found;
  };
  const context =
    find<{ context?: { cluster?: unknown; user?: unknown } }>(doc.contexts, "context", current).context ?? {};
  const cluster = find<{ cluster?: Record<string, unknown> }>(doc.clusters, "cluster", context.cluster).cluster ?? {};
  const user = find<{ user?: Record<string, unknown> }>(doc.users, "user", context.user).user ?? {};
  const at = (kind: string, name: unknown, field: string) => `${file}: ${kind} '${String(name)}' ${field}`;

  const server = cluster.server;
  if (typeof server !== "string" || !/^https:\/\/[^/]+/.test(server))
    throw new KubeconfigError(
      `${at("cluster", context.cluster, "server")}: must be an https:// URL (got ${JSON.stringify(server)})`,
    );
  /** `<field>-data` (base64) or `<field>` (a file beside the kubeconfig), else undefined. */
  const material = (kind: "cluster" | "user", name: unknown, entry: Record<string, unknown>, field: string) =>
    entry[`${field}-data`] !== undefined
      ? decode(entry[`${field}-data`], at(kind, name, `${field}-data`))
      : entry[field] !== undefined
        ? readBeside(file, entry[field], at(kind, name, field), read)
        : undefined;
  const ca = material("cluster", context.cluster, cluster, "certificate-authority");
  if (ca === undefined)
    throw new KubeconfigError(
      `${at("cluster", context.cluster, "")}has no certificate-authority(-data): g8s verifies the API server; add the CA`,
    );
  for (const unsupported of ["exec", "auth-provider", "username"]) {
    if (user[unsupported] !== undefined)
      throw new KubeconfigError(
        `${at("user", context.user, unsupported)}: not supported by g8s: give it a client certificate or a token`,
      );
  }
  const cert = material("user", context.user, user, "client-certificate");
  const key = material("user", context.user, user, "client-key");
  if ((cert === undefined) !== (key === undefined))
    throw new KubeconfigError(
      `${at("user", context.user, "")}has a client certificate or key without the other: give both`,
    );
  const token =
    typeof user.token === "string"
      ? user.token
      : user.tokenFile !== undefined
        ? readBeside(file, user.tokenFile, at("user", context.user, "tokenFile"), read).trim()
        : undefined;
  if (cert === undefined && token === undefined)
    throw new KubeconfigError(
      `${at("user", context.user, "")}has no credentials: give it a client certificate or a token`,
    );
  return {
    server: server.replace(/\/$/, ""),
    tls: { ca, ...(cert !== undefined ? { cert, key } : {}), ...(token !== undefined ? { token } : {}) },
    source: `${file} (context ${current})`,
  };
}

/** The ServiceAccount's target inside a pod. */
export function inClusterTarget(
  env: NodeJS.ProcessEnv,
  read: (p: string) => string = (p) => readFileSync(p, "utf8"),
): KubeTarget {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? "443";
  if (!host)
    throw new KubeconfigError("no KUBECONFIG and not in a pod (KUBERNETES_SERVICE_HOST is unset): set KUBECONFIG");
  const file = (name: string) => {
    try {
      return read(path.join(IN_CLUSTER_DIR, name));
    } catch (err) {
      throw new KubeconfigError(
        `in-cluster: cannot read ${path.join(IN_CLUSTER_DIR, name)} (${(err as NodeJS.ErrnoException).code}): mount the ServiceAccount token (automountServiceAccountToken)`,
      );
    }
  };
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    tls: { ca: file("ca.crt"), token: file("token").trim() },
    source: "in-cluster",
  };
}

/** `KUBECONFIG`'s first file when set, else in-cluster. */
export function targetFromEnvironment(env: NodeJS.ProcessEnv, read?: (p: string) => string): KubeTarget {
  const first = (env.KUBECONFIG ?? "").split(path.delimiter).find((p) => p !== "");
  return first !== undefined ? targetFromKubeconfig(first, read) : inClusterTarget(env, read);
}

export function kubeApiFor(target: KubeTarget): KubeApi {
  return new KubeApi(target.server, target.tls);
}
