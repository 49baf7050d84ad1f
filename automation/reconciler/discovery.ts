/**
 * Finds the stacks of a project: every `stacks/Pulumi.<stack>.yaml` (read by us: the Node
 * Automation API's stack-settings helpers ignore `stackConfigDir`) and every stack the backend
 * holds. A file that does not parse is reported invalid; a backend stack without a file is
 * orphaned (reported, never destroyed).
 */
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import {
  ClusterSpecError,
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
  /** Configuration of the g8s policies (g8s project only: other projects are not checked). */
  readonly policyConfig?: { readonly clusterId: string; readonly publicApi: boolean };
}

export interface StackSource {
  discover(options?: { readonly includeBackend?: boolean }): Promise<DiscoveredStack[]>;
}

export interface ProjectStackSourceOptions {
  readonly projectDir: string;
  /** Lists the backend's stacks; undefined skips orphan detection. */
  readonly listBackendStacks?: () => Promise<string[]>;
  readonly reconcileDefaults: Partial<ReconcileSpec>;
  /** Only these stacks (files and backend stacks alike); default every stack. */
  readonly only?: readonly string[];
}

/** The project's name from Pulumi.yaml. */
export async function projectName(projectDir: string): Promise<string> {
  const text = await fs.readFile(path.join(projectDir, "Pulumi.yaml"), "utf8");
  const doc = parseYaml(text) as { name?: unknown } | null;
  if (typeof doc?.name !== "string") throw new Error(`${path.join(projectDir, "Pulumi.yaml")}: no project name`);
  return doc.name;
}

export class ProjectStackSource implements StackSource {
  private readonly cache = new Map<string, { hash: string; result: DiscoveredStack }>();
  private lastBackend: Set<string> | undefined;
  private isG8s: boolean | undefined;

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
    this.isG8s ??= (await projectName(this.options.projectDir).catch(() => "")) === "g8s";
    const display = path.relative(this.options.projectDir, file);
    let result: DiscoveredStack;
    try {
      // The g8s project validates the whole cluster spec; other projects only the g8s: keys.
      const opts = { reconcileDefaults: this.options.reconcileDefaults };
      const parsed = this.isG8s ? parseStackFile(text, display, opts) : parseStackSettings(text, display, opts);
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
      result = { name, file, fileHash: hash, error: err.lines().join("\n") };
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
