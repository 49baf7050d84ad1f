/**
 * Daemon and `g8s reconcile` settings from flags, environment and an optional YAML file
 * (`--config`), in that order of precedence, validated like stack files: each error names where
 * the value came from (`--concurrency`, `G8S_CONCURRENCY`, `g8s.yaml: concurrency`) and the fix.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { DEFAULT_RECONCILE_INTERVAL, DEFAULT_RECONCILE_MODE, durationSeconds, parseDuration } from "../components/spec";
import { fromZodIssues } from "../components/spec/parse";

export const DEFAULT_PORT = 9464;

/** Defaults of the scheduler's settings (the daemon's flags below, and every Scheduler option left out). */
export const SCHEDULER_DEFAULTS = {
  concurrency: 2,
  /** A run is due between interval and interval × (1 + jitter) after the last one. */
  jitter: 0.1,
  backoffBaseMs: 10_000,
  backoffMaxMs: 60 * 60 * 1000,
  stallAfter: 5,
  busyRetryMs: 15_000,
  /** A stack busy without a break for this long is reported as stuck on its lock (10 busy retries). */
  busyStuckAfterMs: 150_000,
  discoverIntervalMs: 5_000,
  backendDiscoverIntervalMs: 60_000,
  shutdownGraceMs: 60_000,
  /** A pass still running after this long is aborted and recorded as failed. */
  passTimeoutMs: 30 * 60 * 1000,
  /**
   * A failed certificate renewal is retried after this, doubling, up to renewalRetryMaxMs: an
   * expiring certificate is an outage, so renewal never stalls and never waits an hour.
   */
  renewalRetryBaseMs: 30_000,
  renewalRetryMaxMs: 10 * 60 * 1000,
} as const;

/** Setting → environment variable. */
export const ENV_NAMES = {
  projectDir: "G8S_PROJECT_DIR",
  stateDir: "G8S_STATE_DIR",
  backendUrl: "G8S_BACKEND_URL",
  passphrase: "PULUMI_CONFIG_PASSPHRASE",
  passphraseFile: "PULUMI_CONFIG_PASSPHRASE_FILE",
  concurrency: "G8S_CONCURRENCY",
  defaultMode: "G8S_DEFAULT_MODE",
  defaultInterval: "G8S_DEFAULT_INTERVAL",
  jitter: "G8S_JITTER",
  backoffBase: "G8S_BACKOFF_BASE",
  backoffMax: "G8S_BACKOFF_MAX",
  stallAfter: "G8S_STALL_AFTER",
  busyRetry: "G8S_BUSY_RETRY",
  discoverInterval: "G8S_DISCOVER_INTERVAL",
  shutdownGrace: "G8S_SHUTDOWN_GRACE",
  passTimeout: "G8S_PASS_TIMEOUT",
  host: "G8S_HOST",
  port: "G8S_PORT",
  apiToken: "G8S_API_TOKEN",
  apiTokenFile: "G8S_API_TOKEN_FILE",
  logLevel: "G8S_LOG_LEVEL",
  clearPendingOperations: "G8S_CLEAR_PENDING_OPERATIONS",
  offline: "G8S_OFFLINE",
  stacks: "G8S_STACKS",
  gitBranch: "G8S_GIT_BRANCH",
  gitRemote: "G8S_GIT_REMOTE",
  gitPollInterval: "G8S_GIT_POLL_INTERVAL",
  specChecks: "G8S_SPEC_CHECKS",
  coordination: "G8S_COORDINATION",
  replicaId: "G8S_REPLICA_ID",
  leaseNamespace: "G8S_LEASE_NAMESPACE",
  leaseDuration: "G8S_LEASE_DURATION",
  watch: "G8S_WATCH",
} as const;

/**
 * A replica id names its Lease (`g8s-<id>`): 1 to 57 lowercase letters, digits and '-', starting
 * and ending with a letter or digit.
 */
export const REPLICA_ID = /^[a-z0-9]([a-z0-9-]{0,55}[a-z0-9])?$/;
const REPLICA_ID_RULE = "1 to 57 lowercase letters, digits and '-', starting and ending with a letter or digit";

export type SettingName = keyof typeof ENV_NAMES;

