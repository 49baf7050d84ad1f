/**
 * The composition root: builds the settings-driven logger, metrics registry, engine adapter,
 * stack source, policy check, scheduler and HTTP server, and wires them together. Commands
 * (cli/daemon.ts, cli/reconcile.ts, cli/plan.ts) call these functions; nothing else constructs
 * the reconciler.
 */
import { mkdirSync } from "node:fs";
import * as path from "node:path";
import type pino from "pino";
import { Registry, collectDefaultMetrics } from "prom-client";
import { engineEnvironment, findPulumi, prepareStateDir, PROJECT_ROOT, PulumiEngine } from "./engine";
import { ensurePlugins } from "./engine/plugins";
import type { Settings } from "./config";
import { systemClock, type Clock } from "./reconciler/clock";
import { ProjectStackSource, type DiscoveredStack } from "./reconciler/discovery";
import { createLogger, redactText } from "./reconciler/logger";
import { ReconcilerMetrics } from "./reconciler/metrics";
import { Scheduler } from "./reconciler/scheduler";
import { evaluatePolicies } from "./policy/runner";
import { G8S_POLICIES } from "../policy/policies";
import { createApiServer, type ApiServer } from "./reconciler/server";
import { FileStatusStore } from "./reconciler/status";
import { PassHistory } from "./reconciler/history";
import type {
  Engine,
  PassRecord,
  PreviewResource,
  RollRecord,
  StackStatus,
  UpgradeRecord,
  Violation,
} from "./reconciler/types";
import { hostKubeconfig, readNodeSets, rollNodes, rollSteps } from "./access/roll";
import { Coordinator } from "./coordination/coordinator";
import { kubeApiFor, targetFromEnvironment } from "./coordination/kubeClient";
import { KubernetesLeaseStore } from "./coordination/kubernetesLeases";
import { KubernetesStatusBoard } from "./coordination/kubernetesStatus";
import { SharedStatusStore, SharedStatusView } from "./coordination/sharedStatus";
import { ChangeTrigger } from "./events/trigger";
import { HostWatch } from "./events/hostWatch";
import { EtcdSnapshotWatch, guestApiFromState, watchedStacks } from "./reconciler/etcdWatch";
import { deletePoolNodes, drainPools } from "./reconciler/drain";
import type { DrainedPools } from "./reconciler/pass";
import { pauseImageOf } from "../components/bootstrap/nodeImage";
import { adminKubeconfigFromState, findKubectl, GuestKubectl, NodeShells } from "./access/guestNodes";
import {
  APT_UPGRADE_UNSUPPORTED,
  readVersions,
  upgradeCluster,
  upgradeSteps,
  type ClusterVersions,
} from "./access/upgrade";
import { adminKubeconfigOutput } from "./access/userKubeconfig";

export interface Reconciler {
  readonly settings: Settings;
  readonly logger: pino.Logger;
  readonly registry: Registry;
  readonly metrics: ReconcilerMetrics;
  readonly engine: Engine;
  readonly scheduler: Scheduler;
  /** The last passes of each stack, for the status page. */
  readonly history: PassHistory;
  /** With `coordination: kubernetes` (daemon only): this replica's lease; start before the scheduler. */
  readonly coordinator?: Coordinator;
  /**
   * With the coordinator: the status board every replica publishes to (`store`, the scheduler's:
   * flush after it stopped) and reads from (`view`: start with the coordinator, stop before it).
   */
  readonly shared?: { readonly store: SharedStatusStore; readonly view: SharedStatusView };
  /** The daemon's: coalesces noticed changes (host watch, POST /api/stacks/<name>/events) into passes. */
  readonly changes?: ChangeTrigger;
  /** With `watch: kubernetes` (daemon only): start after the scheduler, stop before it. */
  readonly hostWatch?: HostWatch;
  /** The daemon's look at every cluster's last good etcd snapshots (metrics); start and stop with the scheduler. */
  readonly etcdWatch?: EtcdSnapshotWatch;
}

/** A burst of status saves is published at most this often, and read back from the others this often. */
const SHARED_STATUS_PUBLISH_MS = 2000;
const SHARED_STATUS_READ_MS = 3000;
/** A gone replica's publication is deleted once this old and superseded (supersededReplicas). */
const SHARED_STATUS_CLEANUP_AFTER_MS = 10 * 60_000;

