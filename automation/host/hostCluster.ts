/**
 * HostCluster: sequences the I/O of `g8s host up | down | status` over one host dir. Everything
 * it decides comes from the pure modules beside it (config, pki table, nodes, pid records,
 * ports); this class starts and stops processes, writes files and waits for health.
 */
import { spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  constants as fsConstants,
  openSync,
  promises as fs,
  readFileSync,
  writeSync,
} from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { renderKubeconfig } from "../../components/pki/kubeconfig";
import { PROJECT_ROOT } from "../engine/toolchain";
import { processInfo, residentBytes } from "../os/processes";
import {
  BINARIES,
  CLUSTER_NAME,
  COMPONENT_PORTS,
  COMPONENTS,
  componentArgs,
  componentEnv,
  hostLayout,
  KWOK_STAGE_FILES,
  LISTEN_HOST,
  START_LAYERS,
  toolchainPaths,
  type ComponentName,
  type HostLayout,
  type HostPorts,
  type KubeconfigUser,
  type Toolchain,
} from "./config";
import { ApiError, httpsRequest, KubeApi, type TlsFiles } from "./https";
import {
  DEFAULT_NODE_SHAPE,
  HOST_NODE_LABEL,
  isNodeReady,
  isNodeUsable,
  kwokRbacObjects,
  nodeActions,
  nodeObjects,
  type NodeShape,
  type ObservedNode,
} from "./nodes";
import { formatPidRecord, parsePidRecord, recordState, type PidRecord, type RecordState } from "./pidfile";
import { ADMIN_USER, ensureHostPki, KWOK_USER, readOptional, writeFileAtomic, type RealNodeCertificates } from "./pki";
import { ephemeralPortRange, parseHostState, pickPorts, portIsFree, type HostState } from "./ports";
import {
  DEVICE_PLUGIN_NAME,
  DEVICE_RESOURCES,
  devicePluginDaemonSet,
  REAL_NODE_CERT,
  RealNode,
  type RealNodeStatus,
} from "./realNode";

/** A failure of a host command: one line, plus the details (a log's tail) to print under it. */
export class HostError extends Error {
  constructor(
    message: string,
    readonly details?: string,
  ) {
    super(message);
    this.name = "HostError";
  }
}

/** How long each wait may take before `up` gives up, and the grace `down` gives a process. */
export interface HostTimeouts {
  readonly etcd: number;
  readonly apiserver: number;
  readonly component: number;
  readonly nodes: number;
  readonly stopGrace: number;
  /** The real node: boot, kubelet registered, Ready with both device resources allocatable. */
  readonly realNode: number;
}

export const DEFAULT_TIMEOUTS: HostTimeouts = {
  etcd: 30_000,
  apiserver: 90_000,
  component: 60_000,
  nodes: 60_000,
  stopGrace: 10_000,
  realNode: 300_000,
};

/** Lines of a component's log printed under a failure. */
export const LOG_TAIL_LINES = 25;

export interface HostClusterOptions {
  /** The host dir: certificates, data, logs, pid files, kubeconfig. */
  readonly hostDir: string;
  /** The environment `g8s` runs in: PATH and HOME pass to the components, nothing else. */
  readonly env: NodeJS.ProcessEnv;
  /** Binaries and KWOK stages; default `<repo>/.tools`. */
  readonly toolchain?: Toolchain;
  readonly nodeShape?: NodeShape;
  /** Receives one line per step (already prefixed with the elapsed time). */
  readonly progress?: (line: string) => void;
  readonly timeouts?: Partial<HostTimeouts>;
  /** `up --real-node`: also boot the real node (realNode.ts; root, the node image). */
  readonly realNode?: boolean;
}

export interface UpResult {
  readonly kubeconfig: string;
  readonly started: readonly ComponentName[];
  readonly alreadyRunning: readonly ComponentName[];
  readonly elapsedMs: number;
  /** With --real-node: whether the node was started by this `up`, and when it was Ready (ms after its start). */
  readonly realNode?: { readonly started: boolean; readonly readyAfterMs: number };
}

export interface DownResult {
  readonly stopped: readonly { readonly name: ComponentName; readonly pid: number; readonly killed: boolean }[];
  readonly purged: boolean;
  /** Whether a real node was running and was stopped. */
  readonly realNodeStopped: boolean;
}

