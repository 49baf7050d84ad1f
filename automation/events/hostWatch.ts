/**
 * Drift found by events on the KVM platform: watches the host cluster's objects labelled
 * `g8s.io/cluster` (every kind the KVM component creates) and reports each change a pass should
 * look at, attributed by the object's managed fields:
 *
 * - a change only to status or bookkeeping (the object without status, resourceVersion,
 *   generation and managedFields is the same) is no change;
 * - a change whose changed managed-field entries all belong to the Kubernetes provider
 *   (`pulumi-kubernetes…`) is g8s's own and not reported;
 * - one by any other manager (`kubectl-edit`, `kubectl` through `scale`, a controller) is
 *   reported as attributed: someone else changed what g8s manages;
 * - a deletion, or a change no entry explains (two in one second keep the entry's time), is
 *   reported unattributed: the scheduler drops it while g8s itself operates on that stack.
 *
 * Each kind is listed, then watched from the list's resourceVersion; a watch that ends by its
 * timeout is resumed from the last version it delivered (bookmarks keep that recent). After 410
 * Gone or an error the kind is listed again and compared with what was known, so no change in
 * the gap goes unseen.
 */
import { createHash } from "node:crypto";
import { setMaxListeners } from "node:events";
import type pino from "pino";
import { CLUSTER_TAG_KEY } from "../../components/spec/conventions";
import { httpsLines, type KubeApi, type TlsFiles } from "../host/https";
import { sleep, type Clock } from "../reconciler/clock";

/** The kinds the KVM component creates (components/kvm), by their list path. */
export const WATCHED_KINDS: readonly { readonly kind: string; readonly path: string }[] = [
  { kind: "Namespace", path: "/api/v1/namespaces" },
  { kind: "StatefulSet", path: "/apis/apps/v1/statefulsets" },
  { kind: "Service", path: "/api/v1/services" },
  { kind: "Secret", path: "/api/v1/secrets" },
  { kind: "NetworkPolicy", path: "/apis/networking.k8s.io/v1/networkpolicies" },
  { kind: "Ingress", path: "/apis/networking.k8s.io/v1/ingresses" },
  { kind: "PodDisruptionBudget", path: "/apis/policy/v1/poddisruptionbudgets" },
];

/** The field manager the Kubernetes provider applies as: `pulumi-kubernetes` and a suffix. */
export const PROVIDER_MANAGER = /^pulumi-kubernetes/;

export interface HostChange {
  /** The stack: the object's `g8s.io/cluster` label (a cluster's id is its stack name). */
  readonly stack: string;
  /** Who changed it is known and is not g8s; false for a deletion or an unexplained change. */
  readonly attributed: boolean;
  /** For logs: `<kind> <namespace>/<name> <how>`, never content. */
  readonly what: string;
}

interface ManagedEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  time?: string;
}

interface KubeObject {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    managedFields?: ManagedEntry[];
  };
}

interface Known {
  readonly stack: string;
  readonly fingerprint: string;
  /** manager|operation|subresource → time */
  readonly managers: ReadonlyMap<string, string>;
  readonly label: string;
}

/** What an object is, without what changes by itself (status, versions, managed fields) or how it was read. */
function fingerprint(obj: KubeObject): string {
  const { metadata, ...rest } = obj as KubeObject & { status?: unknown };
  const {
    resourceVersion: _rv,
    managedFields: _mf,
    generation: _g,
    ...meta
  } = (metadata ?? {}) as Record<string, unknown>;
  // A list's items carry no kind and apiVersion; a watch event's object does.
  const { status: _status, kind: _kind, apiVersion: _apiVersion, ...content } = rest as Record<string, unknown>;
  return createHash("sha256").update(JSON.stringify({ meta, content })).digest("hex");
}

function managersOf(obj: KubeObject): Map<string, string> {
  const map = new Map<string, string>();
  for (const e of obj.metadata?.managedFields ?? []) {
    map.set(`${e.manager ?? ""}|${e.operation ?? ""}|${e.subresource ?? ""}`, e.time ?? "");
  }
  return map;
}