export interface BuildOptions {
  readonly env: NodeJS.ProcessEnv;
  /** Where JSON logs go (default stdout). */
  readonly logDestination?: pino.DestinationStream;
  /** Replaces the real engine (tests). */
  readonly engine?: Engine;
  readonly clock?: Clock;
  /** Status changes, for live progress on a terminal. */
  readonly onStatus?: (status: StackStatus) => void;
  readonly onPass?: (record: PassRecord) => void;
  /** Share the stacks with other replicas as `settings.coordination` says (the daemon; never `--once`). */
  readonly coordinate?: boolean;
}

export async function buildReconciler(settings: Settings, options: BuildOptions): Promise<Reconciler> {
  const secrets = [settings.passphrase, settings.apiToken].filter((s): s is string => !!s);
  const redact = (text: string) => redactText(text, secrets);
  const logger = createLogger({ level: settings.logLevel, destination: options.logDestination, secrets });
  mkdirSync(settings.stateDir, { recursive: true });

  let coordinator: Coordinator | undefined;
  let shared: { readonly store: SharedStatusStore; readonly view: SharedStatusView } | undefined;
  // A lock on another host is a dead replica's once every lease naming that host expired.
  const hostGone = (host: string) => coordinator?.hostGone(host) ?? false;
  const engine = options.engine ?? (await createEngine(settings, options.env, logger, hostGone));

  const history = new PassHistory();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "g8s_process_" });
  const metrics = new ReconcilerMetrics(registry);
  const source = new ProjectStackSource({
    projectDir: settings.projectDir,
    listBackendStacks: () => (engine as Engine).listStacks(),
    reconcileDefaults: { mode: settings.defaultMode, interval: settings.defaultInterval },
    specChecks: settings.specChecks,
    only: settings.stacks,
  });
  const clock = options.clock ?? systemClock;
  if (options.coordinate && settings.coordination === "kubernetes") {
    const target = targetFromEnvironment(options.env);
    // One client (and its keep-alive connections) for the Leases and the status board.
    const api = kubeApiFor(target);
    logger.info(
      { replica: settings.replicaId, namespace: settings.leaseNamespace, api: target.source },
      "sharing the stacks with other replicas through Leases",
    );
    coordinator = new Coordinator({
      replica: settings.replicaId,
      store: new KubernetesLeaseStore(api, settings.leaseNamespace),
      clock,
      log: logger,
      leaseDurationMs: settings.leaseDurationMs,
      // What an aborted operation may take to stop: the daemon's own shutdown grace.
      fenceGraceMs: settings.shutdownGraceMs,
      onFence: () => scheduler.abortRunning("this replica's lease was not renewed in time"),
      onMembership: (replicas) => logger.info({ replicas }, "live replicas changed"),
      onTick: () => scheduler.gateChanged(),
    });
    // Status every replica can read: each publishes its own, each shows the newest per stack.
    const board = new KubernetesStatusBoard(api, settings.leaseNamespace);
    const onError = (err: Error) => logger.warn({ err: redact(err.message) }, "shared status: retrying");
    shared = {
      store: new SharedStatusStore({
        local: new FileStatusStore(settings.stateDir),
        board,
        replica: settings.replicaId,
        clock,
        minIntervalMs: SHARED_STATUS_PUBLISH_MS,
        onError,
      }),
      view: new SharedStatusView(board, settings.replicaId, clock, SHARED_STATUS_READ_MS, onError, {
        live: () => coordinator?.live() ?? [],
        afterMs: SHARED_STATUS_CLEANUP_AFTER_MS,
      }),
    };
  }
  // The Kubernetes version each stack's cluster was last seen on in full: no look at its API
  // until the stack file names another.
  const upgraded = new Map<string, string>();
  // onStatus reads the scheduler's list; the constructor itself reports nothing.
  const scheduler: Scheduler = new Scheduler({
    gate: coordinator,
    engine,
    source,
    store: shared?.store ?? new FileStatusStore(settings.stateDir),
    clock,
    log: logger,
    redact,
    concurrency: settings.concurrency,
    jitter: settings.jitter,
    backoffBaseMs: settings.backoffBaseMs,
    backoffMaxMs: settings.backoffMaxMs,
    stallAfter: settings.stallAfter,
    busyRetryMs: settings.busyRetryMs,
    passTimeoutMs: settings.passTimeoutMs,
    discoverIntervalMs: settings.discoverIntervalMs,
    clearPendingOperations: settings.clearPendingOperations,
    checkPolicies: checkG8sPolicies,
    drainPools: (stack, components) => drainRemovedPools(engine as Engine, logger, redact, stack.name, components),
    roll: (stack, signal, progress) => rollGuest(engine as Engine, logger, options.env, stack, signal, progress),
    upgrade: (stack, signal, progress) => upgradeGuest(engine as Engine, logger, stack, signal, progress, upgraded),
    onPass: (record) => {
      metrics.observePass(record);
      history.record(record);
      options.onPass?.(record);
    },
    onRenewal: (record) => metrics.observeRenewal(record),
    onStatus: (status) => {
      metrics.updateStack(status);
      metrics.setPhaseCounts(scheduler.list());
      options.onStatus?.(status);
    },
    onForget: (name) => {
      metrics.removeStack(name);
      history.forget(name);
    },
    onLoad: (inFlight, queueDepth) => {
      metrics.setInFlight(inFlight);
      metrics.setQueueDepth(queueDepth);
    },
  });
  let changes: ChangeTrigger | undefined;
  let hostWatch: HostWatch | undefined;
  if (options.coordinate) {
    const trigger = new ChangeTrigger({
      clock,
      fire: (stack, attributed, what) => {
        const answer = scheduler.noticeChange(stack, attributed, what);
        metrics.observeChange(answer);
      },
    });
    changes = trigger;
    if (settings.watch === "kubernetes") {
      const target = targetFromEnvironment(options.env);
      logger.info({ api: target.source }, "watching the host cluster's g8s objects for changes");
      hostWatch = new HostWatch({
        api: kubeApiFor(target),
        server: target.server,
        tls: target.tls,
        clock,
        log: logger,
        onChange: (c) => trigger.notice(c.stack, c.attributed, c.what),
      });
    }
  }
  const etcdWatch = options.coordinate
    ? new EtcdSnapshotWatch({
        // The backend's stacks listed once a round; one never applied has nothing to look at.
        // With replicas, each looks at the stacks it owns: one look per cluster, one series.
        stacks: async () =>
          watchedStacks(
            await source.discover(),
            new Set(await (engine as Engine).listStacks()),
            (stack) => coordinator === undefined || coordinator.owner(stack) === settings.replicaId,
          ),
        forget: (stack) => metrics.forgetEtcdStack(stack),
        stackResources: (stack) => (engine as Engine).stackResources(stack),
        seen: (stack, masters) => metrics.observeEtcdSnapshots(stack.name, stack.intervalSeconds, masters),
        failed: (stack, reason) => {
          metrics.etcdWatchFailed(stack);
          logger.warn({ stack, err: redact(reason) }, "etcd watch: could not read the masters' last good snapshots");
        },
      })
    : undefined;
  return {
    settings,
    logger,
    registry,
    metrics,
    engine,
    scheduler,
    history,
    coordinator,
    shared,
    changes,
    hostWatch,
    etcdWatch,
  };
}