export interface ComponentStatus {
  readonly name: ComponentName;
  readonly pid: number | null;
  readonly running: boolean;
  /** `stopped` when there is no pid file; otherwise what became of the recorded process. */
  readonly state: RecordState | "stopped";
  /** `127.0.0.1:<port>` of its main port (etcd: the client port). */
  readonly address: string | null;
  readonly ports: Readonly<Record<string, number>>;
  readonly rssBytes: number | null;
}

export interface HostStatus {
  readonly hostDir: string;
  readonly kubeconfig: string;
  /** Whether the host dir has been set up (`host.json` exists). */
  readonly initialized: boolean;
  readonly components: readonly ComponentStatus[];
  readonly api: { readonly url: string | null; readonly ready: boolean };
  readonly nodes: { readonly total: number; readonly ready: number } | null;
  /** The real node, when this host dir has one (`up --real-node` ran once). */
  readonly realNode?: RealNodeStatus;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The binaries and stage files a host cluster needs that the toolchain dir lacks. */
export async function missingTools(toolchain: Toolchain): Promise<string[]> {
  const missing: string[] = [];
  for (const c of COMPONENTS) {
    try {
      await fs.access(path.join(toolchain.binDir, BINARIES[c]), fsConstants.X_OK);
    } catch {
      missing.push(path.join(toolchain.binDir, BINARIES[c]));
    }
  }
  for (const f of KWOK_STAGE_FILES) {
    try {
      await fs.access(path.join(toolchain.stagesDir, f), fsConstants.R_OK);
    } catch {
      missing.push(path.join(toolchain.stagesDir, f));
    }
  }
  return missing;
}

/** One line naming what is missing and the command that builds it. */
export function missingToolsMessage(missing: readonly string[], toolchain: Toolchain): string {
  const binaries = missing.filter((m) => path.dirname(m) === toolchain.binDir).map((m) => path.basename(m));
  const stages = missing.length - binaries.length;
  const parts = [
    ...(binaries.length > 0 ? [`${binaries.join(", ")} in ${toolchain.binDir}`] : []),
    ...(stages > 0 ? [`${stages} KWOK stage file(s) in ${toolchain.stagesDir}`] : []),
  ];
  return `missing ${parts.join(" and ")}: run 'npm run toolchain' to build them`;
}

/** The last `lines` lines of a text. */
export function tail(text: string, lines: number = LOG_TAIL_LINES): string {
  const all = text.replace(/\n+$/, "").split("\n");
  return all.slice(-lines).join("\n");
}

export class HostCluster {
  readonly layout: HostLayout;
  private readonly toolchain: Toolchain;
  private readonly timeouts: HostTimeouts;
  private readonly shape: NodeShape;
  private readonly spawned = new Set<ComponentName>();
  private readonly exits = new Map<ComponentName, string>();
  private readonly logOffsets = new Map<ComponentName, number>();
  private readonly real: RealNode;
  private t0 = Date.now();

  constructor(private readonly options: HostClusterOptions) {
    this.layout = hostLayout(options.hostDir);
    this.toolchain = options.toolchain ?? toolchainPaths(PROJECT_ROOT);
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.shape = options.nodeShape ?? DEFAULT_NODE_SHAPE;
    this.real = new RealNode(
      this.layout,
      path.join(PROJECT_ROOT, "tools", "node-image", "nspawn-node.sh"),
      path.join(this.toolchain.binDir, "..", "share"),
    );
  }

  /** The real node's certificates when `up --real-node` asks for it. */
  private realNodeCertificates(): RealNodeCertificates | undefined {
    if (!this.options.realNode) return undefined;
    return { apiAddress: this.real.plan.bridgeAddress, certName: REAL_NODE_CERT, nodeName: this.real.plan.name };
  }

  private say(line: string): void {
    const s = ((Date.now() - this.t0) / 1000).toFixed(1).padStart(5);
    this.options.progress?.(`[${s}s] ${line}`);
  }

  // ---------------------------------------------------------------- up

