/**
 * Reads a Pulumi stack file (`stacks/Pulumi.<stack>.yaml`) as text, the way `g8s validate` and
 * the reconciler see it: YAML errors with their line, the `g8s:` config keys checked, secrets
 * required where a value must never be in plain text.
 */
import * as path from "node:path";
import { parseDocument } from "yaml";
import { ClusterSpecError, type SpecIssue } from "./errors";
import { parseClusterSpec, parseReconcileSpec } from "./parse";
import { unknownKeyMessage } from "./suggest";
import type { ClusterSpec, ReconcileSpec } from "./schema";

/** Config keys g8s reads from a stack file; any other `g8s:` key is a typo. */
export const G8S_CONFIG_KEYS = {
  cluster: "g8s:cluster",
  reconcile: "g8s:reconcile",
  decommission: "g8s:decommission",
  hostKubeconfig: "g8s:hostKubeconfig",
  vaultToken: "g8s:vaultToken",
} as const;

/** Keys whose values are credentials: they must be Pulumi secrets (`pulumi config set --secret`). */
const SECRET_KEYS: readonly string[] = [G8S_CONFIG_KEYS.hostKubeconfig, G8S_CONFIG_KEYS.vaultToken];

const STACK_FILE_RE = /^Pulumi\.([^/]+)\.ya?ml$/;

/** The stack a file configures (`Pulumi.eu1prod.yaml` → `eu1prod`), or undefined. */
export function stackNameOf(file: string): string | undefined {
  return STACK_FILE_RE.exec(path.basename(file))?.[1];
}

export interface StackSettings {
  /** Stack name from the file name, when it follows `Pulumi.<stack>.yaml`. */
  readonly stack?: string;
  readonly reconcile: ReconcileSpec;
  /** `g8s:decommission: <the stack's name>`: the only way the reconciler destroys a stack (decommissionProblem). */
  readonly decommission: boolean;
  /** The raw `g8s:cluster` value, if any. */
  readonly clusterRaw?: unknown;
}

export interface ParsedStackFile extends StackSettings {
  readonly cluster: ClusterSpec;
}

function isSecret(value: unknown): boolean {
  return typeof value === "object" && value !== null && "secure" in value && Object.keys(value).length === 1;
}

function prefixed(prefix: string, issues: readonly SpecIssue[]): SpecIssue[] {
  return issues.map((i) => ({ path: i.path === "" ? prefix : `${prefix}.${i.path}`, message: i.message }));
}

/**
 * Parses the text of a stack file and checks every `g8s:` key but the cluster spec itself.
 * Projects other than g8s (fixtures, other programs) use this alone.
 * @throws ClusterSpecError
 */
export function parseStackSettings(
  text: string,
  source: string,
  options: { readonly reconcileDefaults?: Partial<ReconcileSpec> } = {},
): StackSettings {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    // One mistake often yields several parser errors at one line: report the first of each line.
    const byLine = new Map<number, SpecIssue>();
    for (const e of doc.errors) {
      const pos = e.linePos?.[0];
      const line = pos?.line ?? 0;
      if (byLine.has(line)) continue;
      const what = e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
      byLine.set(line, { path: pos ? `line ${pos.line}, column ${pos.col}` : "", message: `invalid YAML: ${what}` });
    }
    throw new ClusterSpecError([...byLine.values()], source);
  }
  const top: unknown = doc.toJS();
  const issues: SpecIssue[] = [];
  const stack = stackNameOf(source);
  if (stack === undefined) {
    issues.push({ path: "", message: "the file name must be Pulumi.<stack>.yaml: Pulumi reads no other name" });
  }
  if (top === null || top === undefined) {
    throw new ClusterSpecError([...issues, { path: "config", message: "is missing: the file is empty" }], source);
  }
  if (typeof top !== "object" || Array.isArray(top)) {
    throw new ClusterSpecError(
      [...issues, { path: "", message: "the file must be a YAML mapping with a config key" }],
      source,
    );
  }
  const config = (top as Record<string, unknown>).config ?? {};
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ClusterSpecError(
      [...issues, { path: "config", message: "must be a mapping of namespace:key to value" }],
      source,
    );
  }
  const entries = config as Record<string, unknown>;
  const known: readonly string[] = Object.values(G8S_CONFIG_KEYS);
  for (const [key, value] of Object.entries(entries)) {
    if (!key.includes(":")) {
      issues.push({ path: key, message: `config keys need a namespace: write g8s:${key} (or <provider>:${key})` });
    } else if (key.startsWith("g8s:") && !known.includes(key)) {
      issues.push({ path: key, message: unknownKeyMessage(key, known) });
    } else if (SECRET_KEYS.includes(key) && !isSecret(value)) {
      issues.push({
        path: key,
        message: `must be a secret: set it with 'pulumi config set --secret ${key} …' (and rotate the exposed value)`,
      });
    }
  }

  let reconcile: ReconcileSpec | undefined;
  try {
    const raw = entries[G8S_CONFIG_KEYS.reconcile];
    const defaults = options.reconcileDefaults ?? {};
    // The daemon's defaults fill what the file leaves out; the schema's fill the rest.
    reconcile = parseReconcileSpec(
      raw === undefined || raw === null
        ? defaults
        : typeof raw === "object" && !Array.isArray(raw)
          ? { ...defaults, ...raw }
          : raw,
      source,
    );
  } catch (err) {
    if (!(err instanceof ClusterSpecError)) throw err;
    issues.push(...prefixed(G8S_CONFIG_KEYS.reconcile, err.issues));
  }
  const decommission = entries[G8S_CONFIG_KEYS.decommission] ?? false;
  const refused = decommissionProblem(decommission, stack);
  if (refused !== undefined) issues.push({ path: G8S_CONFIG_KEYS.decommission, message: refused });
  if (issues.length > 0 || reconcile === undefined) throw new ClusterSpecError(issues, source);
  return {
    stack,
    reconcile,
    decommission: decommission !== false && refused === undefined,
    clusterRaw: entries[G8S_CONFIG_KEYS.cluster],
  };
}