/**
 * Drains the pools an update removes, through the guest API of the stack's adminKubeconfig; a
 * stack without state has no nodes. Failing (unreachable, pods left at the timeout) keeps the
 * update from running.
 */
async function drainRemovedPools(
  engine: Engine,
  logger: pino.Logger,
  redact: (text: string) => string,
  stack: string,
  components: readonly string[],
): Promise<DrainedPools | undefined> {
  const resources = await engine.stackResources(stack);
  const api = resources === undefined ? undefined : guestApiFromState(resources, stack);
  if (api === undefined) return undefined;
  try {
    logger.info({ stack, pools: components }, "draining the node pools the update removes");
    const report = await drainPools(api, components);
    const pools = Object.fromEntries(report.pools);
    logger.info({ stack, pools, evicted: report.evicted, ms: report.ms }, "node pools drained");
    return {
      record: { pools, evicted: report.evicted, ms: report.ms },
      finish: () =>
        deletePoolNodes(api, report.pools)
          .catch((err: Error) => logger.warn({ stack, err: redact(err.message) }, "removed pools' Nodes not deleted"))
          .finally(() => api.close()),
    };
  } catch (err) {
    api.close();
    throw new Error(
      `cannot drain ${components.join(", ")} before the update removes it: ${(err as Error).message}; ` +
        `the pool stays until it can be drained`,
      { cause: err },
    );
  }
}