/** Setting → command-line flag. */
export function flagName(setting: SettingName): string {
  return `--${setting.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

const duration = (min: number, max: number) =>
  z.string().superRefine((v, ctx) => {
    const s = parseDuration(v);
    if (s === undefined)
      ctx.addIssue({ code: "custom", message: `must be a duration like 10s, 5m or 1h (got '${v}')` });
    else if (s < min || s > max)
      ctx.addIssue({ code: "custom", message: `must be between ${min}s and ${max}s (got ${v})` });
  });

const intFromText = (min: number, max: number) =>
  z.preprocess(
    (v) => (typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v) : v),
    z.number().int().min(min).max(max),
  );

const flag = (byDefault = false) =>
  z
    .preprocess((v) => (v === "true" || v === "1" ? true : v === "false" || v === "0" ? false : v), z.boolean())
    .default(byDefault);

const ms = (n: number) => `${Math.round(n / 1000)}s`;

export const settingsSchema = z.strictObject({
  projectDir: z.string().min(1).optional(),
  stateDir: z.string().min(1).optional(),
  backendUrl: z
    .string()
    .regex(/^[a-z0-9+]+:\/\//, "must be a Pulumi backend URL such as file:///var/lib/g8s/backend or s3://bucket")
    .optional(),
  passphrase: z.string().optional(),
  passphraseFile: z.string().optional(),
  concurrency: intFromText(1, 64).default(SCHEDULER_DEFAULTS.concurrency),
  defaultMode: z.enum(["correct", "detect", "off"]).default(DEFAULT_RECONCILE_MODE),
  defaultInterval: duration(10, 86400).default(DEFAULT_RECONCILE_INTERVAL),
  jitter: z
    .preprocess((v) => (typeof v === "string" ? Number(v) : v), z.number().min(0).max(1))
    .default(SCHEDULER_DEFAULTS.jitter),
  backoffBase: duration(1, 3600).default(ms(SCHEDULER_DEFAULTS.backoffBaseMs)),
  backoffMax: duration(1, 86400).default(ms(SCHEDULER_DEFAULTS.backoffMaxMs)),
  stallAfter: intFromText(1, 1000).default(SCHEDULER_DEFAULTS.stallAfter),
  busyRetry: duration(1, 3600).default(ms(SCHEDULER_DEFAULTS.busyRetryMs)),
  discoverInterval: duration(1, 3600).default(ms(SCHEDULER_DEFAULTS.discoverIntervalMs)),
  shutdownGrace: duration(0, 3600).default(ms(SCHEDULER_DEFAULTS.shutdownGraceMs)),
  passTimeout: duration(10, 86400).default(ms(SCHEDULER_DEFAULTS.passTimeoutMs)),
  host: z.string().min(1).default("127.0.0.1"),
  port: intFromText(0, 65535).default(DEFAULT_PORT),
  apiToken: z.string().min(16).optional(),
  apiTokenFile: z.string().optional(),
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  clearPendingOperations: flag(),
  offline: flag(),
  stacks: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$/, "must be stack names separated by commas, like edge8,edge9")
    .optional(),
  gitBranch: z
    .string()
    .regex(/^[\w./-]+$/, "must be a git branch name")
    .optional(),
  gitRemote: z
    .string()
    .regex(/^[\w.-]+$/, "must be a git remote name")
    .default("origin"),
  gitPollInterval: duration(5, 3600).default("30s"),
  specChecks: flag(true),
  coordination: z.enum(["none", "kubernetes"]).default("none"),
  replicaId: z.string().regex(REPLICA_ID, `must be ${REPLICA_ID_RULE}`).optional(),
  leaseNamespace: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "must be a Kubernetes namespace name")
    .default("g8s-system"),
  leaseDuration: duration(3, 600).default("15s"),
  watch: z.enum(["none", "kubernetes"]).default("none"),
});

export type RawSettings = Partial<Record<SettingName, unknown>>;

export interface Settings {
  readonly projectDir: string;
  readonly stateDir: string;
  readonly backendUrl?: string;
  readonly passphrase?: string;
  readonly passphraseFile?: string;
  readonly concurrency: number;
  readonly defaultMode: "correct" | "detect" | "off";
  readonly defaultInterval: string;
  readonly jitter: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly stallAfter: number;
  readonly busyRetryMs: number;
  readonly discoverIntervalMs: number;
  readonly shutdownGraceMs: number;
  /** A pass still running after this long is aborted and counts as failed (an API that hangs). */
  readonly passTimeoutMs: number;
  readonly host: string;
  readonly port: number;
  readonly apiToken?: string;
  readonly logLevel: string;
  readonly clearPendingOperations: boolean;
  /** Use only provider plugins already installed or built by the toolchain; never download one. */
  readonly offline: boolean;
  /** The daemon reconciles only these stacks (a machine that can run only some of them); default all. */
  readonly stacks?: readonly string[];
  /** Follow this branch of gitRemote: a new commit reconciles the stacks it touches at once. */
  readonly gitBranch?: string;
  readonly gitRemote: string;
  readonly gitPollIntervalMs: number;
  /**
   * Stack files are g8s clusters: validate each one's whole `g8s:cluster` spec and check the g8s
   * policies before every up (default). False for a Pulumi project whose stacks are something
   * else: only their `g8s:reconcile` and `g8s:decommission` keys are read, and no policy runs.
   */
  readonly specChecks: boolean;
  /**
   * `kubernetes`: replicas share the stacks through Leases in `leaseNamespace` (kubeconfig from
   * KUBECONFIG, else in-cluster); `none` (default): this daemon runs every stack it finds.
   */
  readonly coordination: "none" | "kubernetes";
  /** This replica's id (its Lease `g8s-<id>`); default the host name. */
  readonly replicaId: string;
  readonly leaseNamespace: string;
  readonly leaseDurationMs: number;
  /**
   * `kubernetes`: the daemon watches the host cluster's objects labelled `g8s.io/cluster`
   * (kubeconfig from KUBECONFIG, else in-cluster) and runs a pass as soon as someone other than
   * g8s changes one (automation/events); `none` (default): drift waits for the interval.
   */
  readonly watch: "none" | "kubernetes";
}

export class SettingsError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join("\n"));
    this.name = "SettingsError";
  }
}

export interface SettingsSources {
  readonly flags: RawSettings;
  readonly env: NodeJS.ProcessEnv;
  /** Path of a YAML settings file (`--config`). */
  readonly file?: string;
  readonly cwd: string;
  /** Default project: the g8s project itself. */
  readonly defaultProjectDir: string;
}

/** Merges and validates settings; throws SettingsError with one located line per problem. */
export function loadSettings(sources: SettingsSources): Settings {
  const origin = new Map<string, string>();
  const merged: Record<string, unknown> = {};
  const problems: string[] = [];
  if (sources.file) {
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(path.resolve(sources.cwd, sources.file), "utf8"));
    } catch (err) {
      throw new SettingsError([`${sources.file}: ${(err as Error).message.split("\n")[0]}`]);
    }
    if (doc !== null && doc !== undefined && (typeof doc !== "object" || Array.isArray(doc))) {
      throw new SettingsError([`${sources.file}: must be a YAML mapping of setting: value`]);
    }
    for (const [key, value] of Object.entries((doc ?? {}) as Record<string, unknown>)) {
      merged[key] = value;
      origin.set(key, `${sources.file}: ${key}`);
    }
  }
  for (const [setting, envName] of Object.entries(ENV_NAMES)) {
    const value = sources.env[envName];
    if (value !== undefined && value !== "") {
      merged[setting] = value;
      origin.set(setting, envName);
    }
  }
  for (const [setting, value] of Object.entries(sources.flags)) {
    if (value === undefined) continue;
    merged[setting] = value;
    origin.set(setting, flagName(setting as SettingName));
  }
  const result = settingsSchema.safeParse(merged, { reportInput: true });
  if (!result.success) {
    // The spec's formatter gives the same wording as stack-file errors (and "did you mean").
    for (const issue of fromZodIssues(result.error.issues, settingsSchema)) {
      problems.push(
        `${origin.get(issue.path) ?? issue.path}: ${issue.message.replace(/^unknown key/, "unknown setting")}`,
      );
    }
    throw new SettingsError(problems);
  }
  const s = result.data;
  const projectDir = path.resolve(sources.cwd, s.projectDir ?? sources.defaultProjectDir);
  let apiToken = s.apiToken;
  if (apiToken === undefined && s.apiTokenFile !== undefined) {
    try {
      apiToken = readFileSync(path.resolve(sources.cwd, s.apiTokenFile), "utf8").trim();
    } catch (err) {
      throw new SettingsError([`${origin.get("apiTokenFile")}: cannot read (${(err as NodeJS.ErrnoException).code})`]);
    }
    if (apiToken.length < 16)
      throw new SettingsError([`${origin.get("apiTokenFile")}: the token must be at least 16 characters`]);
  }
  if (durationSeconds(s.backoffMax) < durationSeconds(s.backoffBase)) {
    throw new SettingsError([`${origin.get("backoffMax") ?? "backoffMax"}: must be ≥ backoffBase (${s.backoffBase})`]);
  }
  const replicaId = s.replicaId ?? hostname().toLowerCase();
  if (s.coordination === "kubernetes" && !REPLICA_ID.test(replicaId)) {
    throw new SettingsError([
      `${origin.get("coordination") ?? "coordination"}: the host name '${replicaId}' is no replica id (${REPLICA_ID_RULE}): set ${flagName("replicaId")} or ${ENV_NAMES.replicaId}`,
    ]);
  }
  return {
    projectDir,
    stateDir: path.resolve(sources.cwd, s.stateDir ?? path.join(projectDir, ".g8s")),
    backendUrl: s.backendUrl,
    passphrase: s.passphrase,
    passphraseFile: s.passphraseFile,
    concurrency: s.concurrency,
    defaultMode: s.defaultMode,
    defaultInterval: s.defaultInterval,
    jitter: s.jitter,
    backoffBaseMs: durationSeconds(s.backoffBase) * 1000,
    backoffMaxMs: durationSeconds(s.backoffMax) * 1000,
    stallAfter: s.stallAfter,
    busyRetryMs: durationSeconds(s.busyRetry) * 1000,
    discoverIntervalMs: durationSeconds(s.discoverInterval) * 1000,
    shutdownGraceMs: durationSeconds(s.shutdownGrace) * 1000,
    passTimeoutMs: durationSeconds(s.passTimeout) * 1000,
    host: s.host,
    port: s.port,
    apiToken,
    logLevel: s.logLevel,
    clearPendingOperations: s.clearPendingOperations,
    offline: s.offline,
    stacks: s.stacks?.split(","),
    gitBranch: s.gitBranch,
    gitRemote: s.gitRemote,
    gitPollIntervalMs: durationSeconds(s.gitPollInterval) * 1000,
    specChecks: s.specChecks,
    coordination: s.coordination,
    replicaId,
    leaseNamespace: s.leaseNamespace,
    leaseDurationMs: durationSeconds(s.leaseDuration) * 1000,
    watch: s.watch,
  };
}
