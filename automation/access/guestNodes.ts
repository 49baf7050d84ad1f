/**
 * Commands on a guest cluster's nodes through its own API, the same on every platform (AWS,
 * KVM, libvirt, the lab): kubectl with the admin kubeconfig the stack exports, and a short-lived
 * privileged helper pod per node that enters the node's namespaces (nsenter into pid 1), so a
 * script runs on the node as root with the node's own tools. The pod needs no image of its own:
 * it runs an image the node already has (the caller names it, e.g. the etcd member's) and takes
 * the loader, the libraries and nsenter from the node's root file system, mounted read-only.
 *
 * The admin kubeconfig is written to a private temporary directory (0700, the file 0600) and
 * removed on close; nothing of it is printed.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { parse, stringify } from "yaml";
import { isExecutable, PROJECT_ROOT } from "../engine/toolchain";
import type { StateResource } from "../reconciler/types";
import { AccessError, adminKubeconfigOutput, endpointFromState, reachedAt } from "./userKubeconfig";

/** Environment variable naming the kubectl to use instead of the toolchain's or PATH's. */
export const KUBECTL_OVERRIDE_ENV = "G8S_KUBECTL";
export const HELPER_NAMESPACE = "kube-system";
/** The label every helper pod carries (its value: the task), so a leftover one is found and removed. */
export const HELPER_TASK_LABEL = "g8s.dev/task";

/** The node's root file system inside the helper pod, and what runs nsenter from it (x86_64 nodes, merged /usr). */
const HOST = "/host";
const HOST_LIBS = `${HOST}/usr/lib/x86_64-linux-gnu`;
const HOST_LOADER = `${HOST_LIBS}/ld-linux-x86-64.so.2`;
/** The node's usual PATH, whatever the image's. */
const NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** argv prefix that runs the rest in every namespace of the node's pid 1, as root. */
export const ON_NODE = [
  HOST_LOADER,
  "--library-path",
  HOST_LIBS,
  `${HOST}/usr/bin/nsenter`,
  "--target",
  "1",
  "--mount",
  "--uts",
  "--ipc",
  "--net",
  "--pid",
  "--",
];

/** kubectl: G8S_KUBECTL, else the toolchain's (.tools/bin), else the one on PATH. */
export function findKubectl(env: NodeJS.ProcessEnv): string {
  const override = env[KUBECTL_OVERRIDE_ENV];
  const candidates = override
    ? [override]
    : [
        path.join(PROJECT_ROOT, ".tools", "bin", "kubectl"),
        ...(env.PATH ?? "")
          .split(path.delimiter)
          .filter(Boolean)
          .map((d) => path.join(d, "kubectl")),
      ];
  const found = candidates.find(isExecutable);
  if (found !== undefined) return found;
  throw new AccessError(
    override
      ? `${KUBECTL_OVERRIDE_ENV}=${override} is not an executable file`
      : `no kubectl: build the toolchain (npm run toolchain), put kubectl on PATH or set ${KUBECTL_OVERRIDE_ENV}`,
  );
}

/**
 * The admin kubeconfig the stack exports, reached at `server` when given (the API server's
 * certificate is still checked for the stack's own API name, as `g8s kubeconfig --server`).
 */
export function adminKubeconfigFromState(resources: readonly StateResource[], stack: string, server?: string): string {
  const endpoint = endpointFromState(resources, stack);
  const text = adminKubeconfigOutput(resources) as string; // endpointFromState refused a missing one
  if (server === undefined) return text;
  const reached = reachedAt(endpoint, server);
  const doc = parse(text) as { clusters: { cluster: Record<string, unknown> }[] };
  for (const c of doc.clusters) {
    c.cluster.server = reached.server;
    if (reached.tlsServerName !== undefined) c.cluster["tls-server-name"] = reached.tlsServerName;
  }
  return stringify(doc);
}

export interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

export interface RunOptions {
  /** Fed to the command's standard input (kubectl exec -i). */
  readonly stdin?: Readable;
  /** Kills kubectl after this long (default 120 s; 0: never). */
  readonly timeoutMs?: number;
}

