/**
 * Lab-test harness: a sandbox copy of the g8s project with one lab stack file, `g8s lab up/down`
 * on it, and commands against the guest (kubectl with its admin kubeconfig) and inside its nodes.
 * Needs root (namespaces, cgroups, a bridge) and the toolchain's node image.
 */
import * as assert from "node:assert/strict";
import { execFile, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { PROJECT_ROOT } from "../../automation/engine";
import { createSandbox, type Sandbox } from "../integration/harness";

export const TOOLS_BIN = path.join(PROJECT_ROOT, ".tools", "bin");
export const KUBECTL = path.join(TOOLS_BIN, "kubectl");
const NSPAWN = path.join(PROJECT_ROOT, "tools", "node-image", "nspawn-node.sh");
const QEMU_NODE = path.join(PROJECT_ROOT, "tools", "node-image", "qemu-node.sh");
const G8S = path.join(PROJECT_ROOT, "bin/g8s.js");

/** `kubectl` arguments that print `<node>=<Ready status>` per node, space separated. */
export const READINESS_ARGS = [
  "get",
  "nodes",
  "-o",
  "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=='Ready')].status} {end}",
] as const;

const execFileAsync = promisify(execFile);

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Checks every 2 s until `check` holds (a throw counts as not yet); fails naming `what` after `ms`. Resolves with the seconds it took. */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, ms = 300_000): Promise<number> {
  const start = Date.now();
  for (;;) {
    const ok = await Promise.resolve()
      .then(check)
      .catch(() => false);
    if (ok) return (Date.now() - start) / 1000;
    if (Date.now() - start > ms) assert.fail(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(2000);
  }
}

export interface LabStack {
  readonly id: string;
  readonly masters: number;
  readonly workers: number;
  readonly serviceCidr: string;
  readonly podCidr: string;
  readonly certTtl?: string;
  readonly users?: readonly { name: string; groups: string[] }[];
  /** Memory of each worker (default 4 GiB). */
  readonly workerMemoryGiB?: number;
  /** `kvm.accel` (default: the spec's). */
  readonly accel?: "kvm" | "tcg" | "auto";
  /** `pki.certificateAuthorities` (default: the spec's, one CA `initial`). */
  readonly certificateAuthorities?: { readonly trusted: readonly string[]; readonly issuing: string };
  /** `etcd.backup.retention` (default: the spec's). */
  readonly etcdBackupRetention?: number;
  /** `etcd.backup.objectStore` (default: none, snapshots stay on the volume). */
  readonly etcdObjectStore?: { readonly endpoint: string; readonly bucket: string; readonly credentialsSecret: string };
  /** `g8s:reconcile.mode` (default correct). */
  readonly reconcileMode?: "correct" | "detect" | "off";
  /** `kubernetes.version` (default: the node image's own, 1.34.12). */
  readonly kubernetesVersion?: string;
  /** `pki.serviceAccountKeys` (default: the spec's, one key `initial`). */
  readonly serviceAccountKeys?: { readonly trusted: readonly string[]; readonly signing: string };
}

/** A KVM-platform stack file the lab can boot: flannel, the node image, local PKI. */
export function labStackYaml(s: LabStack): string {
  return stringify({
    config: {
      "g8s:cluster": {
        id: s.id,
        provider: "kvm",
        baseDomain: "k8s.lab.internal",
        kubernetes: {
          version: s.kubernetesVersion ?? "1.34.12",
          serviceCidr: s.serviceCidr,
          podCidr: s.podCidr,
          cni: "flannel",
          packages: "image",
        },
        kvm: { storage: "hostPath", ...(s.accel === undefined ? {} : { accel: s.accel }) },
        masters: { count: s.masters, cpus: 2, memoryGiB: 4, diskGiB: 20 },
        nodePools: [{ name: "default", count: s.workers, cpus: 2, memoryGiB: s.workerMemoryGiB ?? 4, diskGiB: 20 }],
        pki: {
          backend: "local",
          certTtl: s.certTtl ?? "24h",
          users: s.users ?? [],
          ...(s.serviceAccountKeys === undefined ? {} : { serviceAccountKeys: s.serviceAccountKeys }),
          ...(s.certificateAuthorities === undefined ? {} : { certificateAuthorities: s.certificateAuthorities }),
        },
        ingress: { enabled: false },
        etcd: {
          backup: {
            ...(s.etcdBackupRetention === undefined ? {} : { retention: s.etcdBackupRetention }),
            ...(s.etcdObjectStore === undefined ? {} : { objectStore: s.etcdObjectStore }),
          },
        },
      },
      "g8s:reconcile": { mode: s.reconcileMode ?? "correct", interval: "1m" },
    },
  });
}

export interface Result {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/** One lab cluster of a test file: its stack file, its lab directory, commands against it. */
export class TestLab {
  private sandbox?: Sandbox;
  stackFile = "";
  labDir = "";
  /** The guest's admin kubeconfig, once `up` succeeded. */
  admin = "";

  async create(stack: LabStack): Promise<void> {
    this.sandbox = await createSandbox("g8s-lab", { project: "g8s" });
    this.stackFile = path.join(this.sandbox.projectDir, "stacks", `Pulumi.${stack.id}.yaml`);
    this.labDir = path.join(this.sandbox.root, "lab");
    this.write(stack);
  }

  write(stack: LabStack): void {
    writeFileSync(this.stackFile, labStackYaml(stack));
  }

  /**
   * `g8s lab up [ARGS...]` without blocking the event loop (watchers keep sampling meanwhile);
   * progress lines echoed, also when it fails.
   */
  async up(timeoutMinutes = 12, args: readonly string[] = []): Promise<{ seconds: number }> {
    const started = Date.now();
    const r = await run(process.execPath, [
      G8S,
      "lab",
      "up",
      this.stackFile,
      "--lab-dir",
      this.labDir,
      "--timeout",
      String(timeoutMinutes),
      ...args,
    ]);
    process.stdout.write(
      r.err
        .split("\n")
        .filter((l) => l.startsWith("[lab"))
        .map((l) => `        ${l}\n`)
        .join(""),
    );
    if (r.code !== 0) throw new Error(`g8s lab up failed:\n${r.err.split("\n").slice(-60).join("\n")}`);
    this.admin = r.out.split("\n").pop() as string;
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(`      lab up: every node Ready after ${seconds.toFixed(1)} s\n`);
    return { seconds };
  }

  /**
   * Removes everything the lab made, then the sandbox; safe after a failed `create` or `up`.
   * `G8S_LAB_KEEP=1` keeps a lab whose test failed, for a look (`g8s lab down` removes it).
   */
  dispose(failed = false): void {
    if (failed && process.env.G8S_LAB_KEEP === "1") {
      process.stdout.write(`      kept for a look: g8s lab down ${this.stackFile} --lab-dir ${this.labDir}\n`);
      return;
    }
    if (this.stackFile) {
      const down = spawnSync(process.execPath, [G8S, "lab", "down", this.stackFile, "--lab-dir", this.labDir], {
        encoding: "utf8",
      });
      if (down.status !== 0) throw new Error(`g8s lab down failed:\n${down.stderr}`);
    }
    this.sandbox?.dispose();
  }

  /**
   * `g8s ARGS…` as an operator runs it against the lab's stack: the reconciler's backend,
   * passphrase and state directory that `g8s lab up` used.
   */
  g8s(...args: string[]): Result {
    const r = spawnSync(process.execPath, [G8S, ...args], { encoding: "utf8", env: this.g8sEnv() });
    return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
  }

  /** `g8s ARGS…` without blocking the event loop (a long command: an etcd restore). */
  async g8sAsync(...args: string[]): Promise<Result> {
    const r = await run(process.execPath, [G8S, ...args], this.g8sEnv());
    return { ...r, err: r.err.trim() };
  }

  /**
   * `g8s ARGS…` as the daemon runs in the host cluster, where the guest API's Service name
   * (`api.<namespace>.svc`, the stack's adminKubeconfig server) resolves: in a mount namespace of
   * its own whose /etc/hosts adds the name as the lab's nodes have it (master-0's address).
   */
  async g8sInHostDns(...args: string[]): Promise<Result> {
    const api = readFileSync(path.join(this.labDir, "nodes", "master-0", "hosts"), "utf8")
      .split("\n")
      .filter((l) => / api\./.test(l));
    const hosts = path.join(this.labDir, "hosts-with-api");
    writeFileSync(hosts, `${readFileSync("/etc/hosts", "utf8").trimEnd()}\n${api.join("\n")}\n`);
    const r = await run(
      "unshare",
      [
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount --bind "$0" /etc/hosts && exec "$@"',
        hosts,
        process.execPath,
        G8S,
        ...args,
      ],
      this.g8sEnv(),
    );
    return { ...r, err: r.err.trim() };
  }

  private g8sEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      G8S_PROJECT_DIR: path.dirname(path.dirname(this.stackFile)),
      G8S_STATE_DIR: path.join(this.labDir, "reconciler"),
      G8S_BACKEND_URL: `file://${path.join(this.labDir, "state")}`,
      G8S_OFFLINE: "true",
      PULUMI_CONFIG_PASSPHRASE_FILE: path.join(this.labDir, "passphrase"),
      PULUMI_CONFIG_PASSPHRASE: undefined,
      // The host cluster the stack is applied to (a reconcile's up, a roll's pods).
      KUBECONFIG: path.join(this.labDir, "host", "kubeconfig"),
    };
  }

  kubectl(...args: string[]): Result {
    return this.kubectlAs(this.admin, ...args);
  }

  kubectlAs(kubeconfig: string, ...args: string[]): Result {
    const r = spawnSync(KUBECTL, ["--kubeconfig", kubeconfig, "--request-timeout", "30s", ...args], {
      encoding: "utf8",
    });
    return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
  }

  /** `kubectl apply -f -` of a List of objects, as admin. */
  apply(items: readonly object[]): Result {
    const r = spawnSync(KUBECTL, ["--kubeconfig", this.admin, "apply", "-f", "-"], {
      input: stringify({ apiVersion: "v1", kind: "List", items }),
      encoding: "utf8",
    });
    return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
  }

  /** kubectl against the lab's host cluster (where the platform's pods and Secrets are). */
  hostKubectl(...args: string[]): Result {
    const kubeconfig = path.join(this.labDir, "host", "kubeconfig");
    const r = spawnSync(KUBECTL, ["--kubeconfig", kubeconfig, "--request-timeout", "30s", ...args], {
      encoding: "utf8",
    });
    return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
  }

  /**
   * Stands in for the host's kubelets while g8s restarts nodes: the host cluster's nodes are
   * simulated (KWOK), so a pod made again runs nothing. Every 2 s this looks at the guest's pods
   * on the host; a node whose pod is a new one (another uid) is stopped and booted again by
   * `lab up` from the new pod's documents, as its VM would restart. `stop()` ends the watch and
   * names the nodes it restarted.
   */
  followPodRestarts(): { stop: () => Promise<string[]> } {
    const namespace = this.plan().namespace;
    const uids = () =>
      new Map(
        this.hostKubectl(
          "get",
          "pods",
          "-n",
          namespace,
          "-o",
          "jsonpath={range .items[*]}{.metadata.name}={.metadata.uid} {end}",
        )
          .out.split(" ")
          .filter((p) => p.includes("="))
          .map((p) => p.split("=") as [string, string]),
      );
    const seen = uids();
    const restarted: string[] = [];
    let stopping = false;
    const loop = (async () => {
      while (!stopping) {
        await sleep(2000);
        for (const [pod, uid] of uids()) {
          if (seen.get(pod) === uid || !existsSync(this.stateDir(pod))) continue;
          seen.set(pod, uid);
          const stopped = this.stopNode(pod);
          if (stopped.code !== 0) throw new Error(`stopping ${pod}: ${stopped.err}`);
          await this.up(15);
          restarted.push(pod);
        }
      }
    })();
    return {
      stop: async () => {
        stopping = true;
        await loop;
        return restarted;
      },
    };
  }

  /** The node's system-container state directory (nspawn-node.sh's --state-dir). */
  stateDir(node: string): string {
    return path.join(this.labDir, "nodes", node, "state");
  }

  /** Runs a command on a node (nsenter into its system container). */
  onNode(node: string, ...cmd: string[]): Result {
    const r = spawnSync("bash", [NSPAWN, "exec", "--state-dir", this.stateDir(node), "--", ...cmd], {
      encoding: "utf8",
    });
    return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
  }

  /** onNode without blocking: several nodes at once (a restore on every master). */
  onNodeAsync(node: string, ...cmd: string[]): Promise<Result> {
    return run("bash", [NSPAWN, "exec", "--state-dir", this.stateDir(node), "--", ...cmd]).then((r) => ({
      ...r,
      err: r.err.trim(),
    }));
  }

  /** A path inside a system-container node's root file system, as the host sees it. */
  nodePath(node: string, file: string): string {
    return path.join(this.stateDir(node), "rootfs", file);
  }

  /** Runs a command in a VM node (`g8s lab up --vm`) through its guest agent. */
  onVm(node: string, ...cmd: string[]): Result {
    const r = spawnSync("bash", [QEMU_NODE, "exec", "--state-dir", this.stateDir(node), "--", ...cmd], {
      encoding: "utf8",
    });
    return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
  }

  /** Stops a node's system container (its disk stays: a later `up` boots the same node again). */
  stopNode(node: string): Result {
    const r = spawnSync("bash", [NSPAWN, "down", "--state-dir", this.stateDir(node)], { encoding: "utf8" });
    return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
  }

  /** The lab's plan (`plan.json`): the namespace and each node's lab address. */
  plan(): { namespace: string; nodes: { name: string; role: string; address: string }[] } {
    return JSON.parse(readFileSync(path.join(this.labDir, "plan.json"), "utf8")) as ReturnType<TestLab["plan"]>;
  }

  /** Each node's Ready condition status, by name. */
  readiness(): Map<string, string> {
    const r = this.kubectl(...READINESS_ARGS);
    if (r.code !== 0) throw new Error(`kubectl get nodes: ${r.err}`);
    return new Map(r.out.split(" ").map((p) => p.split("=") as [string, string]));
  }
}

