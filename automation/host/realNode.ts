/**
 * The host cluster's real node (`g8s host up --real-node`): one system container of the node
 * image (tools/node-image, nspawn-node.sh, the way `g8s lab` boots guest nodes) on a bridge of
 * its own, running containerd and the toolchain's kubelet registered to the host cluster's API
 * with a client certificate of the host PKI, and the KVM device plugin as a DaemonSet. The plan
 * and every file the node reads are pure functions of the host dir; `RealNode` does the I/O.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, promises as fs, readFileSync } from "node:fs";
import * as path from "node:path";
import { containerdConfig } from "../../components/bootstrap/cloudConfig";
import { renderKubeconfig } from "../../components/pki/kubeconfig";
import { nthAddress, parseCidr } from "../../components/spec/cidr";
import { CLUSTER_DOMAIN, CLUSTER_NAME, type HostLayout } from "./config";
import type { KubeApi } from "./https";
import { isNodeReady, type ObservedNode } from "./nodes";
import { readOptional, writeFileAtomic } from "./pki";

/** The node's name: its hostname, Kubernetes node name and the CN of its client certificate. */
export const REAL_NODE_NAME = "g8s-host-real-0";
/** The label the real node registers with (KWOK's fake nodes carry `g8s.io/host-node`, which `up` prunes). */
export const REAL_NODE_LABEL = "g8s.io/host-real-node";
/** The certificate (under pki/) of the node's kubelet: CN system:node:<name>, O system:nodes. */
export const REAL_NODE_CERT = "kubelet-real-0";
/** The DaemonSet (kube-system) that runs tools/kvm-device-plugin on real nodes. */
export const DEVICE_PLUGIN_NAME = "g8s-kvm-device-plugin";
/** Where the node image's g8s-import-images.service takes archives from before kubelet starts. */
const IMAGE_IMPORT_DIR = "/usr/local/share/g8s/images";
/** The bridge is `.1`, the node `.10` of its /24. */
const NODE_HOST = 10;

export interface RealNodePlan {
  readonly name: string;
  /** nspawn's machine name: host-wide names (veth, cgroups) are made of it; unique per host dir. */
  readonly machine: string;
  /** The bridge (≤ 15 characters) and its /24. */
  readonly bridge: string;
  readonly network: string;
  /** The host's address on the bridge: where the node reaches the API server. */
  readonly bridgeAddress: string;
  readonly nodeAddress: string;
  /** The node's pod range (the CNI bridge inside the node); the host routes it to the node. */
  readonly podCidr: string;
}

/**
 * The real node of a host dir: a bridge network 10.126.<n>.0/24 and pod range 10.127.<n>.0/24,
 * n from the host dir's path, so two host dirs on one machine get different ones (and neither
 * overlaps the lab's 10.123.0.0/16, the host cluster's Service and KWOK pod ranges).
 */
export function realNodePlan(hostDir: string): RealNodePlan {
  const digest = createHash("sha256").update(path.resolve(hostDir)).digest();
  const n = digest.readUInt16BE(0) % 250;
  const network = `10.126.${n}.0/24`;
  const cidr = parseCidr(network);
  if (typeof cidr === "string") throw new RangeError(cidr);
  return {
    name: REAL_NODE_NAME,
    machine: `g8s-real-${digest.toString("hex").slice(0, 8)}`,
    bridge: `g8sh${digest.toString("hex").slice(0, 8)}`,
    network,
    bridgeAddress: nthAddress(cidr, 1),
    nodeAddress: nthAddress(cidr, NODE_HOST),
    podCidr: `10.127.${n}.0/24`,
  };
}

