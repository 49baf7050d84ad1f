/**
 * `g8s lab up | down`: a KVM-platform guest cluster on this machine, end to end. The stack is
 * applied for real (the reconciler's `up` through the Kubernetes provider) to a local host
 * cluster (`g8s host up`), which holds what the platform renders: each node's user-data and its
 * files as Secrets. Each QEMU pod's node then boots from exactly those documents as a system
 * container of the node image (`tools/node-image`): real systemd, cloud-init, containerd,
 * kubelet and kubeadm. The host cluster's nodes are simulated (KWOK), so its pods run nothing;
 * the lab's nodes stand in for them, on a bridge of their own.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { parseStackFile, type KvmClusterSpec } from "../../components/spec";
import { PROJECT_ROOT } from "../engine/toolchain";
import { HostCluster } from "../host/hostCluster";
import { labPlan, metaData, networkConfig, serviceRoutes, type LabNode, type LabPlan } from "./plan";

export class LabError extends Error {
  constructor(
    message: string,
    /** What to show under the message: a console's last lines, a command's output. */
    readonly details?: string,
  ) {
    super(message);
    this.name = "LabError";
  }
}

export interface LabOptions {
  /** The stack file (`<project>/stacks/Pulumi.<id>.yaml`). */
  readonly stackFile: string;
  /** Everything the lab makes: host cluster, state, nodes (default `<project>/.g8s/lab/<id>`). */
  readonly labDir?: string;
  readonly env: NodeJS.ProcessEnv;
  readonly progress: (line: string) => void;
  /** Per phase of a node and for all nodes Ready (default 15 min). */
  readonly timeoutMs?: number;
}

const TOOLS = path.join(PROJECT_ROOT, ".tools");
const NODE_IMAGE = path.join(TOOLS, "share", "node-image");
const NSPAWN = path.join(PROJECT_ROOT, "tools", "node-image", "nspawn-node.sh");
const KUBECTL = path.join(TOOLS, "bin", "kubectl");
const PULUMI = path.join(TOOLS, "bin", "pulumi");
const G8S = path.join(PROJECT_ROOT, "bin", "g8s.js");
const PROVISION = path.join(PROJECT_ROOT, "scripts", "provision.sh");
/** Where the KVM platform's nodes find their files (the Secret share). */
const FILES_MOUNT = "/mnt/g8s-secrets";
const CONSOLE_TAIL_LINES = 40;

interface Loaded {
  readonly spec: KvmClusterSpec;
  readonly projectDir: string;
  readonly labDir: string;
}

/** Reads and checks the stack file: a KVM cluster whose nodes need nothing from the network. */
export function loadLabStack(stackFile: string, labDir?: string): Loaded {
  const file = path.resolve(stackFile);
  if (!existsSync(file)) throw new LabError(`${stackFile}: no such file`);
  const parsed = parseStackFile(readFileSync(file, "utf8"), stackFile);
  const spec = parsed.cluster;
  if (spec.provider !== "kvm") {
    throw new LabError(
      `${stackFile}: provider is '${spec.provider}': the lab runs KVM-platform clusters (provider: kvm)`,
    );
  }
  if (spec.kubernetes.packages !== "image") {
    throw new LabError(
      `${stackFile}: kubernetes.packages is '${spec.kubernetes.packages}': lab nodes have no network to install from; set kubernetes.packages: image`,
    );
  }
  if (spec.pki.backend !== "local") {
    throw new LabError(
      `${stackFile}: pki.backend is '${spec.pki.backend}': the lab has no Vault and no tls plugin; set pki.backend: local`,
    );
  }
  const projectDir = path.dirname(path.dirname(file));
  if (path.basename(path.dirname(file)) !== "stacks" || !existsSync(path.join(projectDir, "Pulumi.yaml"))) {
    throw new LabError(`${stackFile}: must be in the stacks/ folder of a g8s project (beside Pulumi.yaml)`);
  }
  return { spec, projectDir, labDir: path.resolve(labDir ?? path.join(projectDir, ".g8s", "lab", spec.id)) };
}