/**
 * The lab of a describe block: created and up before its tests, removed after them (kept for a
 * look with G8S_LAB_KEEP=1 when a test or the setup failed).
 */
export function useLab(stack: LabStack, upTimeoutMinutes?: number, upArgs: readonly string[] = []): TestLab {
  const lab = new TestLab();
  let failed = false;
  before(async function () {
    await lab.create(stack);
    await lab.up(upTimeoutMinutes, upArgs);
  });
  afterEach(function () {
    failed ||= this.currentTest?.state === "failed";
  });
  after(function () {
    // A failed before-all hook is no test of its own: it shows as no test having run.
    lab.dispose(failed || this.test?.parent?.tests.every((t) => t.state === undefined) === true);
  });
  return lab;
}

function run(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, env === undefined ? {} : { env });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.on("close", (code) => resolve({ code, out: out.trim(), err }));
  });
}

/** One look at the cluster through the admin kubeconfig (as `lab up` last wrote it). */
export interface ClusterSample {
  readonly at: number;
  /** ok; a TLS or authentication error (never allowed during a rotation); or no answer (a restart). */
  readonly result: "ok" | "tls" | "down";
  /** Nodes not Ready (when it answered). */
  readonly notReady: readonly string[];
  /** What the test was doing, as `phase()` said. */
  readonly phase: string;
}