  /** Starts whatever is not running and returns when the API is ready and every node is Ready. */
  async up(): Promise<UpResult> {
    this.t0 = Date.now();
    const missing = await missingTools(this.toolchain);
    if (missing.length > 0) throw new HostError(missingToolsMessage(missing, this.toolchain));
    if (this.options.realNode) this.checkRealNodeNeeds();
    await fs.mkdir(this.layout.dir, { recursive: true, mode: 0o700 });
    const release = await this.lock();
    const started: ComponentName[] = [];
    const alreadyRunning: ComponentName[] = [];
    let api: KubeApi | undefined;
    try {
      const state = await this.loadOrCreateState();
      const pki = await ensureHostPki(this.layout, new Date(), this.realNodeCertificates());
      this.say(
        pki.issued.length === 0
          ? "certificates: up to date"
          : `certificates: issued ${pki.issued.map((i) => `${i.name} (${i.reason})`).join(", ")}`,
      );
      await this.writeKubeconfigs(state.ports);
      api = this.adminApi(state.ports);
      const running = new Map<ComponentName, PidRecord>();
      for (const c of COMPONENTS) {
        const record = await this.readRecord(c);
        if (record && recordState(record) === "running") running.set(c, record);
      }
      // Every port of what will start is checked before anything starts: no half-started cluster
      // because of a port someone took while the host cluster was down.
      for (const c of COMPONENTS) if (!running.has(c)) await this.checkPorts(c, state.ports);
      if (this.options.realNode) this.checkApiServerServesRealNode(running.get("kube-apiserver"), pki.issued);
      for (const [i, layer] of START_LAYERS.entries()) {
        if (i === START_LAYERS.length - 1) await this.ensureApiObjects(api);
        for (const c of layer) {
          const record = running.get(c);
          if (record && recordState(record) === "running") {
            alreadyRunning.push(c);
            this.say(`${c}: running (pid ${record.pid})`);
            if (pki.issued.length > 0) this.say(`${c}: certificates changed; 'g8s host down' then 'up' to load them`);
          } else {
            await this.start(c, state.ports);
            started.push(c);
          }
        }
        await Promise.all(layer.map((c) => this.waitHealthy(c, state.ports, api as KubeApi)));
      }
      await this.waitNodesReady(api);
      await this.waitFor("default service account", this.timeouts.component, async () => {
        const res = await (api as KubeApi).request("GET", "/api/v1/namespaces/default/serviceaccounts/default");
        return res.status === 200 ? true : `HTTP ${res.status}`;
      });
      const realNode = this.options.realNode ? await this.upRealNode(api, state.ports) : undefined;
      const elapsedMs = Date.now() - this.t0;
      this.say(
        started.length === 0
          ? "host cluster already running"
          : `host cluster ready (${started.length} process(es) started)`,
      );
      return { kubeconfig: this.layout.kubeconfig, started, alreadyRunning, elapsedMs, realNode };
    } catch (err) {
      const failure =
        err instanceof HostError
          ? err
          : err instanceof ApiError
            ? new HostError(`kube-apiserver: ${err.message}`)
            : err;
      if (failure instanceof HostError && started.length > 0) {
        const hint = `(started and still running: ${started.join(", ")}; 'g8s host down --host-dir ${this.layout.dir}' stops them)`;
        throw new HostError(failure.message, [failure.details, hint].filter(Boolean).join("\n"));
      }
      throw failure;
    } finally {
      api?.close();
      await release();
    }
  }

