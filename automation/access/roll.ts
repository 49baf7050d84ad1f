/**
 * Node rolls on KVM. A guest's StatefulSets update `OnDelete` (components/kvm/workload.ts), so a
 * changed pod template (cpus, memory, the QEMU image) reaches a node only when its pod is deleted
 * and made again, which restarts its VM from its own disk. g8s does that one node at a time, each
 * after a drain of its guest node (PodDisruptionBudgets honoured): the masters first, each
 * followed by the control plane's and etcd's health, then the pools by name. The node comes back
 * with a new boot ID, is Ready and uncordoned, and the next one starts only once the cluster is
 * healthy again (upgrade.ts's checks: readyz, every Node Ready, etcd, the workloads whole before
 * the roll whole again).
 *
 * Nothing of a roll is kept outside the clusters: which pods are behind is read from the host
 * each time (a pod's `controller-revision-hash` against its set's `updateRevision`), so a roll
 * stopped anywhere goes on where it stopped when it runs again. While a node is rolled, its
 * StatefulSet carries its name (annotation ROLLING_ANNOTATION): a roll stopped after the pod was
 * deleted (the pod is new then, and no longer behind) finishes that node first: waits until it is
 * Ready, uncordons it, and waits for the cluster's health.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { CLUSTER_TAG_KEY, ROLE_LABEL } from "../../components/spec";
import { IN_CLUSTER_DIR } from "../coordination/kubeClient";
import type { StateResource } from "../reconciler/types";
import { firstLines, type GuestKubectl, type NodeShells, type Run } from "./guestNodes";
import { drainNode, readyWorkloads, waitClusterHealthy, HEALTHY_SECONDS } from "./upgrade";
import { AccessError } from "./userKubeconfig";

/** The StatefulSet controller's label on each pod: the revision of the template it was made from. */
export const REVISION_LABEL = "controller-revision-hash";
/** On a guest's StatefulSet while one of its nodes is rolled: the node's name. */
export const ROLLING_ANNOTATION = "g8s.dev/rolling-node";
/** How long a node's new pod may take to run and its guest node to be Ready again (a VM's boot). */
export const RESTART_SECONDS = 900;

/** kubectl against one cluster (GuestKubectl: the host's and the guest's). */
export interface Kubectl {
  run(args: readonly string[], options?: { timeoutMs?: number }): Promise<Run>;
  json<T>(args: readonly string[]): Promise<T>;
}

interface Meta {
  name: string;
  uid?: string;
  generation?: number;
  labels?: Record<string, string>;
  deletionTimestamp?: string;
}
interface StatefulSet {
  metadata: Meta & { annotations?: Record<string, string> };
  spec: { replicas?: number; selector: { matchLabels?: Record<string, string> }; template: { metadata?: Meta } };
  status?: { observedGeneration?: number; updateRevision?: string };
}
interface Pod {
  metadata: Meta;
  status?: { conditions?: { type: string; status: string }[] };
}
interface GuestNode {
  metadata: Meta;
  spec?: { unschedulable?: boolean };
  status?: { nodeInfo?: { bootID?: string }; conditions?: { type: string; status: string }[] };
}

/** One guest node's pod as the host sees it. */
export interface NodePod {
  readonly name: string;
  readonly uid: string;
  readonly revision: string;
  readonly ready: boolean;
  readonly deleting: boolean;
}

/** A StatefulSet of guest nodes: its update revision and its pods. */
export interface NodeSet {
  readonly name: string;
  readonly master: boolean;
  readonly updateRevision: string;
  readonly pods: readonly NodePod[];
  /** The node a roll was at when it stopped (ROLLING_ANNOTATION), if any. */
  readonly rolling?: string;
}

/** A pod to make again from its set's new template. */
export interface RollStep {
  readonly set: string;
  readonly node: string;
  readonly master: boolean;
  readonly uid: string;
  readonly updateRevision: string;
  /** The pod was made again already by a roll that stopped: only the node's return is left. */
  readonly finish?: boolean;
}