/**
 * Rolls the stack's guest cluster to its file's `kubernetes.version` (automation/access/upgrade.ts)
 * through the API of its adminKubeconfig, when some node or the cluster's configuration runs
 * another. A cluster known to be on the version is not looked at again; one whose API cannot be
 * reached is looked at again at the next pass (a warning, not a failure: a stack whose cluster is
 * down is the update's to report). A refused change (a downgrade) or a failed node fails the pass.
 */
/**
 * A KVM stack's nodes whose pods are behind their StatefulSet's template after the update are
 * restarted on it one at a time, each drained first (automation/access/roll.ts). Nothing to do
 * (the usual pass) costs one look at the host's StatefulSets and pods. A cluster whose API cannot
 * be reached is left for the next pass (a warning: its node may be the one to restart... but a
 * drain needs the API, so nothing is deleted without it).
 */
async function rollGuest(
  engine: Engine,
  logger: pino.Logger,
  env: NodeJS.ProcessEnv,
  stack: DiscoveredStack,
  signal: AbortSignal,
  progress: (line: string) => void,
): Promise<RollRecord | undefined> {
  const namespace = stack.kvmNamespace;
  const clusterId = stack.policyConfig?.clusterId;
  if (namespace === undefined || clusterId === undefined) return undefined;
  const resources = await engine.stackResources(stack.name);
  if (resources === undefined || adminKubeconfigOutput(resources) === undefined) return undefined;
  const kubectlPath = findKubectl(process.env);
  const host = new GuestKubectl(kubectlPath, hostKubeconfig(resources, env));
  let guest: GuestKubectl | undefined;
  let shells: NodeShells | undefined;
  try {
    const sets = await readNodeSets(host, namespace, clusterId);
    if (rollSteps(sets).length === 0) return undefined;
    guest = new GuestKubectl(kubectlPath, adminKubeconfigFromState(resources, stack.name));
    let view: ClusterVersions;
    try {
      view = await readVersions(guest);
    } catch (err) {
      logger.warn({ stack: stack.name, err: (err as Error).message }, "roll: cannot reach the guest cluster to drain");
      return undefined;
    }
    shells = new NodeShells(guest, pauseImageOf(view.cluster.replace(/^v/, "")), "roll");
    await shells.close(); // a leftover of an interrupted roll
    const report = await rollNodes(
      host,
      guest,
      shells,
      namespace,
      clusterId,
      (line) => {
        logger.info({ stack: stack.name, roll: line }, "roll");
        progress(line);
      },
      { signal, sets },
    );
    return {
      nodes: report.nodes.map((n) => ({ node: n.node, seconds: Math.round(n.seconds * 10) / 10 })),
      seconds: Math.round(report.seconds * 10) / 10,
    };
  } finally {
    await shells?.close();
    guest?.close();
    host.close();
  }
}