function run(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv, input?: string) {
  const r = spawnSync(cmd, args, { encoding: "utf8", env, input, maxBuffer: 64 * 1024 * 1024 });
  return { ok: r.status === 0, stdout: r.stdout ?? "", stderr: r.stderr ?? "", error: r.error };
}

/** The node image's kubeadm version must be the spec's: the node checks it and would stop there. */
function checkToolchain(spec: KvmClusterSpec): void {
  for (const f of [path.join(NODE_IMAGE, "rootfs", "lib", "systemd", "systemd"), KUBECTL, PULUMI]) {
    if (!existsSync(f)) throw new LabError(`${f} is missing: run 'npm run toolchain' (it builds the node image)`);
  }
  const kubeadm = path.join(NODE_IMAGE, "rootfs", "usr", "local", "bin", "kubeadm");
  const r = run(kubeadm, ["version", "-o", "short"]);
  const have = r.stdout.trim();
  if (!r.ok) throw new LabError(`the node image has no working kubeadm (${kubeadm}): run 'npm run toolchain'`);
  if (have !== `v${spec.kubernetes.version}`) {
    throw new LabError(
      `kubernetes.version is ${spec.kubernetes.version} but the node image holds kubeadm ${have}: set kubernetes.version: ${have.replace(/^v/, "")}`,
    );
  }
}