function snapshot(kind: string, obj: KubeObject): Known | undefined {
  const stack = obj.metadata?.labels?.[CLUSTER_TAG_KEY];
  if (!stack) return undefined;
  const ns = obj.metadata?.namespace;
  return {
    stack,
    fingerprint: fingerprint(obj),
    managers: managersOf(obj),
    label: `${kind} ${ns ? `${ns}/` : ""}${obj.metadata?.name ?? "?"}`,
  };
}

/**
 * How `now` differs from `before` (undefined: it is new), as a change to report or undefined
 * for none. Exported for the table test.
 */
export function classify(before: Known | undefined, now: Known): HostChange | undefined {
  if (before !== undefined && before.fingerprint === now.fingerprint) return undefined;
  const changed = [...now.managers]
    .filter(([key, time]) => !key.endsWith("|status") && before?.managers.get(key) !== time)
    .map(([key]) => key.split("|")[0]);
  const how = before === undefined ? "created" : "changed";
  if (changed.some((m) => !PROVIDER_MANAGER.test(m))) {
    const by = [...new Set(changed.filter((m) => !PROVIDER_MANAGER.test(m)))].join(", ");
    return { stack: now.stack, attributed: true, what: `${now.label} ${how} by ${by}` };
  }
  if (changed.length > 0) return undefined; // the provider's own apply
  // No entry's time moved (two writes in one second): if only the provider has ever written
  // more than status, the write was its own; anyone else would have an entry of their own.
  const writers = [...now.managers.keys()].filter((key) => !key.endsWith("|status")).map((key) => key.split("|")[0]);
  if (writers.length > 0 && writers.every((m) => PROVIDER_MANAGER.test(m))) return undefined;
  return { stack: now.stack, attributed: false, what: `${now.label} ${how}` };
}

export interface HostWatchOptions {
  readonly api: KubeApi;
  readonly server: string;
  readonly tls: TlsFiles;
  readonly clock: Clock;
  readonly log: pino.Logger;
  readonly onChange: (change: HostChange) => void;
  /** A watch request's server-side timeout; it is then listed and watched again. Default 300 s. */
  readonly watchSeconds?: number;
  readonly kinds?: typeof WATCHED_KINDS;
}

/** Retry delays after a failed list or watch: 1 s doubling to 30 s. */
const RETRY_MS = { base: 1000, max: 30_000 };

export class HostWatch {
  private readonly controller = new AbortController();
  private readonly loops: Promise<void>[] = [];
  /** Per kind: uid → what was last seen. */
  private readonly known = new Map<string, Map<string, Known>>();
  /** Kinds listed at least once: the first list reports nothing. */
  private readonly synced = new Set<string>();
  private readonly ready: Promise<void>[] = [];

  constructor(private readonly options: HostWatchOptions) {
    // One listener per kind's request or retry sleep, and a closing request's until it closed.
    setMaxListeners(4 * WATCHED_KINDS.length, this.controller.signal);
  }

  /**
   * Starts a list-and-watch loop per kind; resolves once every kind was listed once (or failed
   * to). Idempotent: a second call waits for the same first lists.
   */
  async start(): Promise<void> {
    if (this.loops.length === 0 && !this.controller.signal.aborted) {
      for (const kind of this.options.kinds ?? WATCHED_KINDS) {
        let listed: () => void = () => undefined;
        this.ready.push(new Promise<void>((resolve) => (listed = resolve)));
        this.loops.push(this.loop(kind, listed));
      }
    }
    await Promise.all(this.ready);
  }

  async stop(): Promise<void> {
    this.controller.abort(new Error("stopping"));
    await Promise.all(this.loops);
  }