/** The node's files: where each lives in the host dir's `real-node/files` and where the node sees it. */
export const NODE_FILES = {
  kubeconfig: { file: "kubelet.conf", at: "/etc/kubernetes/kubelet.conf" },
  ca: { file: "ca.crt", at: "/etc/kubernetes/pki/ca.crt" },
  config: { file: "kubelet-config.yaml", at: "/var/lib/kubelet/config.yaml" },
  flags: { file: "kubelet.env", at: "/etc/default/kubelet" },
  cni: { file: "10-g8s-host.conflist", at: "/etc/cni/net.d/10-g8s-host.conflist" },
  resolv: { file: "resolv.conf", at: "/etc/resolv.conf" },
  // What g8s's bootstrap writes on guest nodes. The image's default lacks restrict_oom_score_adj,
  // and without it every pod sandbox fails here: "runc create failed: unable to start container
  // process: can't get final child's PID from pipe: EOF" (a system container cannot lower an OOM score).
  containerd: { file: "containerd.toml", at: "/etc/containerd/config.toml" },
} as const;

/**
 * The kubelet's configuration: client certificates checked against the host CA, webhook
 * authorization (the API server's kubelet client is system:masters), the systemd cgroup driver
 * (the image's containerd uses it), no static pods, no swap check (the host decides swap).
 */
export function kubeletConfig(): string {
  return [
    "apiVersion: kubelet.config.k8s.io/v1beta1",
    "kind: KubeletConfiguration",
    "authentication:",
    "  anonymous: { enabled: false }",
    "  webhook: { enabled: true }",
    `  x509: { clientCAFile: ${NODE_FILES.ca.at} }`,
    "authorization: { mode: Webhook }",
    "cgroupDriver: systemd",
    "containerRuntimeEndpoint: unix:///run/containerd/containerd.sock",
    `clusterDomain: ${CLUSTER_DOMAIN}`,
    "failSwapOn: false",
    // The node shares the host's file system, which other work fills: at the default 85 % the
    // image garbage collector deleted every image imported into the node (nothing can be
    // pulled offline), and disk pressure would evict pods. Only a nearly full disk counts.
    "imageGCHighThresholdPercent: 100",
    "imageGCLowThresholdPercent: 99",
    "evictionHard: { nodefs.available: 1%, imagefs.available: 1%, memory.available: 100Mi }",
    "resolvConf: /etc/resolv.conf",
    "rotateCertificates: false",
    "",
  ].join("\n");
}

/** `/etc/default/kubelet` (the image's kubelet.service reads KUBELET_EXTRA_ARGS from it). */
export function kubeletFlags(plan: RealNodePlan): string {
  return `KUBELET_EXTRA_ARGS="--hostname-override=${plan.name} --node-ip=${plan.nodeAddress} --node-labels=${REAL_NODE_LABEL}=true"\n`;
}

/** The CNI network of the node's pods: a bridge with host-local addresses from the pod range, masqueraded out. */
export function cniConfig(plan: RealNodePlan): string {
  return `${JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "g8s-host",
      plugins: [
        {
          type: "bridge",
          bridge: "cni0",
          isGateway: true,
          ipMasq: true,
          ipam: { type: "host-local", ranges: [[{ subnet: plan.podCidr }]], routes: [{ dst: "0.0.0.0/0" }] },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  )}\n`;
}

/** cloud-init NoCloud seed: the node's identity and its address on the bridge (nspawn's `host0`). */
export function seedFiles(plan: RealNodePlan, hostDir: string): Record<string, string> {
  const id = createHash("sha256").update(path.resolve(hostDir)).digest("hex").slice(0, 12);
  return {
    "meta-data": `instance-id: g8s-host-${id}-${plan.name}\nlocal-hostname: ${plan.name}\n`,
    // Nothing to run: the node's files are mounted, its kubelet starts from the image's unit.
    "user-data": "#cloud-config\n{}\n",
    "network-config": [
      "version: 2",
      "ethernets:",
      "  host0:",
      `    addresses: [${plan.nodeAddress}/24]`,
      `    routes: [{ to: 0.0.0.0/0, via: ${plan.bridgeAddress} }]`,
      "",
    ].join("\n"),
  };
}