/** Elapsed seconds since `t0`, for progress lines. */
function since(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

class Lab {
  private readonly t0 = Date.now();
  /** Ends every wait still running once one node has failed. */
  private readonly waits = new AbortController();
  constructor(
    private readonly o: LabOptions,
    private readonly loaded: Loaded,
    private readonly plan: LabPlan,
  ) {}

  private say(line: string): void {
    this.o.progress(`[lab ${this.loaded.spec.id} ${since(this.t0).padStart(7)}] ${line}`);
  }

  private get dir(): string {
    return this.loaded.labDir;
  }

  private nodeDir(node: LabNode): string {
    return path.join(this.dir, "nodes", node.name);
  }

  /** The node's system-container state (nspawn-node.sh's --state-dir). */
  private stateDir(node: LabNode): string {
    return path.join(this.nodeDir(node), "state");
  }

  /** Runs a command inside a node. */
  private onNode(node: LabNode, ...cmd: string[]) {
    return this.nspawn(["exec", "--state-dir", this.stateDir(node), "--", ...cmd]);
  }

  private passphraseFile(): string {
    const file = path.join(this.dir, "passphrase");
    if (!existsSync(file)) writeFileSync(file, randomBytes(24).toString("base64"), { mode: 0o600 });
    return file;
  }

  private engineEnv(kubeconfig: string): NodeJS.ProcessEnv {
    return {
      ...this.o.env,
      KUBECONFIG: kubeconfig,
      G8S_PROJECT_DIR: this.loaded.projectDir,
      G8S_STATE_DIR: path.join(this.dir, "reconciler"),
      G8S_BACKEND_URL: `file://${path.join(this.dir, "state")}`,
      PULUMI_CONFIG_PASSPHRASE_FILE: this.passphraseFile(),
      PULUMI_CONFIG_PASSPHRASE: undefined,
    };
  }

  /** The stack, applied by the reconciler (one pass: preview, then up) to the host cluster. */
  private async apply(kubeconfig: string): Promise<void> {
    this.say(`applying stack ${this.plan.clusterId} to the host cluster (g8s reconcile)`);
    mkdirSync(path.join(this.dir, "state"), { recursive: true });
    const child = spawn(process.execPath, [G8S, "reconcile", this.plan.clusterId, "--json", "--offline"], {
      env: this.engineEnv(kubeconfig),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    const records = out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { stack?: string; outcome: string; error?: string; durationMs: number });
    const record = records.find((r) => r.stack === this.plan.clusterId);
    if (code !== 0 || !record || !["corrected", "in-sync"].includes(record.outcome)) {
      throw new LabError(
        `applying the stack failed (${record?.outcome ?? `exit ${code}`})`,
        (record?.error ?? err).split("\n").slice(-30).join("\n"),
      );
    }
    this.say(`stack ${record.outcome} in ${(record.durationMs / 1000).toFixed(1)} s`);
  }

  /** `kubectl get <kind> <name> -o <output>` in the guest's namespace on the host cluster. */
  private hostGet(kubeconfig: string, kind: "service" | "secret", name: string, output: string): string {
    const r = run(KUBECTL, ["--kubeconfig", kubeconfig, "-n", this.plan.namespace, "get", kind, name, "-o", output]);
    if (!r.ok || r.stdout.trim() === "") {
      throw new LabError(`reading ${kind} ${this.plan.namespace}/${name} from the host cluster failed`, r.stderr);
    }
    return r.stdout.trim();
  }

  /** A master's Service ClusterIP on the host cluster (its advertised address). */
  private serviceAddress(kubeconfig: string, name: string): string {
    return this.hostGet(kubeconfig, "service", name, "jsonpath={.spec.clusterIP}");
  }

  private secretData(kubeconfig: string, name: string): Record<string, string> {
    const data = (JSON.parse(this.hostGet(kubeconfig, "secret", name, "json")) as { data?: Record<string, string> })
      .data;
    return Object.fromEntries(
      Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
    );
  }

  /**
   * Seeds, files and hosts of every node, from the host cluster's Secrets (what the QEMU pods
   * mount). A running node's files are updated in place, as kubelet updates a mounted Secret:
   * each changed file replaced by a rename in the same directory (the node sees it at once,
   * and its secret-sync path unit fires), files the Secret no longer holds removed. Returns
   * the number of files that changed per node.
   */
  private stage(kubeconfig: string): Map<string, number> {
    const changed = new Map<string, number>();
    const files = new Map<string, Record<string, string>>();
    const masterAddresses = this.plan.nodes
      .filter((n) => n.role === "master")
      .map((n) => this.serviceAddress(kubeconfig, n.name));
    for (const node of this.plan.nodes) {
      const userData = this.secretData(kubeconfig, node.userData.secret)[node.userData.key];
      if (userData === undefined) {
        throw new LabError(`Secret ${node.userData.secret} has no key ${node.userData.key} (node ${node.name})`);
      }
      if (!files.has(node.filesSecret)) files.set(node.filesSecret, this.secretData(kubeconfig, node.filesSecret));
      const dir = this.nodeDir(node);
      const seed = path.join(dir, "seed");
      const share = path.join(dir, "files");
      mkdirSync(seed, { recursive: true, mode: 0o700 });
      mkdirSync(share, { recursive: true, mode: 0o700 });
      writeFileSync(path.join(seed, "meta-data"), metaData(node, this.plan.clusterId));
      writeFileSync(path.join(seed, "user-data"), userData, { mode: 0o600 });
      writeFileSync(
        path.join(seed, "network-config"),
        networkConfig(node, this.plan, serviceRoutes(node, this.plan, masterAddresses)),
      );
      changed.set(node.name, syncDirectory(share, files.get(node.filesSecret) ?? {}));
      writeFileSync(path.join(dir, "hosts"), this.plan.hosts);
      // What the platform's DHCP would hand out: a resolver. CoreDNS needs one to forward to
      // (it exits on "no nameservers found"); the bridge answers nothing, so only cluster names resolve.
      writeFileSync(path.join(dir, "resolv.conf"), `nameserver ${this.plan.bridgeAddress}\n`);
    }
    return changed;
  }

  /** True while the node's system container runs (its nspawn PID is alive). */
  private running(node: LabNode): boolean {
    const pidFile = path.join(this.stateDir(node), "nspawn.pid");
    if (!existsSync(pidFile)) return false;
    try {
      process.kill(Number(readFileSync(pidFile, "utf8").trim()), 0);
      return true;
    } catch {
      return false;
    }
  }

  private nspawn(args: readonly string[]) {
    return run("bash", [NSPAWN, ...args], this.o.env);
  }

  private consoleTail(node: LabNode): string {
    const file = path.join(this.stateDir(node), "console.log");
    if (!existsSync(file)) return "(no console log)";
    return readFileSync(file, "utf8").split("\n").slice(-CONSOLE_TAIL_LINES).join("\n");
  }

  /** Starts every node that is not running; reports the running ones with the files that changed. */
  private bootNodes(changed: ReadonlyMap<string, number>): void {
    const r = this.nspawn([
      "bridge-up",
      "--bridge",
      this.plan.bridge,
      "--address",
      `${this.plan.bridgeAddress}/${this.plan.prefixLength}`,
    ]);
    if (!r.ok) throw new LabError(`creating bridge ${this.plan.bridge} failed`, r.stderr);
    for (const node of this.plan.nodes) {
      if (this.running(node)) {
        this.say(`node ${node.name}: running; ${changed.get(node.name) ?? 0} of its files changed`);
        continue;
      }
      const dir = this.nodeDir(node);
      const up = this.nspawn([
        "up",
        "--name",
        node.name,
        // Host-wide names (veth, cgroups) must not collide with another lab's master-0.
        "--machine",
        `${this.plan.clusterId}-${node.name}`,
        "--state-dir",
        path.join(dir, "state"),
        "--seed",
        path.join(dir, "seed"),
        "--bridge",
        this.plan.bridge,
        "--bind-ro",
        `${path.join(dir, "files")}:${FILES_MOUNT}`,
        "--bind-ro",
        `${path.join(dir, "hosts")}:/etc/hosts`,
        "--bind-ro",
        `${path.join(dir, "resolv.conf")}:/etc/resolv.conf`,
      ]);
      if (!up.ok) throw new LabError(`node ${node.name}: starting its system container failed`, up.stderr);
      this.say(`node ${node.name} (${node.role}, ${node.address}): started`);
    }
  }

  /** Waits for a stage of a node with nspawn-node.sh's probes; a failure names the node and shows its console. */
  private async waitStage(node: LabNode, stage: "booted" | "cloud-init"): Promise<void> {
    const timeout = String(Math.ceil((this.o.timeoutMs ?? 900_000) / 1000));
    const child = spawn(
      "bash",
      [NSPAWN, "wait", "--state-dir", this.stateDir(node), "--for", stage, "--timeout", timeout],
      { env: this.o.env, stdio: ["ignore", "pipe", "pipe"], signal: this.waits.signal, killSignal: "SIGKILL" },
    );
    child.on("error", () => {}); // an aborted wait: the failure that aborted it is reported
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    if (code !== 0)
      throw new LabError(
        `node ${node.name}: no ${stage} (${err.trim().split("\n").at(-1) ?? ""})`,
        this.consoleTail(node),
      );
    if (stage === "cloud-init") {
      const result = this.onNode(node, "cat", "/var/lib/cloud/data/result.json");
      const errors = result.ok
        ? ((JSON.parse(result.stdout) as { v1?: { errors?: string[] } }).v1?.errors ?? [])
        : ["no result.json"];
      if (errors.length > 0) {
        const log = this.onNode(node, "tail", "-n", String(CONSOLE_TAIL_LINES), "/var/log/cloud-init-output.log");
        throw new LabError(
          `node ${node.name}: cloud-init failed: ${errors.join("; ")}`,
          log.stdout || this.consoleTail(node),
        );
      }
    }
    this.say(`node ${node.name}: ${stage}`);
  }

  /** A stack output (secrets shown), read in the reconciler's own workspace: the project's stack files stay untouched. */
  private stackOutput(kubeconfig: string, name: string): unknown {
    const env = {
      ...this.engineEnv(kubeconfig),
      PULUMI_BACKEND_URL: `file://${path.join(this.dir, "state")}`,
      PULUMI_HOME: path.join(this.dir, "reconciler", "pulumi-home"),
      PULUMI_SKIP_UPDATE_CHECK: "true",
      // The stack files carry no salt: the secrets provider's state is in the backend.
      PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER: "true",
    };
    const r = run(
      PULUMI,
      [
        "stack",
        "output",
        name,
        "--show-secrets",
        "--json",
        "--stack",
        this.plan.clusterId,
        "--cwd",
        path.join(this.dir, "reconciler", "workspace"),
      ],
      env,
    );
    if (!r.ok || r.stdout.trim() === "") throw new LabError(`reading the stack output ${name} failed`, r.stderr);
    return JSON.parse(r.stdout) as unknown;
  }

  /**
   * Writes a kubeconfig of the guest pointed at the first master's lab address (the API's
   * Service name stays the TLS server name) to `file`, readable by root only.
   */
  private writeKubeconfig(text: string, file: string): string {
    const config = parse(text) as { clusters: { cluster: Record<string, string> }[] };
    for (const c of config.clusters) {
      c.cluster.server = `https://${this.plan.nodes[0].address}:6443`;
      c.cluster["tls-server-name"] = `api.${this.plan.namespace}.svc`;
    }
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, stringify(config), { mode: 0o600 });
    chmodSync(file, 0o600);
    return file;
  }

  /** The admin kubeconfig at `<lab>/admin.conf`, each `pki.users` entry's at `<lab>/users/<name>.conf`. */
  private kubeconfigs(kubeconfig: string): string {
    const users = (this.stackOutput(kubeconfig, "userKubeconfigs") ?? {}) as Record<string, string>;
    const usersDir = path.join(this.dir, "users");
    rmSync(usersDir, { recursive: true, force: true });
    for (const [user, text] of Object.entries(users)) this.writeKubeconfig(text, path.join(usersDir, `${user}.conf`));
    if (Object.keys(users).length > 0) this.say(`user kubeconfigs in ${usersDir}: ${Object.keys(users).join(", ")}`);
    return this.writeKubeconfig(
      this.stackOutput(kubeconfig, "adminKubeconfig") as string,
      path.join(this.dir, "admin.conf"),
    );
  }

  private async waitReady(adminConf: string): Promise<void> {
    const deadline = Date.now() + (this.o.timeoutMs ?? 900_000);
    let last = "";
    for (;;) {
      const r = run(KUBECTL, ["--kubeconfig", adminConf, "get", "nodes", "-o", "json", "--request-timeout", "10s"]);
      if (r.ok) {
        const nodes = (
          JSON.parse(r.stdout) as {
            items: { metadata: { name: string }; status: { conditions?: { type: string; status: string }[] } }[];
          }
        ).items;
        const ready = nodes
          .filter((n) => n.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
          .map((n) => n.metadata.name);
        const line = `nodes Ready: ${ready.length}/${this.plan.nodes.length} (${ready.join(", ") || "none"})`;
        if (line !== last) this.say((last = line));
        if (this.plan.nodes.every((n) => ready.includes(n.name))) return;
      }
      if (Date.now() > deadline) {
        const notReady = this.plan.nodes.filter((n) => !last.includes(n.name));
        throw new LabError(
          `not every node is Ready after ${since(this.t0)}: ${notReady.map((n) => n.name).join(", ")}`,
          notReady.map((n) => `--- ${n.name}\n${this.consoleTail(n)}`).join("\n"),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  }

  /**
   * What a fresh clone lacks, built as `npm start` builds it (scripts/provision.sh: npm packages,
   * the toolchain and the node image, only what is missing or whose inputs changed; about two
   * seconds when nothing is). Its progress lines are passed on.
   */
  private async provision(): Promise<void> {
    this.say("toolchain and node image (scripts/provision.sh: builds only what is missing)");
    const child = spawn("bash", [PROVISION], { env: this.o.env, stdio: ["ignore", "ignore", "pipe"] });
    const tail: string[] = [];
    let partial = "";
    child.stderr.on("data", (c: Buffer) => {
      const lines = (partial + c.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (line.startsWith("[")) this.say(`  ${line}`);
        tail.push(line);
        if (tail.length > CONSOLE_TAIL_LINES) tail.shift();
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    if (code !== 0)
      throw new LabError(`building the toolchain failed (scripts/provision.sh exit ${code})`, tail.join("\n"));
  }

  async up(): Promise<string> {
    await this.provision();
    checkToolchain(this.loaded.spec);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(this.dir, "plan.json"), JSON.stringify(this.plan, null, 2));
    this.say(`host cluster (g8s host up --host-dir ${path.join(this.dir, "host")})`);
    const host = new HostCluster({ hostDir: path.join(this.dir, "host"), env: this.o.env, progress: () => {} });
    const { kubeconfig } = await host.up();
    await this.apply(kubeconfig);
    this.bootNodes(this.stage(kubeconfig));
    try {
      for (const stage of ["booted", "cloud-init"] as const) {
        await Promise.all(this.plan.nodes.map((n) => this.waitStage(n, stage)));
      }
    } catch (err) {
      this.waits.abort();
      if (err instanceof LabError) {
        throw new LabError(
          `${err.message}; the nodes keep running for a look ('g8s lab down' removes them)`,
          err.details,
        );
      }
      throw err;
    }
    const admin = this.kubeconfigs(kubeconfig);
    await this.waitReady(admin);
    this.say(`every node Ready`);
    return admin;
  }

  async down(): Promise<void> {
    for (const node of this.plan.nodes) {
      const state = this.stateDir(node);
      if (!existsSync(state)) continue;
      const r = this.nspawn(["down", "--state-dir", state, "--purge"]);
      if (!r.ok) throw new LabError(`node ${node.name}: stopping it failed`, r.stderr);
      this.say(`node ${node.name}: stopped`);
    }
    this.nspawn(["bridge-down", "--bridge", this.plan.bridge]);
    const hostDir = path.join(this.dir, "host");
    if (existsSync(hostDir)) {
      await new HostCluster({ hostDir, env: this.o.env, progress: () => {} }).down({ purge: true });
      this.say("host cluster stopped");
    }
    rmSync(this.dir, { recursive: true, force: true });
    this.say(`removed ${this.dir}`);
  }
}

/** Brings the cluster up; resolves to the guest's admin kubeconfig path. */
export async function labUp(o: LabOptions): Promise<string> {
  const loaded = loadLabStack(o.stackFile, o.labDir);
  return new Lab(o, loaded, labPlan(loaded.spec)).up();
}

export async function labDown(o: LabOptions): Promise<void> {
  const loaded = loadLabStack(o.stackFile, o.labDir);
  await new Lab(o, loaded, labPlan(loaded.spec)).down();
}

/**
 * Makes `dir` hold exactly `files` (name → content, mode 0400): a changed file is written beside
 * and renamed over the old one, so a reader never sees half a file; returns how many changed.
 */
export function syncDirectory(dir: string, files: Readonly<Record<string, string>>): number {
  let changed = 0;
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    if (existsSync(file) && readFileSync(file, "utf8") === content) continue;
    const tmp = path.join(dir, `.${name}.tmp`);
    writeFileSync(tmp, content, { mode: 0o400 });
    renameSync(tmp, file);
    changed++;
  }
  for (const name of readdirSync(dir)) {
    if (!Object.hasOwn(files, name)) {
      rmSync(path.join(dir, name), { force: true });
      changed++;
    }
  }
  return changed;
}