  private async loop(kind: (typeof WATCHED_KINDS)[number], listed: () => void): Promise<void> {
    const { log, clock } = this.options;
    const selector = `labelSelector=${encodeURIComponent(CLUSTER_TAG_KEY)}`;
    let failures = 0;
    // Where the next watch starts: a list's version, then the last one a watch delivered.
    let rv: string | undefined;
    while (!this.controller.signal.aborted) {
      try {
        if (rv === undefined) {
          rv = await this.list(kind, selector);
          listed();
          failures = 0;
        }
        rv = await this.watch(kind, selector, rv);
      } catch (err) {
        listed();
        rv = undefined; // what happened meanwhile is found by listing again
        if (this.controller.signal.aborted) return;
        failures++;
        const delay = Math.min(RETRY_MS.base * 2 ** (failures - 1), RETRY_MS.max);
        log.warn({ kind: kind.kind, err: (err as Error).message, retryMs: delay }, "host watch failed: retrying");
        await sleep(clock, delay, this.controller.signal).catch(() => undefined);
      }
    }
  }

  /** Lists the kind, reports what changed since the last list or watch event, returns the list's resourceVersion. */
  private async list(kind: (typeof WATCHED_KINDS)[number], selector: string): Promise<string> {
    const list = await this.options.api.get<{ metadata?: { resourceVersion?: string }; items?: KubeObject[] }>(
      `${kind.path}?${selector}`,
    );
    const before = this.known.get(kind.kind) ?? new Map<string, Known>();
    const now = new Map<string, Known>();
    const first = !this.synced.has(kind.kind);
    for (const item of list.items ?? []) {
      const uid = item.metadata?.uid;
      const snap = snapshot(kind.kind, item);
      if (!uid || !snap) continue;
      now.set(uid, snap);
      if (!first) this.report(classify(before.get(uid), snap));
    }
    if (!first) {
      for (const [uid, gone] of before) {
        if (!now.has(uid)) this.report({ stack: gone.stack, attributed: false, what: `${gone.label} deleted` });
      }
    }
    this.known.set(kind.kind, now);
    this.synced.add(kind.kind);
    return list.metadata?.resourceVersion ?? "";
  }

  /**
   * One watch request from `rv`, until the server ends it; resolves with the last version it
   * delivered (events and bookmarks), or undefined when that version is gone (410: list again).
   */
  private async watch(kind: (typeof WATCHED_KINDS)[number], selector: string, rv: string): Promise<string | undefined> {
    const seconds = this.options.watchSeconds ?? 300;
    const url =
      `${this.options.server}${kind.path}?${selector}&watch=1&allowWatchBookmarks=true` +
      `&resourceVersion=${encodeURIComponent(rv)}&timeoutSeconds=${seconds}`;
    const known = this.known.get(kind.kind) as Map<string, Known>;
    let gone = false;
    let last = rv;
    await httpsLines(
      url,
      this.options.tls,
      (line) => {
        let event: { type?: string; object?: KubeObject & { code?: number } };
        try {
          event = JSON.parse(line) as typeof event;
        } catch {
          return;
        }
        const obj = event.object ?? {};
        const uid = obj.metadata?.uid;
        if (event.type === "ERROR") {
          gone = true; // 410 Gone and the like: list again
          return;
        }
        last = obj.metadata?.resourceVersion ?? last;
        if (event.type === "BOOKMARK" || !uid) return;
        const snap = snapshot(kind.kind, obj);
        if (event.type === "DELETED") {
          const last = known.get(uid);
          known.delete(uid);
          const stack = snap?.stack ?? last?.stack;
          if (stack) this.report({ stack, attributed: false, what: `${snap?.label ?? last?.label} deleted` });
          return;
        }
        if (!snap) return;
        this.report(classify(known.get(uid), snap));
        known.set(uid, snap);
      },
      { idleTimeoutMs: (seconds + 30) * 1000, signal: this.controller.signal },
    );
    if (gone) this.options.log.debug({ kind: kind.kind }, "host watch expired: listing again");
    return gone ? undefined : last;
  }

  private report(change: HostChange | undefined): void {
    if (change !== undefined) this.options.onChange(change);
  }
}