  private async loadOrCreateState(): Promise<HostState> {
    const text = await readOptional(this.layout.stateFile);
    if (text !== undefined) {
      try {
        return parseHostState(text, this.layout.stateFile);
      } catch (err) {
        throw new HostError(`${(err as Error).message}: fix it, or 'g8s host down --purge' to start afresh`);
      }
    }
    const [low] = ephemeralPortRange();
    const ports = await pickPorts((p) => portIsFree(p), low);
    const state: HostState = { version: 1, createdAt: new Date().toISOString(), ports };
    await writeFileAtomic(this.layout.stateFile, `${JSON.stringify(state, null, 2)}\n`, 0o644);
    this.say(
      `ports chosen: ${Object.entries(ports)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
    );
    return state;
  }

  private async writeKubeconfigs(ports: HostPorts): Promise<void> {
    const server = `https://${LISTEN_HOST}:${ports.apiserver}`;
    const caCertPem = await fs.readFile(this.layout.cert("ca"), "utf8");
    const users: [string, string, string][] = [
      [this.layout.kubeconfig, "admin", ADMIN_USER],
      [this.layout.componentKubeconfig("controller-manager"), "controller-manager", "system:kube-controller-manager"],
      [this.layout.componentKubeconfig("scheduler"), "scheduler", "system:kube-scheduler"],
      [this.layout.componentKubeconfig("kwok" satisfies KubeconfigUser), "kwok", KWOK_USER],
    ];
    for (const [file, certName, userName] of users) {
      const text = renderKubeconfig({
        clusterName: CLUSTER_NAME,
        server,
        caCertPem,
        userName,
        clientCertPem: await fs.readFile(this.layout.cert(certName), "utf8"),
        clientKeyPem: await fs.readFile(this.layout.key(certName), "utf8"),
      });
      if ((await readOptional(file)) !== text) await writeFileAtomic(file, text, 0o600);
    }
  }

  private adminApi(ports: HostPorts): KubeApi {
    return new KubeApi(`https://${LISTEN_HOST}:${ports.apiserver}`, this.tlsFor("ca", "admin"));
  }

  private tlsFor(ca: "ca" | "etcd/ca", client?: string): TlsFiles {
    // Small files, read when a client is made.
    return {
      ca: readFileSync(this.layout.cert(ca), "utf8"),
      ...(client
        ? { cert: readFileSync(this.layout.cert(client), "utf8"), key: readFileSync(this.layout.key(client), "utf8") }
        : {}),
    };
  }

  /** The RBAC KWOK needs and the fake nodes: created, resized or pruned to match the shape. */
  private async ensureApiObjects(api: KubeApi): Promise<void> {
    const [role, binding] = kwokRbacObjects();
    const name = (o: Record<string, unknown>) => (o.metadata as { name: string }).name;
    await api.apply(`/apis/rbac.authorization.k8s.io/v1/clusterroles/${encodeURIComponent(name(role))}`, role);
    await api.apply(
      `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${encodeURIComponent(name(binding))}`,
      binding,
    );
    const existing = await api.get<{ items: ObservedNode[] }>(
      `/api/v1/nodes?labelSelector=${encodeURIComponent(`${HOST_NODE_LABEL}=true`)}`,
    );
    const actions = nodeActions(nodeObjects(this.shape), existing.items);
    for (const node of actions.create) await api.create("/api/v1/nodes", node);
    for (const node of actions.resize) {
      await api.mergePatch(`/api/v1/nodes/${node.metadata.name}/status`, {
        status: { capacity: node.status.capacity, allocatable: node.status.allocatable },
      });
    }
    for (const n of actions.remove) await api.delete(`/api/v1/nodes/${n}`);
    const changes = [
      actions.create.length > 0 ? `created ${actions.create.map((n) => n.metadata.name).join(", ")}` : "",
      actions.resize.length > 0 ? `resized ${actions.resize.map((n) => n.metadata.name).join(", ")}` : "",
      actions.remove.length > 0 ? `removed ${actions.remove.join(", ")}` : "",
    ].filter(Boolean);
    if (changes.length > 0) this.say(`nodes: ${changes.join("; ")}`);
  }

  /** Fails naming the component and the port when another program listens on one of its ports. */
  private async checkPorts(c: ComponentName, ports: HostPorts): Promise<void> {
    for (const key of COMPONENT_PORTS[c]) {
      if (!(await portIsFree(ports[key]))) {
        throw new HostError(
          `${c}: ${LISTEN_HOST}:${ports[key]} (${key}) is in use by another program: stop it, ` +
            `or 'g8s host down --purge' to start afresh with new ports`,
        );
      }
    }
  }

  /** Starts one component detached (its own session), logs appended to logs/<name>.log, pid file written. */
  private async start(c: ComponentName, ports: HostPorts): Promise<void> {
    await this.checkPorts(c, ports); // again: a moment may have passed since the check before the first start
    const binary = path.join(this.toolchain.binDir, BINARIES[c]);
    const args = componentArgs(c, this.layout, ports, this.toolchain, { realNode: this.options.realNode });
    await fs.mkdir(this.layout.logDir, { recursive: true });
    await fs.mkdir(this.layout.runDir, { recursive: true });
    if (c === "etcd") await fs.mkdir(this.layout.etcdDataDir, { recursive: true, mode: 0o700 });
    if (c === "kwok") await fs.mkdir(this.layout.kwokWorkDir, { recursive: true });
    const logFile = this.layout.logFile(c);
    const fd = openSync(logFile, "a", 0o600);
    let pid: number;
    try {
      writeSync(fd, `\n=== ${new Date().toISOString()} g8s host up: ${binary} ${args.join(" ")}\n`);
      this.logOffsets.set(c, (await fs.stat(logFile)).size);
      const child = spawn(binary, args, {
        cwd: this.layout.dir,
        env: componentEnv(this.options.env, this.layout),
        detached: true,
        stdio: ["ignore", fd, fd],
      });
      pid = await new Promise<number>((resolve, reject) => {
        child.once("spawn", () => resolve(child.pid as number));
        child.once("error", (err) => reject(new HostError(`${c}: cannot start ${binary}: ${err.message}`)));
      });
      this.spawned.add(c);
      child.once("exit", (code, signal) => this.exits.set(c, signal ? `killed by ${signal}` : `exit code ${code}`));
      child.unref();
    } finally {
      closeSync(fd);
    }
    const info = processInfo(pid);
    const record: PidRecord = { pid, startedAtMs: info?.startedAtMs ?? Date.now(), binary };
    await writeFileAtomic(this.layout.pidFile(c), formatPidRecord(record), 0o644);
    const where = COMPONENT_PORTS[c].map((k) => `${LISTEN_HOST}:${ports[k]}`).join(", ");
    this.say(`${c}: started (pid ${pid}) on ${where}`);
  }

  /** Health of one component: true, or why not (for the timeout message). */
  private async health(c: ComponentName, ports: HostPorts, api: KubeApi): Promise<true | string> {
    try {
      switch (c) {
        case "etcd": {
          const res = await httpsRequest(
            `https://${LISTEN_HOST}:${ports.etcdClient}/health`,
            this.tlsFor("etcd/ca", "etcd/healthcheck-client"),
            { timeoutMs: 2000 },
          );
          return res.status === 200 && /"health":\s*"true"/.test(res.body) ? true : `HTTP ${res.status} ${res.body}`;
        }
        case "kube-apiserver":
          return (await api.ready()) ? true : "/readyz not ok";
        case "kube-controller-manager":
        case "kube-scheduler": {
          const port = c === "kube-scheduler" ? ports.scheduler : ports.controllerManager;
          const res = await httpsRequest(`https://${LISTEN_HOST}:${port}/healthz`, this.tlsFor("ca"), {
            timeoutMs: 2000,
          });
          return res.status === 200 ? true : `HTTP ${res.status} ${res.body}`;
        }
        case "kwok":
          return await new Promise<true | string>((resolve) => {
            const req = http.get(`http://${LISTEN_HOST}:${ports.kwok}/healthz`, { timeout: 2000 }, (res) => {
              res.resume();
              resolve(res.statusCode === 200 ? true : `HTTP ${res.statusCode}`);
            });
            req.on("timeout", () => req.destroy(new Error("timed out")));
            req.on("error", (err) => resolve(err.message));
          });
      }
    } catch (err) {
      return (err as Error).message;
    }
  }

  private async waitHealthy(c: ComponentName, ports: HostPorts, api: KubeApi): Promise<void> {
    const timeout =
      c === "etcd" ? this.timeouts.etcd : c === "kube-apiserver" ? this.timeouts.apiserver : this.timeouts.component;
    const record = await this.readRecord(c);
    await this.waitFor(
      `${c} to be healthy`,
      timeout,
      () => this.health(c, ports, api),
      c,
      () => {
        const exit = this.exits.get(c);
        if (exit) return `${c} exited (${exit}) while starting`;
        // A child of this run is judged by its exit event (which carries the status); one started
        // by an earlier `up` only by its pid record.
        if (!this.spawned.has(c) && record && recordState(record) !== "running") {
          return `${c} (pid ${record.pid}) stopped while starting`;
        }
        return undefined;
      },
    );
    this.say(`${c}: ${c === "kube-apiserver" ? "ready" : "healthy"}`);
  }

  private async waitNodesReady(api: KubeApi): Promise<void> {
    const wanted = new Set(nodeObjects(this.shape).map((n) => n.metadata.name));
    await this.waitFor(
      "the nodes to be Ready",
      this.timeouts.nodes,
      async () => {
        const list = await api.get<{ items: ObservedNode[] }>(
          `/api/v1/nodes?labelSelector=${encodeURIComponent(`${HOST_NODE_LABEL}=true`)}`,
        );
        const usable = list.items.filter((n) => wanted.has(n.metadata.name) && isNodeUsable(n)).length;
        return usable === wanted.size ? true : `${usable}/${wanted.size} Ready and untainted`;
      },
      "kwok",
    );
    this.say(`nodes: ${wanted.size}/${wanted.size} Ready`);
  }

  /**
   * Polls `check` until it says true. `failed` ends the wait early (a process died); then, or at
   * the timeout, the error names the component and carries the tail of its log.
   */
  private async waitFor(
    what: string,
    timeoutMs: number,
    check: () => Promise<true | string>,
    component?: ComponentName,
    failed?: () => string | undefined,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const failure = failed?.();
      if (failure) throw new HostError(failure, await this.logTail(component));
      const result = await check();
      if (result === true) return;
      if (Date.now() > deadline) {
        throw new HostError(
          `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what} (last: ${result})`,
          component ? await this.logTail(component) : undefined,
        );
      }
      await sleep(150);
    }
  }