/** Looks at the cluster every 2 s until `stop()`; `samples` fills as it goes. */
export function watchCluster(lab: TestLab, phase: () => string = () => "") {
  const samples: ClusterSample[] = [];
  let watching = true;
  const run = (async () => {
    while (watching) {
      const at = Date.now();
      const r = await execFileAsync(KUBECTL, [
        "--kubeconfig",
        lab.admin,
        "--request-timeout",
        "5s",
        ...READINESS_ARGS,
      ]).then(
        ({ stdout }) => ({ ok: true as const, stdout }),
        (err: { stderr?: string }) => ({ ok: false as const, text: String(err.stderr ?? err) }),
      );
      if (r.ok) {
        const notReady = r.stdout
          .trim()
          .split(" ")
          .filter((p) => !p.endsWith("=True"))
          .map((p) => p.split("=")[0]);
        samples.push({ at, result: "ok", notReady, phase: phase() });
      } else {
        const tlsError = /x509|certificate|tls:|Unauthorized/i.test(r.text);
        samples.push({ at, result: tlsError ? "tls" : "down", notReady: [], phase: phase() });
      }
      await sleep(2000);
    }
  })();
  return {
    samples,
    async stop(): Promise<void> {
      watching = false;
      await run;
    },
  };
}

/** The longest run of samples for which `bad` held, in ms (one still running counts up to now). */
export function longestRun(samples: readonly ClusterSample[], bad: (s: ClusterSample) => boolean): number {
  let worst = 0;
  let since: number | undefined;
  for (const s of samples) {
    if (bad(s)) since ??= s.at;
    else if (since !== undefined) {
      worst = Math.max(worst, s.at - since);
      since = undefined;
    }
  }
  return since === undefined ? worst : Math.max(worst, Date.now() - since);
}