/**
 * The kubeconfig of the host cluster a KVM stack was applied to, as its host provider got it:
 * the stack's own (`g8s:hostKubeconfig`, an input of the `<cluster>-host` provider in its state)
 * or else the ambient one (KUBECONFIG's first file, or the pod's ServiceAccount).
 */
export function hostKubeconfig(
  resources: readonly StateResource[],
  env: NodeJS.ProcessEnv,
  read: (file: string) => string = (file) => readFileSync(file, "utf8"),
): string {
  const provider = resources.find((r) => r.type === "pulumi:providers:kubernetes" && r.urn.endsWith("-host"));
  const own = provider?.inputs.kubeconfig;
  // The provider takes a kubeconfig's text or its path (its state may hold the ambient one's path).
  if (typeof own === "string" && own.trim() !== "") {
    return typeof parse(own) === "object" ? own : read(own.trim());
  }
  const first = (env.KUBECONFIG ?? "").split(path.delimiter).find((p) => p !== "");
  if (first !== undefined) return read(first);
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host)
    throw new AccessError(
      "no host kubeconfig: the stack has no g8s:hostKubeconfig, KUBECONFIG is unset and this is not a pod",
    );
  const server = `https://${host.includes(":") ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? "443"}`;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "host", cluster: { server, "certificate-authority": path.join(IN_CLUSTER_DIR, "ca.crt") } }],
    users: [{ name: "g8s", user: { tokenFile: path.join(IN_CLUSTER_DIR, "token") } }],
    contexts: [{ name: "host", context: { cluster: "host", user: "g8s" } }],
    "current-context": "host",
  });
}

const ordinal = (name: string) => Number(/-(\d+)$/.exec(name)?.[1] ?? 0);

/**
 * What a roll does, in order: first a node an earlier roll stopped at after its pod was made
 * again (`finish`), then the pods behind their set's update revision: the masters' set first,
 * then the pools by name; in a set by ordinal.
 */
export function rollSteps(sets: readonly NodeSet[]): RollStep[] {
  const ordered = [...sets].sort((a, b) => Number(b.master) - Number(a.master) || a.name.localeCompare(b.name));
  const step = (set: NodeSet, p: NodePod, finish: boolean): RollStep => ({
    set: set.name,
    node: p.name,
    master: set.master,
    uid: finish ? "" : p.uid,
    updateRevision: set.updateRevision,
    ...(finish ? { finish } : {}),
  });
  const finishing = ordered.flatMap((set) =>
    set.pods.filter((p) => p.name === set.rolling && p.revision === set.updateRevision).map((p) => step(set, p, true)),
  );
  const behind = ordered.flatMap((set) =>
    set.pods
      .filter((p) => p.revision !== set.updateRevision)
      .sort((a, b) => ordinal(a.name) - ordinal(b.name))
      .map((p) => step(set, p, false)),
  );
  return [...finishing, ...behind];
}

