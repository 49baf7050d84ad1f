/**
 * A rolling Kubernetes upgrade of a guest cluster, one node at a time, driven from outside it
 * through its own API (the same on every platform whose nodes hold the target's kubelet and
 * kubeadm: the node image holds the next minor's, `g8s-kubernetes use`). The first master runs
 * `kubeadm upgrade apply`, every other master then every worker `kubeadm upgrade node`; each node
 * is cordoned and drained first (PodDisruptionBudgets honoured), its kubelet switched and
 * restarted after kubeadm, and uncordoned; the next node starts only once the API server answers
 * every readyz check, every etcd member reports itself healthy, the node is Ready on the target
 * kubelet and a master's control-plane pods run the target, and every Deployment, StatefulSet and
 * DaemonSet that had all its replicas ready before the rollout has them again.
 *
 * Nothing of the rollout is kept outside the cluster: which nodes are done is read from the
 * cluster each time (kubeadm-config's version, each Node's kubelet, each master's static pods),
 * and a node's step runs as a transient systemd unit that outlives the API server's restart and
 * this process. So an interrupted upgrade (a crash, a timeout) is resumed by running it again: a
 * unit still running is followed, one that finished is not run twice.
 */
import { Readable } from "node:stream";
import { parse, stringify } from "yaml";
import { NODE_IMAGE_COREDNS_TAG } from "../../components/bootstrap/nodeImage";
import { parseUnitState } from "./etcdSnapshots";
import { firstLines, HELPER_TASK_LABEL, type GuestKubectl, type NodeShells, type Run } from "./guestNodes";
import { AccessError } from "./userKubeconfig";

const CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane";
/** The static pods kubeadm upgrades on a master (etcd stays: its tag is pinned). */
const CONTROL_PLANE_PODS = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] as const;
/** How long one node's step (kubeadm and the kubelet restart) may take. */
export const NODE_STEP_SECONDS = 900;
/** How long the cluster may take to be healthy again after a node's step. */
export const HEALTHY_SECONDS = 600;
/** How long a drain may take (PodDisruptionBudgets may hold it up). */
export const DRAIN_SECONDS = 600;

/** Nodes that install Kubernetes from apt hold no other version's kubelet and kubeadm. */
export const APT_UPGRADE_UNSUPPORTED =
  "rolling upgrades need the node image's kubelet and kubeadm of the new version (kubernetes.packages: image); " +
  "nodes on packages: apt cannot be upgraded in place yet: replace them";

export interface NodeVersion {
  readonly name: string;
  readonly master: boolean;
  /** The kubelet's version as the Node reports it (v1.34.12). */
  readonly kubelet: string;
  /** A master's control-plane pods: name → the tag of its image (v1.34.12); absent when not running. */
  readonly controlPlane?: Readonly<Partial<Record<(typeof CONTROL_PLANE_PODS)[number], string>>>;
}

export interface ClusterVersions {
  /** kubeadm-config's ClusterConfiguration.kubernetesVersion: what `kubeadm upgrade apply` last set. */
  readonly cluster: string;
  readonly nodes: readonly NodeVersion[];
}

export type UpgradeStep =
  | { readonly kind: "apply"; readonly node: string }
  | { readonly kind: "master"; readonly node: string }
  | { readonly kind: "worker"; readonly node: string };

interface Version {
  readonly minor: number;
  readonly text: string;
  readonly parts: readonly [number, number, number];
}

function version(text: string): Version | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text.trim());
  if (!m) return undefined;
  const parts = [Number(m[1]), Number(m[2]), Number(m[3])] as const;
  return { minor: parts[1], text: `v${parts.join(".")}`, parts };
}

function newer(a: Version, b: Version): boolean {
  for (let i = 0; i < 3; i++) if (a.parts[i] !== b.parts[i]) return a.parts[i] > b.parts[i];
  return false;
}

/** A master runs the target once its kubelet and every control-plane pod does. */
function masterDone(node: NodeVersion, target: string): boolean {
  return node.kubelet === target && CONTROL_PLANE_PODS.every((p) => node.controlPlane?.[p] === target);
}