/** The device plugin's DaemonSet: on real nodes only, the image imported into the node, not privileged. */
export function devicePluginDaemonSet(image: string): Record<string, unknown> {
  const labels = { "app.kubernetes.io/name": DEVICE_PLUGIN_NAME };
  const pluginDir = "/var/lib/kubelet/device-plugins";
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: DEVICE_PLUGIN_NAME, namespace: "kube-system", labels },
    spec: {
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          nodeSelector: { [REAL_NODE_LABEL]: "true" },
          tolerations: [{ operator: "Exists" }],
          priorityClassName: "system-node-critical",
          automountServiceAccountToken: false,
          // The host cluster runs no DNS; the plugin resolves nothing.
          dnsPolicy: "Default",
          containers: [
            {
              name: "plugin",
              image,
              imagePullPolicy: "Never",
              // The node's /dev at /host/dev: the plugin checks the devices exist there.
              args: [`-plugin-dir=${pluginDir}`, "-dev-root=/host"],
              resources: { requests: { cpu: "5m", memory: "16Mi" }, limits: { memory: "64Mi" } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true },
              volumeMounts: [
                { name: "device-plugins", mountPath: pluginDir },
                { name: "dev", mountPath: "/host/dev", readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: "device-plugins", hostPath: { path: pluginDir, type: "Directory" } },
            { name: "dev", hostPath: { path: "/dev", type: "Directory" } },
          ],
        },
      },
    },
  };
}

/** The device plugin's image as tools/build.sh packed it: its reference and archive. */
export interface DevicePluginImage {
  readonly ref: string;
  readonly archive: string;
}

/** Reads `.tools/share/kvm-device-plugin/images.json`; a missing or odd one names the command that builds it. */
export function devicePluginImage(shareDir: string): DevicePluginImage {
  const dir = path.join(shareDir, "kvm-device-plugin");
  const manifest = path.join(dir, "images.json");
  const fix = "run 'bash tools/build.sh kvm-device-plugin'";
  const text = readOptionalSync(manifest);
  if (text === undefined) throw new Error(`${manifest} is missing: ${fix}`);
  const images = (JSON.parse(text) as { images?: { ref?: unknown; file?: unknown }[] }).images;
  const image = images?.[0];
  if (typeof image?.ref !== "string" || typeof image.file !== "string") {
    throw new Error(`${manifest}: images[0].ref and .file must be strings: ${fix}`);
  }
  const archive = path.join(dir, image.file);
  if (!existsSync(archive)) throw new Error(`${archive} (named by ${manifest}) is missing: ${fix}`);
  return { ref: image.ref, archive };
}

function readOptionalSync(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** What `status` reports of the real node. */
export interface RealNodeStatus {
  readonly name: string;
  /** The system container runs (its nspawn process is alive). */
  readonly running: boolean;
  readonly ready: boolean;
  readonly address: string;
  /** Memory of the node's cgroup (its systemd, containerd, kubelet and pods), when running. */
  readonly memoryBytes: number | null;
  /** Allocatable of the two device resources, as the node reports them. */
  readonly devices: Readonly<Record<string, string>>;
  /** When the kubelet last reported the Ready condition (a Node object outlives a stopped node). */
  readonly heartbeatAt: string | null;
}

export const DEVICE_RESOURCES = ["devices.kubevirt.io/kvm", "devices.kubevirt.io/tun"] as const;

function run(cmd: string, args: readonly string[]): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
  return { ok: r.status === 0, stdout: r.stdout ?? "", stderr: `${r.stderr ?? ""}${r.error?.message ?? ""}` };
}

/** The real node's I/O: files, the bridge and route, the system container, the DaemonSet. */
export class RealNode {
  readonly plan: RealNodePlan;
  readonly dir: string;

  constructor(
    private readonly layout: HostLayout,
    private readonly nspawnScript: string,
    private readonly shareDir: string,
  ) {
    this.plan = realNodePlan(layout.dir);
    this.dir = path.join(layout.dir, "real-node");
  }

  private get stateDir(): string {
    return path.join(this.dir, "state");
  }

  private nspawn(args: readonly string[]) {
    return run("bash", [this.nspawnScript, ...args]);
  }