  /** The tail of a component's log: what this run wrote when it started the component, else the file's end. */
  private async logTail(c: ComponentName | undefined): Promise<string | undefined> {
    if (!c) return undefined;
    const text = await readOptional(this.layout.logFile(c));
    if (text === undefined) return undefined;
    const offset = this.logOffsets.get(c) ?? 0;
    const body = Buffer.from(text).subarray(offset).toString("utf8");
    return `${this.layout.logFile(c)} (last lines):\n${tail(body || text)}`;
  }

  private async readRecord(c: ComponentName): Promise<PidRecord | undefined> {
    const text = await readOptional(this.layout.pidFile(c));
    return text === undefined ? undefined : parsePidRecord(text);
  }

  /** Serialises `up` and `down` on one host dir; a lock left by a dead command is taken over. */
  private async lock(): Promise<() => Promise<void>> {
    const me = processInfo(process.pid);
    const mine: PidRecord = {
      pid: process.pid,
      startedAtMs: me?.startedAtMs ?? Date.now(),
      binary: me?.argv[0] ?? process.execPath,
    };
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.writeFile(this.layout.lockFile, formatPidRecord(mine), { flag: "wx", mode: 0o644 });
        return async () => {
          await fs.rm(this.layout.lockFile, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw err;
        const holder = parsePidRecord((await readOptional(this.layout.lockFile)) ?? "");
        if (holder && recordState(holder) === "running") {
          throw new HostError(
            `another g8s host command (pid ${holder.pid}) is working on ${this.layout.dir}: wait for it to finish`,
          );
        }
        await fs.rm(this.layout.lockFile, { force: true });
      }
    }
  }

