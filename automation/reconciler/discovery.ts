/**
 * Finds the stacks of a project: every `stacks/Pulumi.<stack>.yaml` (read by us: the Node
 * Automation API's stack-settings helpers ignore `stackConfigDir`) and every stack the backend
 * holds. A file that does not parse is reported invalid; a backend stack without a file is
 * orphaned (reported, never destroyed).
 */
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import {
  ClusterSpecError,
  G8S_CONFIG_KEYS,
  durationSeconds,
  parseStackFile,
  parseStackSettings,
  stackNameOf,
  type ParsedStackFile,
  type ReconcileMode,
  type ReconcileSpec,
} from "../../components/spec";

export interface StackFileSettings {
  readonly mode: ReconcileMode;
  readonly intervalSeconds: number;
  readonly decommission: boolean;
}

export interface DiscoveredStack {
  readonly name: string;
  /** Absolute path of the stack file; undefined for an orphan. */
  readonly file?: string;
  readonly fileHash?: string;
  /** Undefined when the file is missing or invalid. */
  readonly settings?: StackFileSettings;
  /** Located problems of an invalid file, one per line. */
  readonly error?: string;
  /** The backend holds this stack (unknown when the backend could not be listed). */
  readonly inBackend?: boolean;
  /** Configuration of the g8s policies (with spec checks only: other projects are not checked). */
  readonly policyConfig?: { readonly clusterId: string; readonly publicApi: boolean };
  /** `etcd.backup.interval` in seconds, when the cluster's masters take snapshots (the daemon's etcd watch). */
  readonly etcdBackupSeconds?: number;
  /**
   * The cluster's `kubernetes.version` and where the file sets it (`<file>: kubernetes.version`),
   * for the version-change check and the rolling upgrade; `nodeImage`: its nodes run the node
   * image (`packages: image`), whose CoreDNS an upgrade keeps.
   */
  readonly kubernetes?: { readonly version: string; readonly field: string; readonly nodeImage?: boolean };
  /** A KVM cluster's namespace on the host cluster: where its node pods are rolled (automation/access/roll.ts). */
  readonly kvmNamespace?: string;
}

export interface StackSource {
  discover(options?: { readonly includeBackend?: boolean }): Promise<DiscoveredStack[]>;
}

export interface ProjectStackSourceOptions {
  readonly projectDir: string;
  /** Lists the backend's stacks; undefined skips orphan detection. */
  readonly listBackendStacks?: () => Promise<string[]>;
  readonly reconcileDefaults: Partial<ReconcileSpec>;
  /**
   * The stack files are g8s clusters: validate the whole `g8s:cluster` spec and give each stack
   * its policy configuration. False reads only the `g8s:` reconcile keys (any other project).
   */
  readonly specChecks: boolean;
  /** Only these stacks (files and backend stacks alike); default every stack. */
  readonly only?: readonly string[];
}

/** The hint a missing `g8s:cluster` gets when spec checks are on. */
const NOT_A_CLUSTER_HINT = "(a project whose stacks are not g8s clusters: set --spec-checks false)";

/** An invalid file's problems, one per line; a missing cluster spec says how to turn checks off. */
function problemLines(err: ClusterSpecError): string {
  const lines = err.lines();
  return err.issues
    .map((issue, i) =>
      issue.path === G8S_CONFIG_KEYS.cluster && issue.message.startsWith("is missing")
        ? `${lines[i]} ${NOT_A_CLUSTER_HINT}`
        : lines[i],
    )
    .join("\n");
}

export class ProjectStackSource implements StackSource {
  private readonly cache = new Map<string, { hash: string; result: DiscoveredStack }>();
  private lastBackend: Set<string> | undefined;

  constructor(private readonly options: ProjectStackSourceOptions) {}

  private async parseFile(file: string, name: string): Promise<DiscoveredStack | undefined> {
    let text: string;
    try {
      text = await fs.readFile(file, "utf8");
    } catch {
      return undefined; // removed between listing and reading: gone
    }
    const hash = createHash("sha256").update(text).digest("hex");
    const cached = this.cache.get(file);
    if (cached?.hash === hash) return cached.result;
    const display = path.relative(this.options.projectDir, file);
    let result: DiscoveredStack;
    try {
      const opts = { reconcileDefaults: this.options.reconcileDefaults };
      const parsed = this.options.specChecks
        ? parseStackFile(text, display, opts)
        : parseStackSettings(text, display, opts);
      const cluster = "cluster" in parsed ? (parsed as ParsedStackFile).cluster : undefined;
      result = {
        name,
        file,
        fileHash: hash,
        ...(cluster
          ? {
              policyConfig: {
                clusterId: cluster.id,
                publicApi: cluster.provider === "aws" ? cluster.aws.publicApi : false,
              },
              kubernetes: {
                version: cluster.kubernetes.version,
                field: `${display}: kubernetes.version`,
                ...(cluster.kubernetes.packages === "image" ? { nodeImage: true } : {}),
              },
              ...(cluster.provider === "kvm" ? { kvmNamespace: `${cluster.kvm.namespacePrefix}${cluster.id}` } : {}),
              ...(cluster.etcd.backup.enabled
                ? { etcdBackupSeconds: durationSeconds(cluster.etcd.backup.interval) }
                : {}),
            }
          : {}),
        settings: {
          mode: parsed.reconcile.mode,
          intervalSeconds: durationSeconds(parsed.reconcile.interval),
          decommission: parsed.decommission,
        },
      };
    } catch (err) {
      if (!(err instanceof ClusterSpecError)) throw err;
      result = {
        name,
        file,
        fileHash: hash,
        error: this.options.specChecks ? problemLines(err) : err.lines().join("\n"),
      };
    }
    this.cache.set(file, { hash, result });
    return result;
  }

  private selected(name: string): boolean {
    return this.options.only === undefined || this.options.only.includes(name);
  }

  async discover(options: { readonly includeBackend?: boolean } = {}): Promise<DiscoveredStack[]> {
    const stacksDir = path.join(this.options.projectDir, "stacks");
    const entries = await fs.readdir(stacksDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return [] as string[];
      throw err;
    });
    const found = new Map<string, DiscoveredStack>();
    for (const entry of entries.sort()) {
      const name = stackNameOf(entry);
      if (name === undefined || !this.selected(name)) continue;
      const stack = await this.parseFile(path.join(stacksDir, entry), name);
      if (stack) found.set(name, stack);
    }
    for (const file of this.cache.keys()) {
      if (!found.has(stackNameOf(file) ?? "")) this.cache.delete(file);
    }
    if (options.includeBackend && this.options.listBackendStacks) {
      this.lastBackend = new Set(await this.options.listBackendStacks());
    }
    const backend = this.lastBackend;
    const result: DiscoveredStack[] = [...found.values()].map((s) => ({ ...s, inBackend: backend?.has(s.name) }));
    for (const name of backend ?? []) {
      if (!found.has(name) && this.selected(name)) result.push({ name, inBackend: true });
    }
    return result.sort((a, b) => a.name.localeCompare(b.name));
  }
}