/**
 * What is left to do to bring the cluster to `target` (v1.35.4), in order: `kubeadm upgrade
 * apply` on the first master while the cluster's configuration is older, then each master not
 * yet on the target, then each worker. Refuses a cluster or node newer than the target (no
 * downgrades) and a step of more than one minor.
 */
export function upgradeSteps(view: ClusterVersions, targetText: string): UpgradeStep[] {
  const target = version(targetText);
  const cluster = version(view.cluster);
  if (target === undefined) throw new AccessError(`target version '${targetText}' is not x.y.z`);
  if (cluster === undefined) throw new AccessError(`kubeadm-config names version '${view.cluster}', not x.y.z`);
  if (newer(cluster, target))
    throw new AccessError(`the cluster runs ${cluster.text}, newer than ${target.text}: Kubernetes does not downgrade`);
  if (target.minor > cluster.minor + 1)
    throw new AccessError(
      `${target.text} skips a minor from the ${cluster.text} the cluster runs: one minor at a time`,
    );
  for (const n of view.nodes) {
    const kubelet = version(n.kubelet);
    if (kubelet !== undefined && newer(kubelet, target))
      throw new AccessError(
        `${n.name}'s kubelet is ${kubelet.text}, newer than ${target.text}: not a downgrade g8s makes`,
      );
  }
  const masters = view.nodes.filter((n) => n.master).sort((a, b) => a.name.localeCompare(b.name));
  const workers = view.nodes.filter((n) => !n.master).sort((a, b) => a.name.localeCompare(b.name));
  if (masters.length === 0) throw new AccessError(`the cluster has no Node labelled ${CONTROL_PLANE_LABEL}`);
  const steps: UpgradeStep[] = [];
  let first: string | undefined;
  if (cluster.text !== target.text) {
    first = masters[0].name;
    steps.push({ kind: "apply", node: first });
  }
  for (const m of masters)
    if (m.name !== first && !masterDone(m, target.text)) steps.push({ kind: "master", node: m.name });
  for (const w of workers) if (w.kubelet !== target.text) steps.push({ kind: "worker", node: w.name });
  return steps;
}

interface NodeList {
  items: {
    metadata: { name: string; labels?: Record<string, string> };
    status?: { nodeInfo?: { kubeletVersion?: string } };
  }[];
}
interface PodList {
  items: {
    metadata: { name: string; labels?: Record<string, string> };
    spec: { nodeName?: string; containers: { image: string }[] };
    status?: { phase?: string; conditions?: { type: string; status: string }[] };
  }[];
}
interface ConfigMap {
  data?: Record<string, string>;
}

function tagOf(image: string): string {
  const at = image.lastIndexOf(":");
  return at > image.lastIndexOf("/") ? image.slice(at + 1) : "";
}

/** The cluster's versions as its API reports them now. */
export async function readVersions(kubectl: GuestKubectl): Promise<ClusterVersions> {
  const [config, nodes, pods] = await Promise.all([
    kubectl.json<ConfigMap>(["get", "configmap", "-n", "kube-system", "kubeadm-config"]),
    kubectl.json<NodeList>(["get", "nodes"]),
    kubectl.json<PodList>(["get", "pods", "-n", "kube-system", "-l", "tier=control-plane"]),
  ]);
  const clusterConfig = parse(config.data?.ClusterConfiguration ?? "") as { kubernetesVersion?: string } | null;
  const running = new Map<string, Record<string, string>>();
  for (const pod of pods.items) {
    const component = pod.metadata.labels?.component ?? "";
    const ready = pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    if (pod.spec.nodeName === undefined || pod.status?.phase !== "Running" || !ready) continue;
    const byComponent = running.get(pod.spec.nodeName) ?? {};
    byComponent[component] = tagOf(pod.spec.containers[0].image);
    running.set(pod.spec.nodeName, byComponent);
  }
  return {
    cluster: clusterConfig?.kubernetesVersion ?? "",
    nodes: nodes.items.map((n) => {
      const master = n.metadata.labels?.[CONTROL_PLANE_LABEL] !== undefined;
      return {
        name: n.metadata.name,
        master,
        kubelet: n.status?.nodeInfo?.kubeletVersion ?? "",
        ...(master ? { controlPlane: running.get(n.metadata.name) ?? {} } : {}),
      };
    }),
  };
}

