/**
 * The status board on Kubernetes: one ConfigMap per replica, `g8s-status-<replica>`, in the
 * Leases' namespace, its status gzipped in `binaryData` (a ConfigMap holds at most 1 MiB; 500
 * stacks' status is some hundred KiB as JSON, a tenth of it compressed). Written by server-side
 * apply, so one request creates or replaces it.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import type { KubeApi } from "../host/https";
import type { StackStatus } from "../reconciler/types";
import type { PublishedStatus, StatusBoard } from "./sharedStatus";

/** Label every status ConfigMap carries (what `read` selects). */
export const STATUS_LABEL = "g8s.io/status";
export const STATUS_PREFIX = "g8s-status-";
const KEY = "status.json.gz";
const FORMAT_VERSION = 1;
/** What the API server takes in a ConfigMap, less room for its metadata. */
export const MAX_COMPRESSED_BYTES = 1000 * 1024;

interface StatusConfigMap {
  metadata: { name: string; labels?: Record<string, string> };
  binaryData?: Record<string, string>;
}

/** The status as published: without the engines' whole outputs when the whole would not fit. */
export function encodeStatus(doc: PublishedStatus, limit = MAX_COMPRESSED_BYTES): Buffer {
  const encode = (stacks: readonly StackStatus[]) =>
    gzipSync(JSON.stringify({ version: FORMAT_VERSION, ...doc, stacks }), { level: 9 });
  const whole = encode(doc.stacks);
  if (whole.length <= limit) return whole;
  const slim = encode(doc.stacks.map(withoutOutputs));
  if (slim.length <= limit) return slim;
  throw new Error(
    `status of ${doc.stacks.length} stacks is ${slim.length} bytes compressed, over the ${limit} a ConfigMap holds`,
  );
}

function withoutOutputs(s: StackStatus): StackStatus {
  const strip = <T extends { output?: string }>(r: T | undefined): T | undefined =>
    r?.output === undefined ? r : { ...r, output: undefined };
  return { ...s, lastPass: strip(s.lastPass), lastDrift: strip(s.lastDrift) };
}

/** A published status read back; undefined for anything that is not one (another version, corrupt). */
export function decodeStatus(data: string | undefined): PublishedStatus | undefined {
  if (data === undefined) return undefined;
  try {
    const doc = JSON.parse(gunzipSync(Buffer.from(data, "base64")).toString("utf8")) as Partial<PublishedStatus> & {
      version?: number;
    };
    if (doc.version !== FORMAT_VERSION || typeof doc.replica !== "string" || !Array.isArray(doc.stacks))
      return undefined;
    const stacks = doc.stacks.filter((s) => typeof s?.name === "string" && typeof s?.phase === "string");
    return { replica: doc.replica, savedAt: String(doc.savedAt ?? ""), stacks };
  } catch {
    return undefined;
  }
}

export class KubernetesStatusBoard implements StatusBoard {
  private readonly base: string;

  constructor(
    private readonly api: KubeApi,
    readonly namespace: string,
  ) {
    this.base = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`;
  }

  async publish(doc: PublishedStatus): Promise<void> {
    const name = `${STATUS_PREFIX}${doc.replica}`;
    const body = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name, labels: { [STATUS_LABEL]: "true", "app.kubernetes.io/name": "g8s" } },
      binaryData: { [KEY]: encodeStatus(doc).toString("base64") },
    };
    const path = `${this.base}/${encodeURIComponent(name)}?fieldManager=g8s-reconciler&force=true`;
    const res = await this.api.request("PATCH", path, body, "application/apply-patch+yaml");
    if (res.status !== 200 && res.status !== 201) {
      const message = (res.json as { message?: string } | undefined)?.message ?? res.text.slice(0, 200);
      throw new Error(`publish status as ConfigMap ${this.namespace}/${name}: ${res.status} ${message}`);
    }
  }

  async remove(replica: string): Promise<void> {
    const name = `${STATUS_PREFIX}${replica}`;
    const res = await this.api.request("DELETE", `${this.base}/${encodeURIComponent(name)}`);
    if (res.status !== 200 && res.status !== 202 && res.status !== 404) {
      const message = (res.json as { message?: string } | undefined)?.message ?? res.text.slice(0, 200);
      throw new Error(`delete status ConfigMap ${this.namespace}/${name}: ${res.status} ${message}`);
    }
  }

  async read(): Promise<PublishedStatus[]> {
    const res = await this.api.get<{ items: StatusConfigMap[] }>(
      `${this.base}?labelSelector=${encodeURIComponent(`${STATUS_LABEL}=true`)}`,
    );
    return res.items.flatMap((cm) => decodeStatus(cm.binaryData?.[KEY]) ?? []);
  }
}