/** kubectl against one guest cluster, with its admin kubeconfig in a private temporary file. */
export class GuestKubectl {
  private readonly dir: string;
  private readonly kubeconfig: string;

  constructor(
    private readonly kubectl: string,
    kubeconfigText: string,
  ) {
    this.dir = mkdtempSync(path.join(tmpdir(), "g8s-guest-"));
    this.kubeconfig = path.join(this.dir, "kubeconfig");
    writeFileSync(this.kubeconfig, kubeconfigText, { mode: 0o600 });
  }

  run(args: readonly string[], options: RunOptions = {}): Promise<Run> {
    return new Promise((resolve) => {
      const child = spawn(this.kubectl, ["--kubeconfig", this.kubeconfig, ...args], {
        stdio: [options.stdin ? "pipe" : "ignore", "pipe", "pipe"],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout?.on("data", (b: Buffer) => out.push(b));
      child.stderr?.on("data", (b: Buffer) => err.push(b));
      if (options.stdin && child.stdin) {
        options.stdin.pipe(child.stdin);
        child.stdin.on("error", () => undefined); // kubectl exiting early reports through its exit code
      }
      const timeoutMs = options.timeoutMs ?? 120_000;
      const timer = timeoutMs > 0 ? setTimeout(() => child.kill("SIGKILL"), timeoutMs) : undefined;
      const done = (code: number | null, extra = "") => {
        if (timer) clearTimeout(timer);
        resolve({
          code,
          out: Buffer.concat(out).toString("utf8"),
          err: Buffer.concat(err).toString("utf8") + extra,
        });
      };
      child.on("error", (e) => done(null, e.message));
      child.on("close", (code, signal) => done(code, signal ? `kubectl stopped by ${signal}` : ""));
    });
  }

  /** `kubectl ARGS -o json`, parsed; an AccessError with kubectl's message when it fails. */
  async json<T>(args: readonly string[]): Promise<T> {
    const r = await this.run([...args, "-o", "json", "--request-timeout=30s"]);
    if (r.code !== 0) throw new AccessError(`kubectl ${args.join(" ")}: ${firstLines(r.err)}`);
    return JSON.parse(r.out) as T;
  }

  /** Spawns kubectl with its standard output as a stream (a file copied out of a node). */
  stream(args: readonly string[]): { stdout: Readable; done: Promise<Run> } {
    const child = spawn(this.kubectl, ["--kubeconfig", this.kubeconfig, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const err: Buffer[] = [];
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const done = new Promise<Run>((resolve) => {
      child.on("error", (e) => resolve({ code: null, out: "", err: e.message }));
      child.on("close", (code) => resolve({ code, out: "", err: Buffer.concat(err).toString("utf8") }));
    });
    return { stdout: child.stdout, done };
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The first lines of kubectl's error output, for a message. */
export function firstLines(text: string, lines = 3): string {
  return text.trim().split("\n").slice(0, lines).join(" / ") || "(no output)";
}

/** A helper pod on `node`: privileged, the node's pid and network namespaces, the node's root at /host (read-only). */
export function helperPod(name: string, node: string, image: string, task: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: HELPER_NAMESPACE,
      labels: { "app.kubernetes.io/managed-by": "g8s", [HELPER_TASK_LABEL]: task },
    },
    spec: {
      nodeName: node,
      hostPID: true,
      hostNetwork: true,
      restartPolicy: "Never",
      // Whatever happens to the command that made it, the pod goes within the hour.
      activeDeadlineSeconds: 3600,
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      priorityClassName: "system-node-critical",
      tolerations: [{ operator: "Exists" }],
      containers: [
        {
          name: "node",
          image,
          imagePullPolicy: "IfNotPresent",
          // The node's sleep, in the container's own mount namespace: an exec joins the namespaces
          // of this process, so it must not have entered the node's (ON_NODE does that per exec).
          command: [HOST_LOADER, "--library-path", HOST_LIBS, `${HOST}/usr/bin/sleep`, "3600"],
          securityContext: { privileged: true, runAsUser: 0, runAsGroup: 0 },
          volumeMounts: [{ name: "node-root", mountPath: HOST, readOnly: true }],
        },
      ],
      volumes: [{ name: "node-root", hostPath: { path: "/", type: "Directory" } }],
    },
  };
}

/**
 * One helper pod per node, made on demand and made again when it is gone (an etcd restore
 * forgets every pod made after its snapshot); `run` executes a bash script on the node, its
 * arguments passed as arguments (never spliced into the script).
 */
export class NodeShells {
  private readonly pods = new Map<string, string>();
  private generation = 0;

  constructor(
    private readonly kubectl: GuestKubectl,
    private readonly image: string,
    private readonly task: string,
  ) {}

  /** Makes (or makes again) the helper pods of `nodes` and waits until they run. */
  async open(nodes: readonly string[]): Promise<void> {
    this.generation++;
    const stamp = `${Date.now().toString(36)}${this.generation}`;
    const made = nodes.map((node, i) => {
      const name = `g8s-${this.task}-${i}-${stamp}`;
      this.pods.set(node, name);
      return helperPod(name, node, this.image, this.task);
    });
    const list = JSON.stringify({ apiVersion: "v1", kind: "List", items: made });
    const create = await this.kubectl.run(["create", "-f", "-", "--request-timeout=30s"], {
      stdin: Readable.from([list]),
    });
    if (create.code !== 0) throw new AccessError(`helper pods on ${nodes.join(", ")}: ${firstLines(create.err)}`);
    const names = nodes.map((n) => `pod/${this.pods.get(n) as string}`);
    const ready = await this.kubectl.run(
      ["wait", "-n", HELPER_NAMESPACE, "--for=condition=Ready", "--timeout=120s", ...names],
      { timeoutMs: 150_000 },
    );
    if (ready.code !== 0)
      throw new AccessError(
        `helper pods on ${nodes.join(", ")} did not start in 120 s (image ${this.image}): ${firstLines(ready.err)}`,
      );
  }

  /** Opens the helper pods of those of `nodes` that have none (or lost theirs: `forget`). */
  async ensure(nodes: readonly string[]): Promise<void> {
    const missing = nodes.filter((n) => !this.pods.has(n));
    if (missing.length > 0) await this.open(missing);
  }

  /** Drops `node`'s helper pod from the ones used (it is gone, or unreachable): `ensure` makes another. */
  forget(node: string): void {
    this.pods.delete(node);
  }

  private execArgs(node: string, script: string, args: readonly string[], stdin: boolean): string[] {
    const pod = this.pods.get(node);
    if (pod === undefined) throw new Error(`no helper pod on ${node}: open it first`);
    return [
      "exec",
      ...(stdin ? ["-i"] : []),
      "-n",
      HELPER_NAMESPACE,
      pod,
      "-c",
      "node",
      "--",
      ...ON_NODE,
      "/bin/bash",
      "-c",
      `export PATH=${NODE_PATH}\n${script}`,
      "g8s",
      ...args,
    ];
  }

  /** Runs `script` (bash) on `node` with `args` as $1…; its exit code and output. */
  run(node: string, script: string, args: readonly string[] = [], options: RunOptions = {}): Promise<Run> {
    return this.kubectl.run(this.execArgs(node, script, args, options.stdin !== undefined), options);
  }

  /** `script`'s standard output on `node` as a stream. */
  stream(node: string, script: string, args: readonly string[] = []): { stdout: Readable; done: Promise<Run> } {
    return this.kubectl.stream(this.execArgs(node, script, args, false));
  }

  /** Removes every helper pod of this task (also a leftover of an earlier run); never waits. */
  async close(): Promise<void> {
    await this.kubectl.run(
      [
        "delete",
        "pod",
        "-n",
        HELPER_NAMESPACE,
        "-l",
        `${HELPER_TASK_LABEL}=${this.task}`,
        "--wait=false",
        "--ignore-not-found",
        "--request-timeout=30s",
      ],
      { timeoutMs: 45_000 },
    );
    this.pods.clear();
  }
}