/** CoreDNS as a tiny web server: its health plugin answers `OK` on :8080 (the node image has no other server). */
export const WEB_IMAGE = "registry.k8s.io/coredns/coredns:v1.12.1";

/**
 * The `web` ConfigMap and Deployment (namespace default): two replicas of WEB_IMAGE spread over
 * the nodes, control-plane nodes included, ready when /health answers. `drainSafe` adds what
 * keeps it answering while nodes are drained: a pause before each server stops (its endpoint
 * leaves every node's rules first) and a PodDisruptionBudget of one.
 */
export function webDocuments(options: { spread: "DoNotSchedule" | "ScheduleAnyway"; drainSafe?: boolean }): object[] {
  const container = {
    name: "web",
    image: WEB_IMAGE,
    imagePullPolicy: "Never",
    args: ["-conf", "/etc/web/Corefile"],
    ports: [{ containerPort: 8080 }],
    volumeMounts: [{ name: "corefile", mountPath: "/etc/web" }],
    readinessProbe: { httpGet: { path: "/health", port: 8080 }, periodSeconds: options.drainSafe ? 1 : 2 },
    ...(options.drainSafe ? { lifecycle: { preStop: { sleep: { seconds: 5 } } } } : {}),
  };
  const docs: object[] = [
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "web", namespace: "default" },
      // No zone worth serving: the health plugin's `OK` on :8080 is the web page.
      data: { Corefile: ".:5353 {\n  health :8080\n  whoami\n}\n" },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: "default" },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: {
            tolerations: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" }],
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: "kubernetes.io/hostname",
                whenUnsatisfiable: options.spread,
                labelSelector: { matchLabels: { app: "web" } },
              },
            ],
            ...(options.drainSafe ? { terminationGracePeriodSeconds: 15 } : {}),
            containers: [container],
            volumes: [{ name: "corefile", configMap: { name: "web" } }],
          },
        },
      },
    },
  ];
  if (options.drainSafe) {
    docs.push({
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: { name: "web", namespace: "default" },
      spec: { minAvailable: 1, selector: { matchLabels: { app: "web" } } },
    });
  }
  return docs;
}
