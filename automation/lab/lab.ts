/**
 * `g8s lab up | down`: a KVM-platform guest cluster on this machine, end to end. The stack is
 * applied for real (the reconciler's `up` through the Kubernetes provider) to a local host
 * cluster (`g8s host up`), which holds what the platform renders: each node's user-data and its
 * files as Secrets. Each QEMU pod's node then boots from exactly those documents as a system
 * container of the node image (`tools/node-image`): real systemd, cloud-init, containerd,
 * kubelet and kubeadm. The host cluster's nodes are simulated (KWOK), so its pods run nothing;
 * the lab's nodes stand in for them, on a bridge of their own. Workers chosen with `vmNodes`
 * boot as QEMU VMs instead, through the platform's own pod entrypoint (`tools/qemu-node`) with
 * the StatefulSet's environment, in a network namespace that stands in for the pod.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
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
import {
  labPlan,
  metaData,
  networkConfig,
  podNetns,
  podVeth,
  serviceRoutes,
  type LabNode,
  type LabPlan,
  type LabRoute,
} from "./plan";

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
  /** Workers to boot as QEMU VMs through the pod image's entrypoint (default: none). */
  readonly vmNodes?: readonly string[];
}

const TOOLS = path.join(PROJECT_ROOT, ".tools");
const NODE_IMAGE = path.join(TOOLS, "share", "node-image");
const NSPAWN = path.join(PROJECT_ROOT, "tools", "node-image", "nspawn-node.sh");
const QEMU_NODE = path.join(PROJECT_ROOT, "tools", "node-image", "qemu-node.sh");
const ENTRYPOINT = path.join(PROJECT_ROOT, "tools", "qemu-node", "entrypoint.sh");
/** A VM's entrypoint gets this long after SIGTERM (the pod's grace period is 120 s). */
const VM_STOP_MS = 130_000;
/** How often a VM node's wait reports that it is still waiting. */
const VM_HEARTBEAT_MS = 60_000;
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

/**
 * The node image must hold the spec's kubeadm: its own (/usr/local/bin) or the next minor's
 * (/opt/g8s/kubernetes/<version>/, which g8s-kubernetes switches to); the node checks it and
 * would stop there.
 */