  // ---------------------------------------------------------------- real node

  /** What --real-node needs before anything starts: root, the node image, the device plugin's image. */
  private checkRealNodeNeeds(): void {
    if (process.getuid?.() !== 0) {
      throw new HostError("--real-node needs root (a system container, a bridge and a host route): run as root");
    }
    const rootfs = path.join(this.toolchain.binDir, "..", "share", "node-image", "rootfs");
    if (!existsSync(rootfs)) {
      throw new HostError(`--real-node: the node image (${rootfs}) is missing: run 'bash tools/build.sh node-image'`);
    }
    try {
      this.real.image();
      this.real.kubernetesVersion();
    } catch (err) {
      throw new HostError(`--real-node: ${(err as Error).message}`);
    }
  }

  /**
   * A running API server loaded its flags and certificate at start: the node reaches it only if it
   * binds every address and serves a certificate naming the bridge address.
   */
  private checkApiServerServesRealNode(
    record: PidRecord | undefined,
    issued: readonly { readonly name: string }[],
  ): void {
    if (!record) return;
    const argv = processInfo(record.pid)?.argv ?? [];
    const why = !argv.includes("--bind-address=0.0.0.0")
      ? "listens on 127.0.0.1 only"
      : issued.some((i) => i.name === "apiserver")
        ? "serves a certificate without the bridge address"
        : undefined;
    if (why) {
      throw new HostError(
        `--real-node: the running kube-apiserver (pid ${record.pid}) ${why}: 'g8s host down' then 'g8s host up --real-node'`,
      );
    }
  }