/**
 * The node's step, as a transient unit: kubeadm of the target, `kubeadm upgrade apply|node`
 * (g8s owns the certificates: no renewal; etcd's tag is pinned: no etcd upgrade), then the
 * kubelet of the target, restarted, healthy. Its last log line is the summary.
 *
 * kubeadm finds "its" Node by the client certificate of /etc/kubernetes/kubelet.conf (CN
 * system:node:NAME); g8s's kubelets share one identity, so kubeadm would look for a Node named
 * after it. kubeadm runs in a private mount namespace where kubelet.conf is a stand-in naming
 * this node (a throwaway certificate, an address that answers nothing), and talks to the API
 * with admin.conf, or on a worker with a copy of the real kubelet.conf. kubelet keeps the real one.
 */
const NODE_STEP_SCRIPT = String.raw`set -euo pipefail
v="$1" mode="$2" node="$3"
t0=$(date +%s)
say() { echo "g8s-upgrade: $*"; }
command -v g8s-kubernetes >/dev/null || { say "no g8s-kubernetes here: not a node of the node image (kubernetes.packages: apt?)"; exit 1; }
stand=$(mktemp -d)
trap 'rm -rf "$stand"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/O=system:nodes/CN=system:node:$node" \
  -keyout "$stand/node.key" -out "$stand/node.crt" 2>/dev/null
cat > "$stand/kubelet.conf" <<CONF
apiVersion: v1
kind: Config
clusters: [{ name: none, cluster: { server: "https://127.0.0.1:1", insecure-skip-tls-verify: true } }]
users: [{ name: node, user: { client-certificate-data: $(base64 -w0 "$stand/node.crt"), client-key-data: $(base64 -w0 "$stand/node.key") } }]
contexts: [{ name: node, context: { cluster: none, user: node } }]
current-context: node
CONF
if [ -f /etc/kubernetes/admin.conf ]; then client=/etc/kubernetes/admin.conf
else cp /etc/kubernetes/kubelet.conf "$stand/client.conf"; client="$stand/client.conf"; fi
kubeadm_as_node() {
  unshare --mount --propagation private /bin/sh -c 'mount --bind "$1" /etc/kubernetes/kubelet.conf && shift && exec "$@"' \
    g8s-upgrade "$stand/kubelet.conf" kubeadm "$@" --kubeconfig "$client"
}
# kubeadm 1.35 stops at a cgroup v1 host (its SystemVerification); g8s's kubelet configuration
# lets kubelet run there (failCgroupV1: false), checked below before the kubelet is switched.
ignore=""
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] || ignore=--ignore-preflight-errors=SystemVerification
g8s-kubernetes use "$v" kubeadm
if [ "$mode" = apply ]; then
  kubeadm_as_node upgrade apply "$v" --yes --certificate-renewal=false --etcd-upgrade=false $ignore
else
  kubeadm_as_node upgrade node --certificate-renewal=false --etcd-upgrade=false $ignore
fi
t1=$(date +%s)
if [ -n "$ignore" ] && ! grep -q '^failCgroupV1: false' /var/lib/kubelet/config.yaml; then
  say "this node runs cgroup v1 and kube-system/kubelet-config lacks failCgroupV1: false: kubelet $v would not start; add it, then run the upgrade again (the old kubelet runs on)"
  exit 1
fi
g8s-kubernetes use "$v" kubelet
systemctl daemon-reload
systemctl restart kubelet
for i in $(seq 120); do
  python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:10248/healthz", timeout=2)' 2>/dev/null && break
  [ "$i" -lt 120 ] || { say "kubelet not healthy 120 s after its restart"; exit 1; }
  sleep 1
done
say "kubeadm upgrade $mode $((t1 - t0)) s, kubelet $v healthy $(($(date +%s) - t1)) s later"
`;