function checkToolchain(spec: KvmClusterSpec): void {
  for (const f of [path.join(NODE_IMAGE, "rootfs", "lib", "systemd", "systemd"), KUBECTL, PULUMI]) {
    if (!existsSync(f)) throw new LabError(`${f} is missing: run 'npm run toolchain' (it builds the node image)`);
  }
  const rootfs = path.join(NODE_IMAGE, "rootfs");
  const held: string[] = [];
  const kubeadms = [
    path.join(rootfs, "usr", "local", "bin", "kubeadm"),
    ...readdirSafe(path.join(rootfs, "opt", "g8s", "kubernetes")).map((v) =>
      path.join(rootfs, "opt", "g8s", "kubernetes", v, "kubeadm"),
    ),
  ];
  for (const kubeadm of kubeadms) {
    const r = run(kubeadm, ["version", "-o", "short"]);
    if (r.ok) held.push(r.stdout.trim());
  }
  if (held.length === 0)
    throw new LabError(`the node image has no working kubeadm (${kubeadms[0]}): run 'npm run toolchain'`);
  if (!held.includes(`v${spec.kubernetes.version}`)) {
    throw new LabError(
      `kubernetes.version is ${spec.kubernetes.version} but the node image holds kubeadm ${held.join(" and ")}: set kubernetes.version: ${held[0].replace(/^v/, "")}`,
    );
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** A VM node needs QEMU, dnsmasq and genisoimage on this machine, and the node image's disk. */
function checkVmTools(): void {
  for (const f of ["disk.qcow2", "vmlinuz", "initrd.img"]) {
    if (!existsSync(path.join(NODE_IMAGE, f))) {
      throw new LabError(`${path.join(NODE_IMAGE, f)} is missing: run 'npm run toolchain' (it builds the node image)`);
    }
  }
  for (const [cmd, pkg] of [
    ["qemu-system-x86_64", "qemu-system-x86"],
    ["qemu-img", "qemu-utils"],
    ["dnsmasq", "dnsmasq-base"],
    ["genisoimage", "genisoimage"],
  ]) {
    if (!run("sh", ["-c", `command -v ${cmd}`]).ok) {
      throw new LabError(`--vm: ${cmd} is missing: apt-get install --no-install-recommends ${pkg}`);
    }
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
  /** A VM node's entrypoint environment: its StatefulSet container's, with the lab's folders. */
  private readonly vmEnv = new Map<string, Record<string, string>>();
  /** A VM node's pod routes to the masters' Service addresses. */
  private readonly vmRoutes = new Map<string, LabRoute[]>();
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

  /** Runs a command inside a node (nsenter into a system container, the guest agent in a VM). */
  private onNode(node: LabNode, ...cmd: string[]) {
    const args = ["exec", "--state-dir", this.stateDir(node), "--", ...cmd];
    return node.substrate === "vm" ? run("bash", [QEMU_NODE, ...args], this.o.env) : this.nspawn(args);
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
  private hostGet(
    kubeconfig: string,
    kind: "service" | "secret" | "statefulset",
    name: string,
    output: string,
  ): string {
    const r = run(KUBECTL, ["--kubeconfig", kubeconfig, "-n", this.plan.namespace, "get", kind, name, "-o", output]);
    if (!r.ok || r.stdout.trim() === "") {
      throw new LabError(`reading ${kind} ${this.plan.namespace}/${name} from the host cluster failed`, r.stderr);
    }
    return r.stdout.trim();
  }

  private hostHas(kubeconfig: string, kind: "secret", name: string): boolean {
    const r = run(KUBECTL, [
      "--kubeconfig",
      kubeconfig,
      "-n",
      this.plan.namespace,
      "get",
      kind,
      name,
      "--ignore-not-found",
      "-o",
      "name",
    ]);
    if (!r.ok)
      throw new LabError(`reading ${kind} ${this.plan.namespace}/${name} from the host cluster failed`, r.stderr);
    return r.stdout.trim() !== "";
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
   * The files of a node's secret share, as its pod's `node-secrets` volume holds them: the
   * node's files Secret, or a projected volume of several Secrets (a master's etcd object-store
   * credentials beside its files), each source's `items` renaming keys to paths.
   */
  private shareFiles(kubeconfig: string, node: LabNode): Record<string, string> {
    type Source = { secret?: { name: string; optional?: boolean; items?: { key: string; path: string }[] } };
    type Volume = { name: string; secret?: { secretName: string }; projected?: { sources: Source[] } };
    const set = JSON.parse(this.hostGet(kubeconfig, "statefulset", node.statefulSet, "json")) as {
      spec: { template: { spec: { volumes?: Volume[] } } };
    };
    const volume = set.spec.template.spec.volumes?.find((v) => v.name === "node-secrets");
    if (volume?.secret !== undefined) return this.secretData(kubeconfig, volume.secret.secretName);
    if (volume?.projected === undefined) return this.secretData(kubeconfig, node.filesSecret);
    const files: Record<string, string> = {};
    for (const source of volume.projected.sources) {
      if (source.secret === undefined) continue;
      // An optional Secret that does not exist (yet) adds nothing, as kubelet does.
      if (source.secret.optional === true && !this.hostHas(kubeconfig, "secret", source.secret.name)) continue;
      const data = this.secretData(kubeconfig, source.secret.name);
      const items = source.secret.items ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const { key, path: file } of items) {
        const value = data[key];
        if (value === undefined) {
          throw new LabError(
            `Secret ${this.plan.namespace}/${source.secret.name} has no key ${key}: ${node.statefulSet}'s pods would not start`,
          );
        }
        files[file] = value;
      }
    }
    return files;
  }

  /**
   * The environment of a VM node's entrypoint: what the platform's StatefulSet gives its QEMU
   * container (the image contract), with the pod's name filled in and the volume mounts replaced
   * by the node's folders in the lab.
   */
  private podEnv(kubeconfig: string, node: LabNode): Record<string, string> {
    type Env = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } };
    const set = JSON.parse(this.hostGet(kubeconfig, "statefulset", node.statefulSet, "json")) as {
      spec: { template: { spec: { containers: { name: string; env?: Env[] }[] } } };
    };
    const env: Record<string, string> = {};
    for (const e of set.spec.template.spec.containers[0]?.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = node.name;
    }
    const dir = this.nodeDir(node);
    return {
      ...env,
      G8S_DISK_DIR: path.join(dir, "disk"),
      G8S_USER_DATA_DIR: path.join(dir, "user-data"),
      G8S_SHARE_DIR: path.join(dir, "files"),
      G8S_IMAGE_DIR: NODE_IMAGE,
      G8S_RUN_DIR: this.stateDir(node),
    };
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
      if (!files.has(node.statefulSet)) files.set(node.statefulSet, this.shareFiles(kubeconfig, node));
      const dir = this.nodeDir(node);
      const seed = path.join(dir, "seed");
      const share = path.join(dir, "files");
      mkdirSync(seed, { recursive: true, mode: 0o700 });
      mkdirSync(share, { recursive: true, mode: 0o700 });
      writeFileSync(path.join(seed, "meta-data"), metaData(node, this.plan.clusterId));
      writeFileSync(path.join(seed, "user-data"), userData, { mode: 0o600 });
      const routes = serviceRoutes(node, this.plan, masterAddresses);
      writeFileSync(path.join(seed, "network-config"), networkConfig(node, this.plan, routes));
      changed.set(node.name, syncDirectory(share, files.get(node.statefulSet) ?? {}));
      if (node.substrate === "vm") {
        // The user-data Secret's volume, as the pod mounts it: the key as a file.
        const userDataDir = path.join(dir, "user-data");
        rmSync(userDataDir, { recursive: true, force: true });
        mkdirSync(userDataDir, { recursive: true, mode: 0o700 });
        writeFileSync(path.join(userDataDir, node.userData.key), userData, { mode: 0o400 });
        mkdirSync(path.join(dir, "disk"), { recursive: true, mode: 0o700 });
        this.vmEnv.set(node.name, this.podEnv(kubeconfig, node));
        this.vmRoutes.set(node.name, routes);
      }
      writeFileSync(path.join(dir, "hosts"), this.plan.hosts);
      // What the platform's DHCP would hand out: a resolver. CoreDNS needs one to forward to
      // (it exits on "no nameservers found"); the bridge answers nothing, so only cluster names resolve.
      writeFileSync(path.join(dir, "resolv.conf"), `nameserver ${this.plan.bridgeAddress}\n`);
    }
    return changed;
  }

  /** True while the node runs: its nspawn PID, or a VM's pod entrypoint, is alive. */
  private running(node: LabNode): boolean {
    if (node.substrate === "vm")
      return pidFrom(path.join(this.stateDir(node), "entrypoint.pid"), "entrypoint.sh") !== undefined;
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
    const tail = (file: string, lines: number) =>
      existsSync(file) ? readFileSync(file, "utf8").split("\n").slice(-lines).join("\n") : undefined;
    const console = tail(path.join(this.stateDir(node), "console.log"), CONSOLE_TAIL_LINES) ?? "(no console log)";
    const entrypoint = node.substrate === "vm" ? tail(path.join(this.stateDir(node), "entrypoint.log"), 10) : undefined;
    return entrypoint === undefined ? console : `${console}\n--- ${node.name}: the pod entrypoint's log\n${entrypoint}`;
  }

  /** The host cluster's DNS as the VMs see it: the Service and node names of the lab's hosts file, on the bridge. */
  private startDns(): void {
    const hosts = path.join(this.dir, "hosts");
    writeFileSync(hosts, this.plan.hosts);
    this.stopDns();
    const r = run("dnsmasq", [
      "--conf-file=/dev/null",
      "--no-resolv",
      "--no-hosts",
      `--addn-hosts=${hosts}`,
      `--listen-address=${this.plan.bridgeAddress}`,
      "--bind-interfaces",
      `--pid-file=${path.join(this.dir, "dns.pid")}`,
      // dnsmasq reads the hosts file after dropping to `nobody`, who cannot enter the lab's
      // folder (0700): it then refused every query.
      "--user=root",
    ]);
    if (!r.ok) throw new LabError(`starting the lab's DNS on ${this.plan.bridgeAddress} failed`, r.stderr);
    this.say(`DNS for the VMs on ${this.plan.bridgeAddress}: the API Service and node names`);
  }

  private stopDns(): void {
    const pid = pidFrom(path.join(this.dir, "dns.pid"), "dnsmasq");
    if (pid !== undefined) process.kill(pid, "SIGTERM");
    rmSync(path.join(this.dir, "dns.pid"), { force: true });
  }

  /** `ip ARGS`; a failure names the node. */
  private ip(node: LabNode, ...args: string[]): void {
    const r = run("ip", args);
    if (!r.ok) throw new LabError(`node ${node.name}: 'ip ${args.join(" ")}' failed`, r.stderr);
  }

  /**
   * A VM node: a network namespace in place of its pod (eth0 with the node's address on the lab
   * bridge, a default route via the bridge, the routes to the masters' Service addresses that the
   * host cluster's Service network would give, a resolver), and in it the pod image's entrypoint
   * with the StatefulSet's environment, in the background. Its stdout is the serial console.
   */
  private bootVm(node: LabNode): void {
    const ns = podNetns(this.plan.clusterId, node.name);
    const veth = podVeth(this.plan.clusterId, node.name);
    this.removePodNetwork(node);
    this.ip(node, "netns", "add", ns);
    this.ip(node, "link", "add", veth, "type", "veth", "peer", "name", `${veth}p`);
    this.ip(node, "link", "set", `${veth}p`, "netns", ns);
    this.ip(node, "-n", ns, "link", "set", `${veth}p`, "name", "eth0");
    this.ip(node, "link", "set", veth, "master", this.plan.bridge, "up");
    this.ip(node, "-n", ns, "address", "add", `${node.address}/${this.plan.prefixLength}`, "dev", "eth0");
    this.ip(node, "-n", ns, "link", "set", "eth0", "up");
    this.ip(node, "-n", ns, "link", "set", "lo", "up");
    this.ip(node, "-n", ns, "route", "add", "default", "via", this.plan.bridgeAddress);
    for (const r of this.vmRoutes.get(node.name) ?? []) {
      this.ip(node, "-n", ns, "route", "add", `${r.to}/32`, "via", r.via);
    }
    // `ip netns exec` mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf: the pod's resolver.
    mkdirSync(path.join("/etc/netns", ns), { recursive: true });
    writeFileSync(path.join("/etc/netns", ns, "resolv.conf"), `nameserver ${this.plan.bridgeAddress}\n`);

    const state = this.stateDir(node);
    mkdirSync(state, { recursive: true, mode: 0o700 });
    for (const f of ["qemu.pid", "started-at"]) rmSync(path.join(state, f), { force: true });
    const out = openSync(path.join(state, "console.log"), "w");
    const err = openSync(path.join(state, "entrypoint.log"), "w");
    const child = spawn("ip", ["netns", "exec", ns, "bash", ENTRYPOINT], {
      env: { PATH: this.o.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...this.vmEnv.get(node.name) },
      stdio: ["ignore", out, err],
      detached: true,
    });
    child.unref();
    closeSync(out);
    closeSync(err);
    writeFileSync(path.join(state, "entrypoint.pid"), String(child.pid));
    const env = this.vmEnv.get(node.name) ?? {};
    this.say(
      `node ${node.name} (${node.role}, ${node.address}): pod entrypoint started (QEMU VM, ${env.G8S_CPUS} CPUs, ` +
        `${env.G8S_MEMORY_MIB} MiB, accel ${env.G8S_ACCEL}; netns ${ns})`,
    );
  }

  /** The pod's network namespace and veth of a VM node, if left from an earlier run. */
  private removePodNetwork(node: LabNode): void {
    const ns = podNetns(this.plan.clusterId, node.name);
    run("ip", ["netns", "delete", ns]);
    run("ip", ["link", "delete", podVeth(this.plan.clusterId, node.name)]);
    rmSync(path.join("/etc/netns", ns), { recursive: true, force: true });
  }

  /** Waits until the entrypoint has started QEMU (it first copies the base disk); a dead entrypoint fails the node. */
  private async waitQemu(node: LabNode): Promise<void> {
    const state = this.stateDir(node);
    const deadline = Date.now() + (this.o.timeoutMs ?? 900_000);
    for (;;) {
      if (pidFrom(path.join(state, "qemu.pid"), "qemu-system") !== undefined) break;
      if (pidFrom(path.join(state, "entrypoint.pid"), "entrypoint.sh") === undefined || Date.now() > deadline) {
        throw new LabError(`node ${node.name}: the pod entrypoint did not start QEMU`, this.consoleTail(node));
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    this.say(`node ${node.name}: QEMU started`);
  }

  /** SIGTERM to a VM node's entrypoint (ACPI power-down of the guest), SIGKILL after VM_STOP_MS; then its pod network. */
  private async stopVm(node: LabNode): Promise<void> {
    const state = this.stateDir(node);
    const entrypoint = pidFrom(path.join(state, "entrypoint.pid"), "entrypoint.sh");
    if (entrypoint !== undefined) {
      process.kill(entrypoint, "SIGTERM");
      const deadline = Date.now() + VM_STOP_MS;
      while (pidFrom(path.join(state, "entrypoint.pid"), "entrypoint.sh") !== undefined && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
    for (const [file, name] of [
      ["entrypoint.pid", "entrypoint.sh"],
      ["qemu.pid", "qemu-system"],
    ] as const) {
      const pid = pidFrom(path.join(state, file), name);
      if (pid !== undefined) process.kill(pid, "SIGKILL");
    }
    rmSync(path.join(state, "entrypoint.pid"), { force: true });
    this.removePodNetwork(node);
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
    if (this.plan.nodes.some((n) => n.substrate === "vm")) this.startDns();
    for (const node of this.plan.nodes) {
      if (this.running(node)) {
        this.say(`node ${node.name}: running; ${changed.get(node.name) ?? 0} of its files changed`);
        continue;
      }
      if (node.substrate === "vm") {
        this.bootVm(node);
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
        // A disk of its own, as its VM has: the kubelet must not judge the host's file system.
        "--disk-gib",
        String(node.diskGiB),
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
    const vm = node.substrate === "vm";
    if (vm && stage === "booted") await this.waitQemu(node);
    const timeout = String(Math.ceil((this.o.timeoutMs ?? 900_000) / 1000));
    const child = spawn(
      "bash",
      [vm ? QEMU_NODE : NSPAWN, "wait", "--state-dir", this.stateDir(node), "--for", stage, "--timeout", timeout],
      { env: this.o.env, stdio: ["ignore", "pipe", "pipe"], signal: this.waits.signal, killSignal: "SIGKILL" },
    );
    child.on("error", () => {}); // an aborted wait: the failure that aborted it is reported
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    // An emulated VM takes minutes per phase: say now and then what it is waiting for.
    const heartbeat = vm
      ? setInterval(() => this.say(`node ${node.name} (vm): waiting for ${stage}`), VM_HEARTBEAT_MS)
      : undefined;
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    clearInterval(heartbeat);
    if (code !== 0)
      throw new LabError(
        `node ${node.name}: no ${stage} (${err.trim().split("\n").at(-1) ?? ""})`,
        this.consoleTail(node),
      );
    if (stage === "cloud-init") {
      // A command in the node can fail for a moment while its systemd settles: look a few times.
      let result = this.onNode(node, "cat", "/var/lib/cloud/data/result.json");
      for (let i = 0; i < 5 && !result.ok; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        result = this.onNode(node, "cat", "/var/lib/cloud/data/result.json");
      }
      const errors = result.ok
        ? ((JSON.parse(result.stdout) as { v1?: { errors?: string[] } }).v1?.errors ?? [])
        : [`no result.json (${result.stderr.trim().split("\n").at(-1) ?? ""})`];
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

  /**
   * Claims the lab's bridge for this lab dir (`OWNERS_DIR/<bridge>`). The bridge and the nodes'
   * machine names follow from the cluster id: a second lab of the same id elsewhere would share
   * them, and its `down` would take this lab's bridge away (seen: a node failed "Failed to add
   * interface … to bridge …: No such device").
   */
  private claimBridge(): void {
    const other = this.otherBridgeOwner();
    if (other !== undefined) {
      throw new LabError(
        `cluster ${this.plan.clusterId} already has a lab in ${other}: two labs of one cluster id share its bridge ` +
          `and node names; remove that one first ('g8s lab down ${this.o.stackFile} --lab-dir ${other}')`,
      );
    }
    mkdirSync(OWNERS_DIR, { recursive: true, mode: 0o755 });
    writeFileSync(this.bridgeOwnerFile, `${this.dir}\n`);
  }

  private get bridgeOwnerFile(): string {
    return path.join(OWNERS_DIR, this.plan.bridge);
  }

  /** Another live lab dir that owns this lab's bridge (see otherLab), if any. */
  private otherBridgeOwner(): string | undefined {
    const file = this.bridgeOwnerFile;
    return otherLab(existsSync(file) ? readFileSync(file, "utf8").trim() : undefined, this.dir, existsSync);
  }

  async up(): Promise<string> {
    await this.provision();
    checkToolchain(this.loaded.spec);
    this.claimBridge();
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
    for (const node of this.plan.nodes.filter((n) => n.substrate === "vm")) {
      const status = run("bash", [QEMU_NODE, "status", "--state-dir", this.stateDir(node)], this.o.env);
      this.say(
        `node ${node.name} (vm): ${(status.stdout || status.stderr).trim().replace(/^\[qemu-node\] [^:]*: /, "")}`,
      );
    }
    return admin;
  }

  async down(): Promise<void> {
    for (const node of this.plan.nodes) {
      const state = this.stateDir(node);
      if (!existsSync(state)) continue;
      // A VM node is known by its entrypoint's PID file (down is not told which nodes were VMs).
      if (existsSync(path.join(state, "entrypoint.pid"))) {
        await this.stopVm(node);
        this.say(`node ${node.name} (vm): stopped`);
        continue;
      }
      const r = this.nspawn(["down", "--state-dir", state, "--purge"]);
      if (!r.ok) throw new LabError(`node ${node.name}: stopping it failed`, r.stderr);
      this.say(`node ${node.name}: stopped`);
    }
    this.stopDns();
    if (this.otherBridgeOwner() !== undefined) {
      this.say(`bridge ${this.plan.bridge} belongs to another lab now: left alone`);
    } else {
      this.nspawn(["bridge-down", "--bridge", this.plan.bridge]);
      rmSync(this.bridgeOwnerFile, { force: true });
    }
    const hostDir = path.join(this.dir, "host");
    if (existsSync(hostDir)) {
      await new HostCluster({ hostDir, env: this.o.env, progress: () => {} }).down({ purge: true });
      this.say("host cluster stopped");
    }
    rmSync(this.dir, { recursive: true, force: true });
    this.say(`removed ${this.dir}`);
  }
}

/** Where each lab bridge's owner (the lab dir that made it) is recorded: host-wide, as the bridge is. */
const OWNERS_DIR = "/run/g8s-lab";

/**
 * The other lab dir that owns a bridge, from its recorded `owner`: none when nothing is recorded,
 * when it is `labDir` itself, or when that lab is gone (no plan.json: removed by hand or by `down`).
 */
export function otherLab(
  owner: string | undefined,
  labDir: string,
  exists: (file: string) => boolean,
): string | undefined {
  if (owner === undefined || owner === "" || owner === labDir) return undefined;
  return exists(path.join(owner, "plan.json")) ? owner : undefined;
}

/** The PID in `file` when that process runs and its command line contains `name` (never a reused PID). */
function pidFrom(file: string, name: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return undefined;
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(name) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Brings the cluster up; resolves to the guest's admin kubeconfig path. */
export async function labUp(o: LabOptions): Promise<string> {
  const loaded = loadLabStack(o.stackFile, o.labDir);
  let plan: LabPlan;
  try {
    plan = labPlan(loaded.spec, o.vmNodes ?? []);
  } catch (err) {
    throw new LabError(`${o.stackFile}: ${(err as Error).message}`);
  }
  if (plan.nodes.some((n) => n.substrate === "vm")) checkVmTools();
  return new Lab(o, loaded, plan).up();
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