  /** Files, bridge, system container, device plugin; then waits for the node to be Ready with both devices. */
  private async upRealNode(api: KubeApi, ports: HostPorts): Promise<{ started: boolean; readyAfterMs: number }> {
    const node = this.real;
    const image = node.image();
    const changed = await node.writeFiles(ports.apiserver, node.kubernetesVersion());
    const t = Date.now();
    let started: boolean;
    try {
      node.network();
      started = node.start(image) === "started";
    } catch (err) {
      throw new HostError(`real node ${node.plan.name}: ${(err as Error).message}`, node.consoleTail());
    }
    this.say(
      started
        ? `real node ${node.plan.name}: started (${node.plan.nodeAddress} on ${node.plan.bridge}, pods ${node.plan.podCidr})`
        : `real node ${node.plan.name}: running; ${changed} of its files changed`,
    );
    const ds = devicePluginDaemonSet(image.ref);
    await api.apply(`/apis/apps/v1/namespaces/kube-system/daemonsets/${DEVICE_PLUGIN_NAME}`, ds);
    await this.waitFor(
      `real node ${node.plan.name} to be Ready with ${DEVICE_RESOURCES.join(" and ")}`,
      this.timeouts.realNode,
      async () => {
        if (!node.running())
          throw new HostError(`real node ${node.plan.name}: its system container stopped`, node.consoleTail());
        const s = await node.status(api);
        // A node booted now must have reported since: its Node object outlives a `down`, Ready
        // and with the devices allocatable until the controller notices (heartbeats: whole seconds).
        if (started && !(Date.parse(s.heartbeatAt ?? "") >= Math.floor(t / 1000) * 1000)) {
          return "no status reported since its start";
        }
        if (!s.ready) return "not Ready";
        const missing = DEVICE_RESOURCES.filter((r) => s.devices[r] === "0");
        return missing.length === 0 ? true : `Ready, no allocatable ${missing.join(", ")} yet`;
      },
    );
    const readyAfterMs = Date.now() - t;
    this.say(
      `real node ${node.plan.name}: Ready (${(readyAfterMs / 1000).toFixed(1)} s), ${DEVICE_RESOURCES.join(" and ")} allocatable`,
    );
    return { started, readyAfterMs };
  }

  // ---------------------------------------------------------------- down

  /**
   * Stops the processes of the pid files (those still ours: same pid, same start time, same
   * binary), SIGTERM then SIGKILL after the grace, in reverse start order. `purge` then deletes
   * the host dir, which must carry `host.json` (never an arbitrary folder).
   */
  async down(options: { purge?: boolean } = {}): Promise<DownResult> {
    this.t0 = Date.now();
    const exists = await fs.stat(this.layout.dir).then(
      () => true,
      () => false,
    );
    if (!exists) {
      this.say(`${this.layout.dir} does not exist: nothing to stop`);
      return { stopped: [], purged: false, realNodeStopped: false };
    }
    const hasState = (await readOptional(this.layout.stateFile)) !== undefined;
    if (options.purge && !hasState) {
      const entries = await fs.readdir(this.layout.dir);
      if (entries.length > 0) {
        throw new HostError(
          `${this.layout.dir} has no host.json: not a g8s host dir, refusing to delete it (${entries.length} entries)`,
        );
      }
    }
    const release = await this.lock();
    const stopped: { name: ComponentName; pid: number; killed: boolean }[] = [];
    let realNodeStopped = false;
    try {
      // The node first: its kubelet still reports while the API runs, and an orderly poweroff
      // stops its pods. With --purge its root file system goes too (before the host dir).
      if (this.real.exists()) {
        try {
          realNodeStopped = this.real.stop(options.purge === true);
        } catch (err) {
          throw new HostError(`real node: ${(err as Error).message}`, this.real.consoleTail());
        }
        this.say(`real node ${this.real.plan.name}: ${realNodeStopped ? "stopped" : "not running"}`);
      }
      for (const layer of [...START_LAYERS].reverse()) {
        const results = await Promise.all(layer.map((c) => this.stop(c)));
        for (const r of results) if (r) stopped.push(r);
      }
    } finally {
      await release();
    }
    if (stopped.length === 0 && !realNodeStopped) this.say("nothing was running");
    if (options.purge) {
      await fs.rm(this.layout.dir, { recursive: true, force: true });
      this.say(`deleted ${this.layout.dir}`);
    }
    return { stopped, purged: options.purge === true, realNodeStopped };
  }