/**
 * Why a `g8s:decommission` value does not decommission, or undefined when it does (or is off).
 * Destroying a cluster is deliberate: the value must repeat the stack's name, as a confirmation
 * (a copied `true`, or another stack's file, destroys nothing).
 */
export function decommissionProblem(value: unknown, stack: string | undefined): string | undefined {
  if (value === false) return undefined;
  const confirm = `g8s:decommission: ${stack ?? "<stack>"}`;
  if (value === true) {
    return (
      `true alone destroys nothing: repeat the stack's name to confirm (${confirm}); the reconciler then ` +
      `lifts the protection of the cluster's etcd volumes, CA, key and namespace and destroys all of it`
    );
  }
  if (typeof value !== "string") return `must be the stack's name, to destroy it (${confirm}), or false`;
  if (stack === undefined) return "the file name gives no stack to confirm: name the file Pulumi.<stack>.yaml";
  if (value !== stack) return `names '${value}', not this stack: ${confirm} destroys this one`;
  return undefined;
}

/**
 * Parses a g8s stack file: the settings above plus a valid `g8s:cluster` whose id is the stack name.
 * Collects every problem of the file before it throws.
 * @throws ClusterSpecError
 */
export function parseStackFile(
  text: string,
  source: string,
  options: { readonly reconcileDefaults?: Partial<ReconcileSpec> } = {},
): ParsedStackFile {
  let settings: StackSettings | undefined;
  const issues: SpecIssue[] = [];
  try {
    settings = parseStackSettings(text, source, options);
  } catch (err) {
    if (!(err instanceof ClusterSpecError)) throw err;
    // YAML errors and a missing config leave nothing else to check.
    if (err.issues.some((i) => i.message.startsWith("invalid YAML") || i.path === "config")) throw err;
    issues.push(...err.issues);
  }
  let cluster: ClusterSpec | undefined;
  try {
    cluster = parseStackCluster(settings?.clusterRaw ?? rawCluster(text), stackNameOf(source), source);
  } catch (err) {
    if (!(err instanceof ClusterSpecError)) throw err;
    issues.push(...err.issues);
  }
  if (issues.length > 0 || !settings || !cluster) throw new ClusterSpecError(issues, source);
  return { ...settings, cluster };
}

/**
 * The cluster of stack `stack` from its raw `g8s:cluster` value: present, valid, and named by the
 * stack (one stack per cluster). The one check of a stack's cluster, for `g8s validate`, the
 * reconciler and the Pulumi program alike.
 * @param stack the stack name; undefined when the file name does not give one (reported elsewhere)
 * @throws ClusterSpecError
 */
export function parseStackCluster(raw: unknown, stack: string | undefined, source: string): ClusterSpec {
  if (raw === undefined) {
    throw new ClusterSpecError(
      [{ path: G8S_CONFIG_KEYS.cluster, message: "is missing: every g8s stack file describes one cluster" }],
      source,
    );
  }
  const cluster = parseClusterSpec(raw, source);
  if (stack !== undefined && cluster.id !== stack) {
    throw new ClusterSpecError(
      [{ path: "id", message: `must equal the stack name '${stack}': one stack per cluster, named by its id` }],
      source,
    );
  }
  return cluster;
}

function rawCluster(text: string): unknown {
  const top = parseDocument(text).toJS() as { config?: Record<string, unknown> } | null;
  return top?.config?.[G8S_CONFIG_KEYS.cluster];
}
