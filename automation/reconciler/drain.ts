/**
 * Removing a node pool drains it first. A pass whose preview deletes a pool (its NodePool
 * component, on any platform) drains the pool's nodes through the guest cluster's API before the
 * update: cordon every node, evict every pod the Eviction API may evict (PodDisruptionBudgets
 * are honoured: a refused eviction is tried again until the timeout), wait until they are gone.
 * A pool that cannot be drained in time, or a cluster that cannot be reached, fails the pass
 * before the update: the pool stays, and the next pass tries again. After the update, the
 * removed pool's Node objects are deleted (no cloud controller does it on KVM).
 */
import { POOL_LABEL } from "../../components/spec";
import { ApiError, type KubeApi } from "../host/https";
import type { ResourceDrift } from "./types";

/** The NodePool components of every platform (components/kvm/nodePool.ts, components/aws/nodePool.ts). */
export const NODE_POOL_TYPES: ReadonlySet<string> = new Set(["g8s:kvm:NodePool", "g8s:aws:NodePool"]);
/** How long a pool's pods may take to leave before the pass gives up (and keeps the pool). */
export const DRAIN_TIMEOUT_MS = 10 * 60_000;

/** The NodePool components a preview deletes (their resource names, `<cluster>-pool-<pool>`). */
export function removedPoolComponents(drift: readonly ResourceDrift[]): string[] {
  return drift.filter((d) => d.op === "delete" && NODE_POOL_TYPES.has(d.type)).map((d) => d.name);
}

interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { kind: string }[];
  deletionTimestamp?: string;
}
interface PodList {
  items: { metadata: Meta; status?: { phase?: string } }[];
}
interface NodeList {
  items: { metadata: Meta }[];
}

/** Pods a drain leaves alone: DaemonSet pods (they would come back), static pods, finished ones. */
function evictable(pod: PodList["items"][number]): boolean {
  const m = pod.metadata;
  if (m.ownerReferences?.some((o) => o.kind === "DaemonSet")) return false;
  if (m.annotations?.["kubernetes.io/config.mirror"] !== undefined) return false;
  return pod.status?.phase !== "Succeeded" && pod.status?.phase !== "Failed";
}

export interface DrainReport {
  /** Pool label value → its nodes. */
  readonly pools: ReadonlyMap<string, readonly string[]>;
  readonly evicted: number;
  readonly ms: number;
}

export interface DrainOptions {
  readonly timeoutMs?: number;
  /** Time between two tries of a refused eviction and two looks at what is left. */
  readonly pollMs?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** The pools (label values) among `components`: a component `<cluster>-pool-<p>` names pool p. */
export async function poolNodes(
  api: Pick<KubeApi, "get">,
  components: readonly string[],
): Promise<Map<string, string[]>> {
  const nodes = (await api.get<NodeList>(`/api/v1/nodes?labelSelector=${encodeURIComponent(POOL_LABEL)}`)).items;
  const pools = new Map<string, string[]>();
  for (const node of nodes) {
    const pool = node.metadata.labels?.[POOL_LABEL];
    if (pool === undefined || !components.some((c) => c.endsWith(`-pool-${pool}`))) continue;
    pools.set(pool, [...(pools.get(pool) ?? []), node.metadata.name].sort());
  }
  return pools;
}

/**
 * Cordons and drains the nodes of the pools whose components are removed. Resolves with what it
 * did; rejects (the pool is not to be removed) when the API cannot be reached or pods are still
 * there at the timeout, naming them and why.
 */
export async function drainPools(
  api: Pick<KubeApi, "get" | "mergePatch" | "request">,
  components: readonly string[],
  options: DrainOptions = {},
): Promise<DrainReport> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const pollMs = options.pollMs ?? 5000;
  const started = now();
  const deadline = started + (options.timeoutMs ?? DRAIN_TIMEOUT_MS);
  const pools = await poolNodes(api, components);
  const nodes = [...pools.values()].flat();
  for (const node of nodes) await api.mergePatch(`/api/v1/nodes/${node}`, { spec: { unschedulable: true } });

  let evicted = 0;
  const refused = new Map<string, string>();
  for (;;) {
    const left: string[] = [];
    for (const node of nodes) {
      const pods = await api.get<PodList>(`/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${node}`)}`);
      for (const pod of pods.items.filter(evictable)) {
        const { name, namespace } = pod.metadata;
        const key = `${namespace}/${name}`;
        left.push(key);
        if (pod.metadata.deletionTimestamp !== undefined) continue; // leaving already
        const res = await api.request("POST", `/api/v1/namespaces/${namespace}/pods/${name}/eviction`, {
          apiVersion: "policy/v1",
          kind: "Eviction",
          metadata: { name, namespace },
        });
        if (res.status === 200 || res.status === 201) {
          evicted++;
          refused.delete(key);
        } else if (res.status !== 404) {
          const message = (res.json as { message?: string } | undefined)?.message ?? res.text.slice(0, 200);
          if (res.status !== 429) throw new ApiError(res.status, `evicting ${key} from ${node}: ${message}`);
          refused.set(key, message); // a PodDisruptionBudget: try again
        }
      }
    }
    if (left.length === 0) return { pools, evicted, ms: now() - started };
    if (now() >= deadline) {
      const why = left.map((k) => (refused.has(k) ? `${k} (${refused.get(k)})` : k));
      throw new Error(
        `pool ${[...pools.keys()].join(", ")} not drained after ${Math.round((now() - started) / 1000)} s: ` +
          `${left.length} pod(s) left: ${why.slice(0, 5).join("; ")}${why.length > 5 ? "; …" : ""}`,
      );
    }
    await sleep(pollMs);
  }
}

/** Deletes the removed pools' Node objects after the update took the machines away. */
export async function deletePoolNodes(
  api: Pick<KubeApi, "delete">,
  pools: ReadonlyMap<string, readonly string[]>,
): Promise<void> {
  for (const node of [...pools.values()].flat()) await api.delete(`/api/v1/nodes/${node}`);
}
