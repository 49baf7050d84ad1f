/**
 * The daemon's look at each cluster's etcd backups: every master's `g8s-etcd-snapshot` writes
 * the time of its last good snapshot on its Node (annotation ETCD_LAST_GOOD_ANNOTATION); every
 * few minutes the daemon reads the masters' Nodes through the cluster's API with the admin
 * kubeconfig the stack exports, and the metrics turn what it saw into
 * `g8s_etcd_snapshot_last_good_timestamp_seconds{stack,node}` beside the stack's
 * `etcd.backup.interval` (alert G8sEtcdSnapshotStale). Read-only, one GET per stack, never
 * during a pass's critical path: a cluster the daemon cannot reach keeps its last values (they
 * age into the alert) and counts a failed look.
 */
import { ETCD_LAST_GOOD_ANNOTATION } from "../../components/bootstrap/etcdBackup";
import { kubeApiFor, targetFromKubeconfig } from "../coordination/kubeClient";
import type { KubeApi } from "../host/https";
import { adminKubeconfigOutput } from "../access/userKubeconfig";
import type { StateResource } from "./types";

/** How often each cluster is looked at. */
export const ETCD_WATCH_INTERVAL_MS = 5 * 60_000;
/** The first round waits this long after start (the first passes go first). */
const FIRST_LOOK_DELAY_MS = 30_000;
/** A cluster that has not answered by then counts as a failed look (its connection is closed). */
const LOOK_TIMEOUT_MS = 15_000;
const CONTROL_PLANE_SELECTOR = encodeURIComponent("node-role.kubernetes.io/control-plane");

/** One master as its Node says: the time of its last good snapshot (seconds since the epoch), if any. */
export interface EtcdSnapshotSeen {
  readonly node: string;
  readonly lastGoodSeconds?: number;
}

/** A stack whose masters take snapshots (etcd.backup.enabled), and how often. */
export interface EtcdBackupStack {
  readonly name: string;
  readonly intervalSeconds: number;
}

interface NodeList {
  items?: { metadata?: { name?: string; annotations?: Record<string, string> } }[];
}

/**
 * The stacks a replica watches: applied ones whose masters take snapshots, and with replicas
 * only those it owns (one look per cluster, one series per master).
 */
export function watchedStacks(
  discovered: readonly { readonly name: string; readonly etcdBackupSeconds?: number }[],
  applied: ReadonlySet<string>,
  mine: (stack: string) => boolean,
): EtcdBackupStack[] {
  return discovered.flatMap((d) =>
    d.etcdBackupSeconds === undefined || !applied.has(d.name) || !mine(d.name)
      ? []
      : [{ name: d.name, intervalSeconds: d.etcdBackupSeconds }],
  );
}

/** The masters' last good snapshots, from their Nodes' annotations. */
export async function readEtcdSnapshots(api: Pick<KubeApi, "get">): Promise<EtcdSnapshotSeen[]> {
  const list = await api.get<NodeList>(`/api/v1/nodes?labelSelector=${CONTROL_PLANE_SELECTOR}`);
  return (list.items ?? [])
    .filter((n) => typeof n.metadata?.name === "string")
    .map((n) => {
      const at = Date.parse(n.metadata?.annotations?.[ETCD_LAST_GOOD_ANNOTATION] ?? "");
      return {
        node: n.metadata?.name as string,
        ...(Number.isNaN(at) ? {} : { lastGoodSeconds: at / 1000 }),
      };
    })
    .sort((a, b) => a.node.localeCompare(b.node));
}

/** The cluster's API as the stack's admin kubeconfig output reaches it; undefined before the stack exports one. */
export function guestApiFromState(resources: readonly StateResource[], stack: string): KubeApi | undefined {
  const text = adminKubeconfigOutput(resources);
  if (text === undefined) return undefined;
  const source = `stack ${stack} output adminKubeconfig`;
  const read = (file: string) => {
    if (file === source) return text;
    throw new Error("the output must embed its certificates (…-data), not name files");
  };
  return kubeApiFor(targetFromKubeconfig(source, read));
}

export interface EtcdWatchOptions {
  /** The stacks to look at now (read again before every round). */
  readonly stacks: () => Promise<readonly EtcdBackupStack[]>;
  readonly stackResources: (stack: string) => Promise<readonly StateResource[] | undefined>;
  readonly seen: (stack: EtcdBackupStack, masters: readonly EtcdSnapshotSeen[]) => void;
  readonly failed: (stack: string, reason: string) => void;
  /** A stack of the last round that this one no longer lists (removed, or now another replica's): drop what it showed. */
  readonly forget?: (stack: string) => void;
  readonly intervalMs?: number;
  readonly firstDelayMs?: number;
}

/** Looks at every stack's masters once per interval, one stack at a time. */
export class EtcdSnapshotWatch {
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;
  private stopped = false;
  private previous = new Set<string>();

  constructor(private readonly options: EtcdWatchOptions) {}

  /** One round over the stacks now; resolves when every stack was looked at. */
  async observe(): Promise<void> {
    const stacks = await this.options.stacks();
    const names = new Set(stacks.map((s) => s.name));
    for (const gone of this.previous) if (!names.has(gone)) this.options.forget?.(gone);
    this.previous = names;
    for (const stack of stacks) {
      if (this.stopped) return;
      let api: KubeApi | undefined;
      try {
        const resources = await this.options.stackResources(stack.name);
        api = resources === undefined ? undefined : guestApiFromState(resources, stack.name);
        if (api === undefined) continue; // not applied yet: nothing to look at
        const read = readEtcdSnapshots(api);
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${LOOK_TIMEOUT_MS / 1000} s`)), LOOK_TIMEOUT_MS);
        });
        try {
          this.options.seen(stack, await Promise.race([read, late]));
        } finally {
          clearTimeout(timer);
          read.catch(() => undefined); // closed below when it was too late
        }
      } catch (err) {
        this.options.failed(stack.name, (err as Error).message);
      } finally {
        api?.close();
      }
    }
  }

  start(): void {
    const tick = () => {
      this.round = this.observe()
        .catch(() => undefined)
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.options.intervalMs ?? ETCD_WATCH_INTERVAL_MS);
        });
    };
    this.timer = setTimeout(tick, this.options.firstDelayMs ?? FIRST_LOOK_DELAY_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.round;
  }
}