/**
 * Starts the node's step, or only prints `running` when its unit runs (or ran well: a unit that
 * finished stays active, and is followed to its summary); a failed one is started again.
 */
const START_SCRIPT = String.raw`unit="$1" v="$2" mode="$3" node="$4"
dir=/var/lib/g8s/upgrade; mkdir -p "$dir"
state=$(systemctl show -p ActiveState --value "$unit" 2>/dev/null || true)
if [ "$state" = active ] || [ "$state" = activating ]; then echo running; exit 0; fi
cat > "$dir/step.sh"
systemctl reset-failed "$unit" 2>/dev/null || true
systemd-run --no-block --quiet --unit "$unit" -p Type=oneshot -p RemainAfterExit=yes -p TimeoutStartSec=${NODE_STEP_SECONDS} /bin/bash "$dir/step.sh" "$v" "$mode" "$node"
echo started`;

/** The unit's state and the last lines of its step's own log (systemd's lines about the unit left out). */
const STATE_SCRIPT = String.raw`systemctl show -p ActiveState -p Result "$1"; journalctl -u "$1" -o cat --no-pager -n 16 | grep -vF "$1.service" | tail -n 8 | sed 's/^/log /'`;

/** A master's etcd member reports itself healthy (the metrics listener kubeadm configures: no client certificate). */
const ETCD_HEALTH_SCRIPT = String.raw`python3 - <<'PY'
import json, sys, urllib.request
try:
    body = urllib.request.urlopen("http://127.0.0.1:2381/health", timeout=3).read().decode()
except Exception as e:
    print(f"etcd /health: {e}"); sys.exit(1)
health = json.loads(body)
print(body.strip())
sys.exit(0 if health.get("health") == "true" else 1)
PY`;

export interface UpgradeProgress {
  (line: string): void;
}

export interface NodeUpgrade {
  readonly node: string;
  readonly kind: UpgradeStep["kind"];
  /** Drain, step, uncordon and the wait for health: the node's share of the rollout. */
  readonly seconds: number;
  readonly summary: string;
}