  /** True while the node's nspawn process is alive. */
  running(): boolean {
    const text = readOptionalSync(path.join(this.stateDir, "nspawn.pid"));
    if (text === undefined) return false;
    try {
      process.kill(Number(text.trim()), 0);
      return true;
    } catch {
      return false;
    }
  }

  /** Whether this host dir has a real node (started once, maybe stopped). */
  exists(): boolean {
    return existsSync(this.stateDir);
  }

  /**
   * Writes the node's files (kubeconfig with its client certificate, kubelet configuration and
   * flags, CNI network, resolver, seed) and returns how many changed.
   */
  async writeFiles(apiPort: number, kubernetesVersion: string): Promise<number> {
    const L = this.layout;
    const files = path.join(this.dir, "files");
    const seed = path.join(this.dir, "seed");
    const caCertPem = await fs.readFile(L.cert("ca"), "utf8");
    const content: [string, string, number][] = [
      [
        path.join(files, NODE_FILES.kubeconfig.file),
        renderKubeconfig({
          clusterName: CLUSTER_NAME,
          server: `https://${this.plan.bridgeAddress}:${apiPort}`,
          caCertPem,
          userName: `system:node:${this.plan.name}`,
          clientCertPem: await fs.readFile(L.cert(REAL_NODE_CERT), "utf8"),
          clientKeyPem: await fs.readFile(L.key(REAL_NODE_CERT), "utf8"),
        }),
        0o600,
      ],
      [path.join(files, NODE_FILES.ca.file), caCertPem, 0o644],
      [path.join(files, NODE_FILES.config.file), kubeletConfig(), 0o644],
      [path.join(files, NODE_FILES.flags.file), kubeletFlags(this.plan), 0o644],
      [path.join(files, NODE_FILES.cni.file), cniConfig(this.plan), 0o644],
      [path.join(files, NODE_FILES.containerd.file), containerdConfig(kubernetesVersion), 0o644],
      // The bridge answers no DNS: the node and its pods resolve nothing but /etc/hosts, as offline.
      [path.join(files, NODE_FILES.resolv.file), `nameserver ${this.plan.bridgeAddress}\n`, 0o644],
      ...Object.entries(seedFiles(this.plan, L.dir)).map(([name, text]): [string, string, number] => [
        path.join(seed, name),
        text,
        0o644,
      ]),
    ];
    let changed = 0;
    for (const [file, text, mode] of content) {
      if ((await readOptional(file)) === text) continue;
      await writeFileAtomic(file, text, mode);
      changed++;
    }
    return changed;
  }

  /** The bridge with the host's address, and the host's route to the node's pods. */
  network(): void {
    const p = this.plan;
    const up = this.nspawn(["bridge-up", "--bridge", p.bridge, "--address", `${p.bridgeAddress}/24`]);
    if (!up.ok) throw new Error(`creating bridge ${p.bridge} failed: ${up.stderr.trim()}`);
    const route = run("ip", ["route", "replace", p.podCidr, "via", p.nodeAddress, "dev", p.bridge, "onlink"]);
    if (!route.ok) throw new Error(`routing ${p.podCidr} via ${p.nodeAddress} failed: ${route.stderr.trim()}`);
  }

  /** Boots the system container (when it is not running) with its files and devices mounted. */
  start(image: DevicePluginImage): "started" | "running" {
    if (this.running()) return "running";
    const files = path.join(this.dir, "files");
    const binds = [
      ...Object.values(NODE_FILES).map((f) => `${path.join(files, f.file)}:${f.at}`),
      `${image.archive}:${IMAGE_IMPORT_DIR}/${path.basename(image.archive)}`,
      // A device node opens read-write on a read-only mount (only regular files are refused).
      "/dev/kvm:/dev/kvm",
    ];
    const r = this.nspawn([
      "up",
      "--name",
      this.plan.name,
      "--machine",
      this.plan.machine,
      "--state-dir",
      this.stateDir,
      "--seed",
      path.join(this.dir, "seed"),
      "--bridge",
      this.plan.bridge,
      ...binds.flatMap((b) => ["--bind-ro", b]),
    ]);
    if (!r.ok) throw new Error(`starting the system container failed: ${r.stderr.trim()}`);
    return "started";
  }