  private async stop(c: ComponentName): Promise<{ name: ComponentName; pid: number; killed: boolean } | undefined> {
    const file = this.layout.pidFile(c);
    const text = await readOptional(file);
    if (text === undefined) return undefined;
    const record = parsePidRecord(text);
    if (!record) {
      this.say(`${c}: unreadable pid file removed (nothing signalled)`);
      await fs.rm(file, { force: true });
      return undefined;
    }
    const state = recordState(record);
    if (state !== "running") {
      this.say(`${c}: not running (pid ${record.pid} ${state})`);
      await fs.rm(file, { force: true });
      return undefined;
    }
    const signal = (sig: NodeJS.Signals) => {
      // Checked again right before each signal: never signal a pid that stopped being ours.
      if (recordState(record) !== "running") return false;
      try {
        process.kill(record.pid, sig);
        return true;
      } catch {
        return false;
      }
    };
    signal("SIGTERM");
    let killed = false;
    if (!(await this.gone(record, this.timeouts.stopGrace))) {
      killed = signal("SIGKILL");
      if (!(await this.gone(record, 5000))) {
        throw new HostError(`${c} (pid ${record.pid}) survived SIGKILL; its pid file is kept`);
      }
    }
    await fs.rm(file, { force: true });
    this.say(`${c}: stopped (pid ${record.pid}${killed ? `, SIGKILL after ${this.timeouts.stopGrace / 1000} s` : ""})`);
    return { name: c, pid: record.pid, killed };
  }

  private async gone(record: PidRecord, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (recordState(record) !== "running") return true;
      await sleep(50);
    }
    return recordState(record) !== "running";
  }

  // ---------------------------------------------------------------- status

  async status(): Promise<HostStatus> {
    const stateText = await readOptional(this.layout.stateFile);
    let ports: HostPorts | undefined;
    if (stateText !== undefined) {
      try {
        ports = parseHostState(stateText, this.layout.stateFile).ports;
      } catch {
        ports = undefined;
      }
    }
    const components: ComponentStatus[] = [];
    for (const c of COMPONENTS) {
      const record = await this.readRecord(c);
      const state = record ? recordState(record) : "stopped";
      const running = state === "running";
      const portMap = Object.fromEntries(COMPONENT_PORTS[c].map((k) => [k, ports?.[k] ?? 0]));
      components.push({
        name: c,
        pid: record?.pid ?? null,
        running,
        state,
        address: ports ? `${LISTEN_HOST}:${ports[COMPONENT_PORTS[c][0]]}` : null,
        ports: ports ? portMap : {},
        rssBytes: running && record ? (residentBytes(record.pid) ?? null) : null,
      });
    }
    const apiRunning = components.find((c) => c.name === "kube-apiserver")?.running === true;
    let ready = false;
    let nodes: HostStatus["nodes"] = null;
    let realNode: RealNodeStatus | undefined;
    const url = ports ? `https://${LISTEN_HOST}:${ports.apiserver}` : null;
    if (ports && apiRunning) {
      const api = this.adminApi(ports);
      try {
        ready = await api.ready();
        if (ready) {
          const list = await api.get<{ items: ObservedNode[] }>(
            `/api/v1/nodes?labelSelector=${encodeURIComponent(`${HOST_NODE_LABEL}=true`)}`,
          );
          nodes = { total: list.items.length, ready: list.items.filter(isNodeReady).length };
          if (this.real.exists()) realNode = await this.real.status(api);
        }
      } catch {
        // Not ready enough to answer: reported as such.
      } finally {
        api.close();
      }
    }
    if (realNode === undefined && this.real.exists()) realNode = await this.real.status(undefined);
    return {
      hostDir: this.layout.dir,
      kubeconfig: this.layout.kubeconfig,
      initialized: stateText !== undefined,
      components,
      api: { url, ready },
      nodes,
      ...(realNode ? { realNode } : {}),
    };
  }
}