function podOf(p: Pod): NodePod {
  return {
    name: p.metadata.name,
    uid: p.metadata.uid ?? "",
    revision: p.metadata.labels?.[REVISION_LABEL] ?? "",
    ready: p.status?.conditions?.find((c) => c.type === "Ready")?.status === "True",
    deleting: p.metadata.deletionTimestamp !== undefined,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The guest cluster's StatefulSets in its host namespace, with their pods. A set whose controller
 * has not seen its latest spec yet (observedGeneration behind) is waited for, up to 60 s: its
 * update revision is not known before.
 */
export async function readNodeSets(host: Kubectl, namespace: string, clusterId: string): Promise<NodeSet[]> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const sets = await host.json<{ items: StatefulSet[] }>([
      "get",
      "statefulsets",
      "-n",
      namespace,
      "-l",
      `${CLUSTER_TAG_KEY}=${clusterId}`,
    ]);
    const behind = sets.items.filter(
      (s) => (s.status?.observedGeneration ?? 0) < (s.metadata.generation ?? 0) || !s.status?.updateRevision,
    );
    if (behind.length > 0) {
      if (Date.now() > deadline)
        throw new AccessError(
          `StatefulSet ${behind.map((s) => `${namespace}/${s.metadata.name}`).join(", ")}: its controller has not seen its latest spec after 60 s (is the host's kube-controller-manager running?)`,
        );
      await sleep(2000);
      continue;
    }
    const out: NodeSet[] = [];
    for (const s of sets.items) {
      const selector = Object.entries(s.spec.selector.matchLabels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(",");
      const pods = await host.json<{ items: Pod[] }>(["get", "pods", "-n", namespace, "-l", selector]);
      out.push({
        name: s.metadata.name,
        master: s.spec.template.metadata?.labels?.[ROLE_LABEL] === "master",
        updateRevision: s.status?.updateRevision as string,
        pods: pods.items.map(podOf),
        ...(s.metadata.annotations?.[ROLLING_ANNOTATION]
          ? { rolling: s.metadata.annotations[ROLLING_ANNOTATION] }
          : {}),
      });
    }
    return out;
  }
}

export interface RolledNode {
  readonly node: string;
  /** Drain, the pod made again, the node Ready, uncordon and the wait for health. */
  readonly seconds: number;
  readonly summary: string;
}

export interface RollReport {
  readonly nodes: readonly RolledNode[];
  readonly seconds: number;
}

export interface RollOptions {
  /** Stops the roll before the next node (a pass's timeout); the node in progress finishes. */
  readonly signal?: AbortSignal;
  /** Between two looks at a pod or a node (default 3 s). */
  readonly pollMs?: number;
  /** The sets as the caller just read them (readNodeSets): not read again. */
  readonly sets?: readonly NodeSet[];
}

/**
 * Rolls every guest node whose pod is behind its StatefulSet's template, as described above.
 * An AccessError names the node and what did not happen in time; the roll stops there (the node
 * stays cordoned) and goes on from there when it runs again.
 */
export async function rollNodes(
  host: Kubectl,
  guest: GuestKubectl,
  shells: NodeShells,
  namespace: string,
  clusterId: string,
  progress: (line: string) => void,
  options: RollOptions = {},
): Promise<RollReport> {
  const started = Date.now();
  const steps = rollSteps(options.sets ?? (await readNodeSets(host, namespace, clusterId)));
  if (steps.length === 0) return { nodes: [], seconds: 0 };
  progress(
    `${steps.length} node(s) behind their template: ${steps.map((s) => `${s.node}${s.finish ? " (its roll stopped)" : ""}`).join(", ")}`,
  );
  const workloads = await readyWorkloads(guest);
  await waitClusterHealthy(guest, shells, 120, "before the roll", { workloads });
  const done: RolledNode[] = [];
  for (const step of steps) {
    if (options.signal?.aborted)
      throw new AccessError(`stopped before ${step.node} (${String(options.signal.reason)}): run again to go on`);
    const t0 = Date.now();
    const before = step.finish ? undefined : await guestNode(guest, step.node);
    await markRolling(host, namespace, step.set, step.node);
    if (before !== undefined) {
      progress(`${step.node}: cordon and drain`);
      await drainNode(guest, step.node);
    }
    const drained = (Date.now() - t0) / 1000;
    if (step.finish) {
      progress(`${step.node}: its pod was made again by a roll that stopped; waiting for the node`);
    } else {
      await deletePod(host, namespace, step);
      progress(`${step.node}: pod deleted, waiting for it to run the new template`);
    }
    const back = await waitRestarted(host, guest, namespace, step, before?.status?.nodeInfo?.bootID, options);
    const uncordon = await guest.run(["uncordon", step.node, "--request-timeout=30s"]);
    if (uncordon.code !== 0) throw new AccessError(`${step.node}: uncordon failed: ${firstLines(uncordon.err)}`);
    const healthy = await waitClusterHealthy(guest, shells, HEALTHY_SECONDS, `after ${step.node}'s restart`, {
      workloads,
    });
    await markRolling(host, namespace, step.set, undefined);
    const seconds = (Date.now() - t0) / 1000;
    const summary = step.finish
      ? `finished: Ready ${back.toFixed(1)} s on`
      : `drained in ${drained.toFixed(1)} s, Ready on the new template ${back.toFixed(1)} s after its pod was deleted`;
    done.push({ node: step.node, seconds, summary });
    progress(`${step.node}: rolled in ${seconds.toFixed(1)} s (${summary}; healthy ${healthy.toFixed(1)} s after)`);
  }
  return { nodes: done, seconds: (Date.now() - started) / 1000 };
}

async function guestNode(guest: Kubectl, node: string): Promise<GuestNode | undefined> {
  const r = await guest.run(["get", "node", node, "-o", "json", "--request-timeout=30s"]);
  if (r.code === 0) return JSON.parse(r.out) as GuestNode;
  if (/NotFound/.test(r.err)) return undefined;
  throw new AccessError(`${node}: reading its Node failed: ${firstLines(r.err)}`);
}

/** Names the node being rolled on its StatefulSet (undefined: none), for a roll that stops to go on from. */
async function markRolling(host: Kubectl, namespace: string, set: string, node: string | undefined): Promise<void> {
  const value = node === undefined ? `${ROLLING_ANNOTATION}-` : `${ROLLING_ANNOTATION}=${node}`;
  const r = await host.run([
    "annotate",
    "statefulset",
    "-n",
    namespace,
    set,
    value,
    "--overwrite",
    "--request-timeout=30s",
  ]);
  if (r.code !== 0) throw new AccessError(`StatefulSet ${namespace}/${set}: annotating failed: ${firstLines(r.err)}`);
}

/** Deletes the step's pod, that very one (a pod made again meanwhile is left alone). */
async function deletePod(host: Kubectl, namespace: string, s: RollStep): Promise<void> {
  const pod = await host.run(["get", "pod", "-n", namespace, s.node, "-o", "jsonpath={.metadata.uid}"]);
  if (pod.code !== 0 && !/NotFound/.test(pod.err))
    throw new AccessError(`${s.node}: reading its pod failed: ${firstLines(pod.err)}`);
  if (pod.code !== 0 || pod.out.trim() !== s.uid) return; // gone or made again already
  const r = await host.run(["delete", "pod", "-n", namespace, s.node, "--wait=false", "--request-timeout=30s"]);
  if (r.code !== 0 && !/NotFound/.test(r.err))
    throw new AccessError(`${s.node}: deleting its pod failed: ${firstLines(r.err)}`);
}

/**
 * Waits until the node's pod is a new one on the update revision and Ready, and the guest node
 * booted again (a boot ID other than `bootBefore`) and Ready. The seconds it took.
 */
async function waitRestarted(
  host: Kubectl,
  guest: Kubectl,
  namespace: string,
  s: RollStep,
  bootBefore: string | undefined,
  options: RollOptions,
): Promise<number> {
  const t0 = Date.now();
  let last = "";
  while ((Date.now() - t0) / 1000 < RESTART_SECONDS) {
    await sleep(options.pollMs ?? 3000);
    const pod = await host.run(["get", "pod", "-n", namespace, s.node, "-o", "json", "--request-timeout=30s"]);
    if (pod.code !== 0) {
      last = /NotFound/.test(pod.err) ? "its pod is not made again yet" : firstLines(pod.err, 1);
      continue;
    }
    const p = podOf(JSON.parse(pod.out) as Pod);
    if (p.uid === s.uid || p.deleting) {
      last = "its old pod is still stopping";
      continue;
    }
    if (p.revision !== s.updateRevision) {
      last = `its pod is on revision ${p.revision}, not ${s.updateRevision}`;
      continue;
    }
    if (!p.ready) {
      last = "its new pod is not Ready yet";
      continue;
    }
    const node = await guestNode(guest, s.node).catch((err: Error) => err);
    if (node instanceof Error || node === undefined) {
      last = node instanceof Error ? node.message : "its Node is not registered yet";
      continue;
    }
    const boot = node.status?.nodeInfo?.bootID;
    if (bootBefore !== undefined && boot === bootBefore) {
      last = "the guest node has not booted again yet (same boot ID)";
      continue;
    }
    if (node.status?.conditions?.find((c) => c.type === "Ready")?.status !== "True") {
      last = "the guest node is not Ready yet";
      continue;
    }
    return (Date.now() - t0) / 1000;
  }
  throw new AccessError(
    `${s.node}: not back on the new template ${RESTART_SECONDS} s after its pod was deleted (it stays cordoned): ${last}`,
  );
}