async function upgradeGuest(
  engine: Engine,
  logger: pino.Logger,
  stack: DiscoveredStack,
  signal: AbortSignal,
  progress: (line: string) => void,
  upgraded: Map<string, string>,
): Promise<UpgradeRecord | undefined> {
  const wanted = stack.kubernetes;
  if (wanted === undefined || upgraded.get(stack.name) === wanted.version) return undefined;
  const resources = await engine.stackResources(stack.name);
  if (resources === undefined || adminKubeconfigOutput(resources) === undefined) return undefined;
  const kubectl = new GuestKubectl(findKubectl(process.env), adminKubeconfigFromState(resources, stack.name));
  let shells: NodeShells | undefined;
  try {
    let view: ClusterVersions;
    try {
      view = await readVersions(kubectl);
    } catch (err) {
      logger.warn({ stack: stack.name, err: (err as Error).message }, "cannot read the cluster's Kubernetes versions");
      return undefined;
    }
    if (upgradeSteps(view, wanted.version).length === 0) {
      upgraded.set(stack.name, wanted.version);
      return undefined;
    }
    if (wanted.nodeImage !== true) throw new Error(APT_UPGRADE_UNSUPPORTED);
    shells = new NodeShells(kubectl, pauseImageOf(view.cluster.replace(/^v/, "")), "upgrade");
    await shells.close(); // a leftover of an interrupted rollout
    const report = await upgradeCluster(
      kubectl,
      shells,
      wanted.version,
      (line) => {
        logger.info({ stack: stack.name, upgrade: line }, "upgrade");
        progress(line);
      },
      { pinCoreDns: wanted.nodeImage === true, signal, view },
    );
    upgraded.set(stack.name, wanted.version);
    return {
      from: report.from,
      to: report.to,
      nodes: report.nodes.map((n) => ({ node: n.node, seconds: Math.round(n.seconds * 10) / 10 })),
      seconds: Math.round(report.seconds * 10) / 10,
    };
  } finally {
    await shells?.close();
    kubectl.close();
  }
}

/** The g8s policies over a stack's previewed resources; only stacks read with spec checks carry a policy config. */
export async function checkG8sPolicies(
  stack: DiscoveredStack,
  resources: readonly PreviewResource[],
): Promise<Violation[]> {
  return stack.policyConfig ? evaluatePolicies(G8S_POLICIES, resources, stack.policyConfig) : [];
}

/** The real engine for the settings' project, state directory and backend. */
export async function createEngine(
  settings: Settings,
  baseEnv: NodeJS.ProcessEnv,
  logger: pino.Logger,
  hostGone?: (host: string) => boolean,
): Promise<PulumiEngine> {
  const cli = await findPulumi({ env: baseEnv });
  logger.info({ cli: cli.binary, version: cli.version, source: cli.source }, "pulumi CLI");
  const env = engineEnvironment({
    stateDir: settings.stateDir,
    backendUrl: settings.backendUrl,
    passphrase: settings.passphrase,
    passphraseFile: settings.passphraseFile,
    pathPrepend: [cli.binDir, path.join(settings.projectDir, "node_modules", ".bin")],
    base: baseEnv,
  });
  mkdirSync(settings.stateDir, { recursive: true });
  prepareStateDir(env);
  if (env.PULUMI_CONFIG_PASSPHRASE === undefined && env.PULUMI_CONFIG_PASSPHRASE_FILE === undefined) {
    logger.warn({}, "no PULUMI_CONFIG_PASSPHRASE(_FILE): stacks with the passphrase secrets provider will fail");
  }
  const plugins = await ensurePlugins({
    cli,
    env,
    projectDir: settings.projectDir,
    toolsDir: path.join(PROJECT_ROOT, ".tools"),
    offline: settings.offline,
  });
  for (const p of plugins) {
    if (p.problem !== undefined) logger.warn({ plugin: p.name, version: p.version }, p.problem);
    else logger.info({ plugin: p.name, version: p.version, state: p.state }, "provider plugin ready");
  }
  return new PulumiEngine({
    projectDir: settings.projectDir,
    workspaceDir: path.join(settings.stateDir, "workspace"),
    cli,
    env,
    plugins,
    ...(hostGone ? { hostGone } : {}),
  });
}

export function buildServer(reconciler: Reconciler): ApiServer {
  const { scheduler, shared, history } = reconciler;
  // With replicas, each stack as its newest status says: the owner's last pass, wherever asked.
  const shown = (own: StackStatus[]) => shared?.view.merge(own) ?? own;
  return createApiServer({
    api: {
      isReady: () => scheduler.isReady(),
      list: () => shown(scheduler.list()),
      get: (name) => {
        const own = scheduler.get(name);
        return own === undefined ? undefined : shown([own])[0];
      },
      requestRun: (name) => scheduler.requestRun(name),
      passes: (name) => history.of(name),
      noticeEvent: (name, source) => {
        if (scheduler.get(name) === undefined) return false;
        reconciler.changes?.notice(name, true, `event from ${source}`);
        return reconciler.changes !== undefined;
      },
    },
    registry: reconciler.registry,
    token: reconciler.settings.apiToken,
    logger: reconciler.logger,
  });
}