  /** Stops the node (an orderly poweroff), removes its route and bridge; `purge` also its root file system. */
  stop(purge: boolean): boolean {
    const wasRunning = this.running();
    if (wasRunning) {
      // Pods first, by the runtime (a container whose PID 1 ignores SIGTERM would hold the
      // node's poweroff for 90 s per scope); kubelet stopped so it restarts none of them.
      this.exec("sh", "-c", "systemctl stop kubelet; timeout 30 crictl rmp --all --force");
    }
    if (this.exists()) {
      const r = this.nspawn(["down", "--state-dir", this.stateDir, ...(purge ? ["--purge"] : [])]);
      if (!r.ok) throw new Error(`stopping ${this.plan.name} failed: ${r.stderr.trim()}`);
    }
    run("ip", ["route", "del", this.plan.podCidr, "via", this.plan.nodeAddress]);
    if (run("ip", ["link", "show", this.plan.bridge]).ok) this.nspawn(["bridge-down", "--bridge", this.plan.bridge]);
    return wasRunning;
  }

  /** The last lines of the node's console (for a failure). */
  consoleTail(lines = 30): string {
    const text = readOptionalSync(path.join(this.stateDir, "console.log"));
    return text === undefined ? "(no console log)" : text.split("\n").slice(-lines).join("\n");
  }

  /** Runs a command in the node (nsenter); its output, or the failure. */
  exec(...cmd: string[]) {
    return this.nspawn(["exec", "--state-dir", this.stateDir, "--", ...cmd]);
  }

  /** Bytes charged to the node's memory cgroup (nspawn-node.sh lists its cgroups in state/cgroups). */
  memoryBytes(): number | null {
    const list = readOptionalSync(path.join(this.stateDir, "cgroups"));
    const dir = list?.split("\n").find((d) => d.startsWith("/sys/fs/cgroup/memory/"));
    if (!dir) return null;
    const usage = readOptionalSync(path.join(dir, "memory.usage_in_bytes"));
    return usage === undefined ? null : Number(usage.trim());
  }

  async status(api: KubeApi | undefined): Promise<RealNodeStatus> {
    const running = this.running();
    let node: ObservedNode | undefined;
    if (api) {
      const res = await api.request<ObservedNode>("GET", `/api/v1/nodes/${this.plan.name}`);
      if (res.status === 200) node = res.json as ObservedNode;
    }
    const allocatable = node?.status?.allocatable ?? {};
    const conditions = (node?.status?.conditions ?? []) as readonly { type: string; lastHeartbeatTime?: string }[];
    return {
      name: this.plan.name,
      running,
      ready: running && node !== undefined && isNodeReady(node),
      address: this.plan.nodeAddress,
      memoryBytes: running ? this.memoryBytes() : null,
      devices: Object.fromEntries(DEVICE_RESOURCES.map((r) => [r, allocatable[r] ?? "0"])),
      heartbeatAt: conditions.find((c) => c.type === "Ready")?.lastHeartbeatTime ?? null,
    };
  }

  /** The kubelet's Kubernetes version, from `.tools/versions.json` (the node image's kubelet is the toolchain's). */
  kubernetesVersion(): string {
    const file = path.join(this.shareDir, "..", "versions.json");
    const text = readOptionalSync(file);
    const v =
      text === undefined
        ? undefined
        : (JSON.parse(text) as { tools?: Record<string, { version?: unknown }> }).tools?.["kubernetes-node"]?.version;
    if (typeof v !== "string") throw new Error(`${file} names no kubernetes-node version: run 'npm run toolchain'`);
    return v;
  }

  /** The device plugin's image reference, and the archive the node imports. */
  image(): DevicePluginImage {
    return devicePluginImage(this.shareDir);
  }
}
