/**
 * The hermetic environment of every engine run: its own PULUMI_HOME, no update checks, no
 * plugin downloads, an explicit backend and passphrase, the secrets provider taken from the
 * stack's state when its config has none, and the CLI's folder first on PATH so its language
 * host and the dynamic-provider plugin are the ones used.
 */
import * as path from "node:path";
import { mkdirSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

export interface EngineEnvironmentOptions {
  /** The reconciler's state directory; PULUMI_HOME and the default backend live under it. */
  readonly stateDir: string;
  /** Any Pulumi backend URL; default `file://<stateDir>/backend`. */
  readonly backendUrl?: string;
  /** Secrets passphrase, or a file holding it (one of the two for passphrase-encrypted stacks). */
  readonly passphrase?: string;
  readonly passphraseFile?: string;
  /** Folders put first on PATH (the CLI's bin dir). */
  readonly pathPrepend: readonly string[];
  /** The environment inherited otherwise (PATH, HOME, cloud credentials). */
  readonly base: NodeJS.ProcessEnv;
}

/** Variables the engine environment sets; everything else is inherited. */
export const HERMETIC_KEYS = [
  "PULUMI_HOME",
  "PULUMI_BACKEND_URL",
  "PULUMI_SKIP_UPDATE_CHECK",
  "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION",
  "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER",
  "PULUMI_CONFIG_PASSPHRASE",
  "PULUMI_CONFIG_PASSPHRASE_FILE",
  "PATH",
] as const;

export function defaultBackendUrl(stateDir: string): string {
  return pathToFileURL(path.join(path.resolve(stateDir), "backend")).href;
}

export function engineEnvironment(options: EngineEnvironmentOptions): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(options.base)) if (value !== undefined) env[key] = value;
  env.PULUMI_HOME = path.join(path.resolve(options.stateDir), "pulumi-home");
  env.PULUMI_BACKEND_URL = options.backendUrl ?? defaultBackendUrl(options.stateDir);
  env.PULUMI_SKIP_UPDATE_CHECK = "true";
  env.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION = "true";
  // Stack files carry no salt (the engine's copy of them does, workspace.ts): a fresh state
  // directory or a CI checkout takes the secrets provider from the stack's state instead of
  // minting an unrelated salt that cannot decrypt it.
  env.PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER = "true";
  delete env.PULUMI_CONFIG_PASSPHRASE;
  delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
  if (options.passphrase !== undefined) env.PULUMI_CONFIG_PASSPHRASE = options.passphrase;
  else if (options.passphraseFile !== undefined) env.PULUMI_CONFIG_PASSPHRASE_FILE = options.passphraseFile;
  env.PATH = [...options.pathPrepend, options.base.PATH ?? ""].filter((p) => p !== "").join(path.delimiter);
  // The pinned CLI's PostgreSQL backend deadlocks when its parallel stack reads (10 by default)
  // reach its connection limit (2 × GOMAXPROCS: 4 on 2 cores): a listing keeps a connection for
  // its rows and needs another for each row's size. `stack ls` over 9 stacks hung for good here.
  // One read at a time needs two connections at most, and the limit is never under two.
  if (/^postgres(ql)?:\/\//.test(env.PULUMI_BACKEND_URL) && env.PULUMI_DIY_BACKEND_PARALLEL === undefined)
    env.PULUMI_DIY_BACKEND_PARALLEL = "1";
  return env;
}

/** Creates the state directory, PULUMI_HOME and, for a file backend, its folder (Pulumi will not). */
export function prepareStateDir(env: Record<string, string>): void {
  mkdirSync(env.PULUMI_HOME, { recursive: true });
  if (env.PULUMI_BACKEND_URL.startsWith("file://"))
    mkdirSync(fileURLToPath(env.PULUMI_BACKEND_URL), { recursive: true });
}