export interface UpgradeReport {
  readonly from: string;
  readonly to: string;
  readonly nodes: readonly NodeUpgrade[];
  readonly seconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function must(node: string, what: string, r: Run): string {
  if (r.code !== 0) throw new AccessError(`${node}: ${what} failed: ${firstLines(r.err || r.out)}`);
  return r.out;
}

/**
 * An existing cluster's kubeadm-config must pin CoreDNS to the node image's (as g8s renders it
 * now): `kubeadm upgrade apply` would otherwise deploy the next minor's CoreDNS, which no node
 * holds. Adds the pin when it is missing; true when it changed the ConfigMap.
 */
export async function pinCoreDns(kubectl: GuestKubectl): Promise<boolean> {
  const cm = await kubectl.json<ConfigMap & Record<string, unknown>>([
    "get",
    "configmap",
    "-n",
    "kube-system",
    "kubeadm-config",
  ]);
  const text = cm.data?.ClusterConfiguration;
  if (text === undefined) throw new AccessError("kube-system/kubeadm-config has no ClusterConfiguration");
  const config = parse(text) as { dns?: { imageTag?: string } };
  if (config.dns?.imageTag !== undefined) return false;
  config.dns = { ...(config.dns ?? {}), imageTag: NODE_IMAGE_COREDNS_TAG };
  const patch = JSON.stringify({ data: { ClusterConfiguration: stringify(config) } });
  const r = await kubectl.run([
    "patch",
    "configmap",
    "-n",
    "kube-system",
    "kubeadm-config",
    "--type",
    "merge",
    "-p",
    patch,
  ]);
  must("kube-system/kubeadm-config", "pinning CoreDNS", r);
  return true;
}

export interface UpgradeOptions {
  /** The cluster's node image holds CoreDNS of one tag only: pin it before `kubeadm upgrade apply`. */
  readonly pinCoreDns: boolean;
  /** The cluster's versions as the caller just read them (readVersions): not read again. */
  readonly view?: ClusterVersions;
  /** Stops the rollout before the next node (a pass's timeout); the node in progress finishes. */
  readonly signal?: AbortSignal;
}

/**
 * Upgrades the cluster to `target` (v1.35.4) node by node as described above; resumes where an
 * earlier run stopped. An AccessError names the node, the step and its log when one fails: the
 * node stays cordoned, and the rollout stops there.
 */
export async function upgradeCluster(
  kubectl: GuestKubectl,
  shells: NodeShells,
  targetText: string,
  progress: UpgradeProgress,
  options: UpgradeOptions,
): Promise<UpgradeReport> {
  const target = version(targetText)?.text ?? targetText;
  const started = Date.now();
  const before = options.view ?? (await readVersions(kubectl));
  const steps = upgradeSteps(before, target);
  if (steps.length === 0) return { from: before.cluster, to: target, nodes: [], seconds: 0 };
  progress(
    `${before.cluster} → ${target}: ${steps.map((s) => `${s.node} (${s.kind === "apply" ? "upgrade apply" : "upgrade node"})`).join(", ")}`,
  );
  if (options.pinCoreDns && steps[0].kind === "apply" && (await pinCoreDns(kubectl))) {
    progress(`pinned CoreDNS to the node image's ${NODE_IMAGE_COREDNS_TAG} in kubeadm-config`);
  }
  // A first look that the cluster is well before anything is touched; what is whole now must be whole after each node.
  const whole = await readyWorkloads(kubectl);
  await waitHealthy(kubectl, shells, undefined, target, 120, whole);
  const done: NodeUpgrade[] = [];
  for (const step of steps) {
    if (options.signal?.aborted)
      throw new AccessError(`stopped before ${step.node} (${String(options.signal.reason)}): run again to go on`);
    const t0 = Date.now();
    await shells.ensure([step.node]);
    progress(`${step.node}: cordon and drain`);
    await drainNode(kubectl, step.node);
    const summary = await runStep(kubectl, shells, step, target, progress);
    const uncordon = await kubectl.run(["uncordon", step.node, "--request-timeout=30s"]);
    must(step.node, "uncordon", uncordon);
    const healthy = await waitHealthy(kubectl, shells, step, target, HEALTHY_SECONDS, whole);
    const seconds = (Date.now() - t0) / 1000;
    done.push({ node: step.node, kind: step.kind, seconds, summary });
    progress(
      `${step.node}: on ${target} in ${seconds.toFixed(1)} s (${summary}; healthy ${healthy.toFixed(1)} s after)`,
    );
  }
  return { from: before.cluster, to: target, nodes: done, seconds: (Date.now() - started) / 1000 };
}

/** Cordons and drains a node: every pod but DaemonSets', mirror pods and g8s's helper pods evicted, budgets honoured. */
export async function drainNode(kubectl: GuestKubectl, node: string): Promise<void> {
  const r = await kubectl.run(
    [
      "drain",
      node,
      "--ignore-daemonsets",
      "--delete-emptydir-data",
      `--pod-selector=!${HELPER_TASK_LABEL}`,
      `--timeout=${DRAIN_SECONDS}s`,
      "--request-timeout=30s",
    ],
    { timeoutMs: (DRAIN_SECONDS + 60) * 1000 },
  );
  must(node, "drain", r);
}

/** Starts the node's step unit (or finds it running) and follows it to its end. */
async function runStep(
  kubectl: GuestKubectl,
  shells: NodeShells,
  step: UpgradeStep,
  target: string,
  progress: UpgradeProgress,
): Promise<string> {
  const unit = `g8s-upgrade-${target.replace(/\./g, "-")}`;
  const mode = step.kind === "apply" ? "apply" : "node";
  const start = await shells.run(step.node, START_SCRIPT, [unit, target, mode, step.node], {
    stdin: Readable.from([NODE_STEP_SCRIPT]),
  });
  const how = must(step.node, `starting ${unit}`, start).trim();
  progress(
    `${step.node}: kubeadm upgrade ${mode} ${how === "running" ? "already running, followed" : "started"} (unit ${unit})`,
  );
  const t0 = Date.now();
  let failingSince: number | undefined;
  for (;;) {
    if ((Date.now() - t0) / 1000 > NODE_STEP_SECONDS)
      throw new AccessError(
        `${step.node}: ${unit} had not finished after ${NODE_STEP_SECONDS} s: see journalctl -u ${unit} there`,
      );
    await sleep(3000);
    const r = await shells.run(step.node, STATE_SCRIPT, [unit], { timeoutMs: 20_000 });
    if (r.code !== 0) {
      // The API server restarts under `upgrade apply|node` and kubelet with the new binary; a
      // helper pod still unreachable half a minute on is made again.
      failingSince ??= Date.now();
      if (Date.now() - failingSince > 30_000) {
        failingSince = Date.now();
        shells.forget(step.node);
        await shells.ensure([step.node]).catch(() => undefined);
      }
      continue;
    }
    failingSince = undefined;
    const s = parseUnitState(r.out);
    if (s.state === "failed")
      throw new AccessError(
        `${step.node}: ${unit} failed (the node stays cordoned): ${s.log || "(no log)"}; see journalctl -u ${unit}`,
      );
    if (s.state === "done") return s.summary.replace(/^g8s-upgrade: /, "");
  }
}

/**
 * Waits until the API server answers every readyz check, every master's etcd member is healthy,
 * every Node is Ready, and the node just upgraded runs the target (its kubelet; a master's
 * control-plane pods). The seconds it took.
 */
async function waitHealthy(
  kubectl: GuestKubectl,
  shells: NodeShells,
  step: UpgradeStep | undefined,
  target: string,
  timeoutSeconds: number,
  workloads: ReadonlySet<string>,
): Promise<number> {
  return waitClusterHealthy(
    kubectl,
    shells,
    timeoutSeconds,
    step ? `after ${step.node}'s upgrade` : "before the upgrade",
    { workloads, ...(step ? { nodeCheck: (view: ClusterVersions) => onTarget(view, step, target) } : {}) },
  );
}

/** Why the node of `step` does not run the target yet; "" when it does. */
function onTarget(view: ClusterVersions, step: UpgradeStep, target: string): string {
  const node = view.nodes.find((n) => n.name === step.node);
  if (node === undefined) return `${step.node} is gone`;
  if (node.kubelet !== target) return `${step.node}'s kubelet reports ${node.kubelet}`;
  if (node.master && !masterDone(node, target))
    return `${step.node}'s control plane: ${CONTROL_PLANE_PODS.map((p) => `${p} ${node.controlPlane?.[p] ?? "not ready"}`).join(", ")}`;
  return "";
}

/**
 * Waits until the cluster is healthy (see unhealthy), looking every 3 s; an AccessError naming
 * `when` (after whose step) and the last reason when it is not within the timeout. The seconds it took.
 */
export async function waitClusterHealthy(
  kubectl: GuestKubectl,
  shells: NodeShells,
  timeoutSeconds: number,
  when: string,
  checks: HealthChecks = {},
): Promise<number> {
  const started = Date.now();
  let last = "";
  while ((Date.now() - started) / 1000 < timeoutSeconds) {
    last = await unhealthy(kubectl, shells, checks).catch((err: Error) => err.message);
    if (last === "") return (Date.now() - started) / 1000;
    await sleep(3000);
  }
  throw new AccessError(`the cluster was not healthy ${timeoutSeconds} s ${when}: ${last}`);
}

export interface HealthChecks {
  /** What else the node just rolled must show (its versions); "" when it does. */
  readonly nodeCheck?: (view: ClusterVersions) => string;
  /** Workloads fully ready before the rollout (readyWorkloads): each must be again. */
  readonly workloads?: ReadonlySet<string>;
}

interface Workload {
  kind: string;
  metadata: { name: string; namespace: string };
  spec?: { replicas?: number };
  status?: { readyReplicas?: number; numberReady?: number; desiredNumberScheduled?: number };
}

/** Ready and wanted replicas of a Deployment, StatefulSet or DaemonSet. */
function replicas(w: Workload): { ready: number; wanted: number } {
  if (w.kind === "DaemonSet")
    return { ready: w.status?.numberReady ?? 0, wanted: w.status?.desiredNumberScheduled ?? 0 };
  return { ready: w.status?.readyReplicas ?? 0, wanted: w.spec?.replicas ?? 1 };
}

async function workloads(kubectl: GuestKubectl): Promise<Map<string, Workload>> {
  const list = await kubectl.json<{ items: Workload[] }>([
    "get",
    "deployments,statefulsets,daemonsets",
    "--all-namespaces",
  ]);
  return new Map(list.items.map((w) => [`${w.kind.toLowerCase()} ${w.metadata.namespace}/${w.metadata.name}`, w]));
}

/**
 * The Deployments, StatefulSets and DaemonSets with every replica ready: before a rollout, what
 * must be whole again before each next node. A node's restart can take its pods' readiness
 * with it for a while (its kubelet away from the API, its pods marked not ready); draining the
 * next node then would leave a Service with fewer endpoints than it had, or none. Workloads not
 * whole before the rollout do not hold it up.
 */
export async function readyWorkloads(kubectl: GuestKubectl): Promise<Set<string>> {
  const all = await workloads(kubectl);
  return new Set(
    [...all]
      .filter(([, w]) => {
        const r = replicas(w);
        return r.ready >= r.wanted;
      })
      .map(([key]) => key),
  );
}

/**
 * Why the cluster is not healthy yet; "" when it is: the API server answers every readyz check,
 * every Node is Ready, the workloads whole before the rollout are whole again, the node's own
 * check has nothing to say, and every master's etcd member reports itself healthy.
 */
async function unhealthy(kubectl: GuestKubectl, shells: NodeShells, checks: HealthChecks): Promise<string> {
  const ready = await kubectl.run(["get", "--raw", "/readyz", "--request-timeout=10s"], { timeoutMs: 15_000 });
  if (ready.code !== 0 || ready.out.trim() !== "ok") return `readyz: ${firstLines(ready.err || ready.out, 1)}`;
  const nodes = await kubectl.json<{
    items: { metadata: { name: string }; status: { conditions?: { type: string; status: string }[] } }[];
  }>(["get", "nodes"]);
  const notReady = nodes.items.filter((n) => n.status.conditions?.find((c) => c.type === "Ready")?.status !== "True");
  if (notReady.length > 0) return `not Ready: ${notReady.map((n) => n.metadata.name).join(", ")}`;
  if (checks.workloads !== undefined && checks.workloads.size > 0) {
    const now = await workloads(kubectl);
    const behind = [...checks.workloads].flatMap((key) => {
      const w = now.get(key);
      if (w === undefined) return []; // deleted meanwhile: not the rollout's to wait for
      const r = replicas(w);
      return r.ready >= r.wanted ? [] : [`${key} (${r.ready} of ${r.wanted} ready)`];
    });
    if (behind.length > 0) return `not whole again: ${behind.slice(0, 5).join(", ")}${behind.length > 5 ? ", …" : ""}`;
  }
  const view = await readVersions(kubectl);
  const why = checks.nodeCheck?.(view) ?? "";
  if (why !== "") return why;
  // Every member healthy: each master's own etcd says so (a member without quorum does not).
  const masters = view.nodes.filter((n) => n.master).map((n) => n.name);
  await shells.ensure(masters);
  for (const m of masters) {
    const r = await shells.run(m, ETCD_HEALTH_SCRIPT, [], { timeoutMs: 20_000 });
    if (r.code === 0) continue;
    // No output of the script: the helper pod was not reached; the next look makes another.
    if (r.out.trim() === "") shells.forget(m);
    return `etcd on ${m}: ${firstLines(r.out || r.err, 1)}`;
  }
  return "";
}
