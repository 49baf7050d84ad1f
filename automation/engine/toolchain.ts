/**
 * Finds the Pulumi CLI every engine run uses: an explicit override (G8S_PULUMI), else the
 * one `npm run toolchain` built into .tools/bin, else `pulumi` on PATH. A user who already has
 * a recent enough `pulumi` needs nothing else.
 */
import { execFile } from "node:child_process";
import { accessSync, constants, readFileSync, realpathSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";

/** The oldest CLI g8s accepts: the version of the @pulumi/pulumi SDK it is built and tested with. */
export const MIN_PULUMI_VERSION = "3.248.0";
/** Environment variable naming a pulumi binary to use instead of the search below. */
export const PULUMI_OVERRIDE_ENV = "G8S_PULUMI";

export interface PulumiCli {
  /** Absolute path of the pulumi binary. */
  readonly binary: string;
  /** Directory holding the binary; put first on PATH so its language host and plugins are found. */
  readonly binDir: string;
  /** Installation root in the Automation API's sense: `<root>/bin/pulumi`. */
  readonly root: string;
  readonly version: string;
  readonly source: "override" | "toolchain" | "path";
}

export class ToolchainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ToolchainError";
  }
}

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string, envPath: string | undefined): string | undefined {
  for (const dir of (envPath ?? "").split(path.delimiter)) {
    if (dir === "") continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Compares dotted versions numerically (`3.248.0` < `3.250.1`); pre-release tags are ignored. */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) =>
    v
      .replace(/^v/, "")
      .split(/[-+]/)[0]
      .split(".")
      .map((n) => Number(n) || 0);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/**
 * The project root: the nearest folder at or above `from` whose package.json is g8s's. The same
 * from the sources (automation/engine) and from the compiled daemon (dist/automation/engine).
 */
export function findProjectRoot(from: string): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: unknown }).name === "g8s")
        return dir;
    } catch {
      // no package.json here, or not JSON: look further up
    }
    if (path.dirname(dir) === dir) throw new Error(`no g8s package.json at or above ${from}`);
  }
}

/** The project root: the folder with g8s's package.json. */
export const PROJECT_ROOT = findProjectRoot(__dirname);

export interface FindOptions {
  readonly env: NodeJS.ProcessEnv;
  /** Where `npm run toolchain` puts binaries; default <project>/.tools/bin. */
  readonly toolsBin?: string;
  /** Reads `pulumi version`; injectable for tests. */
  readonly readVersion?: (binary: string) => Promise<string>;
}

async function pulumiVersion(binary: string): Promise<string> {
  const { stdout } = await promisify(execFile)(binary, ["version"], {
    env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" },
    timeout: 30_000,
  });
  return stdout.trim().replace(/^v/, "");
}

/**
 * Locates the CLI and checks its version.
 * @throws ToolchainError naming `npm run toolchain` when there is none, or the required version
 */
export async function findPulumi(options: FindOptions): Promise<PulumiCli> {
  const toolsBin = options.toolsBin ?? path.join(PROJECT_ROOT, ".tools", "bin");
  const override = options.env[PULUMI_OVERRIDE_ENV];
  let binary: string | undefined;
  let source: PulumiCli["source"];
  if (override !== undefined && override !== "") {
    if (!isExecutable(override)) {
      throw new ToolchainError(`${PULUMI_OVERRIDE_ENV}=${override} is not an executable file: fix or unset it`);
    }
    binary = path.resolve(override);
    source = "override";
  } else if (isExecutable(path.join(toolsBin, "pulumi"))) {
    binary = path.join(toolsBin, "pulumi");
    source = "toolchain";
  } else {
    binary = onPath("pulumi", options.env.PATH);
    source = "path";
  }
  if (binary === undefined) {
    throw new ToolchainError(
      `no Pulumi CLI found (looked at ${PULUMI_OVERRIDE_ENV}, ${toolsBin}/pulumi and PATH): ` +
        `run 'npm run toolchain' to build pulumi ${MIN_PULUMI_VERSION}+ from pinned Go modules, or install pulumi`,
    );
  }
  const real = realpathSync(binary);
  const binDir = path.dirname(binary);
  if (path.basename(binDir) !== "bin") {
    throw new ToolchainError(`${binary}: the Pulumi CLI must sit in a folder named bin (<root>/bin/pulumi)`);
  }
  let version: string;
  try {
    version = await (options.readVersion ?? pulumiVersion)(real);
  } catch (err) {
    throw new ToolchainError(
      `${binary} does not run ('pulumi version' failed: ${(err as Error).message.split("\n")[0]})`,
    );
  }
  if (!/^\d+\.\d+\.\d+/.test(version)) {
    throw new ToolchainError(`${binary} reports version '${version}': not a Pulumi CLI version`);
  }
  if (compareVersions(version, MIN_PULUMI_VERSION) < 0) {
    throw new ToolchainError(
      `${binary} is pulumi ${version}, too old: g8s needs ${MIN_PULUMI_VERSION} or later ` +
        `(run 'npm run toolchain' or upgrade pulumi)`,
    );
  }
  return { binary, binDir, root: path.dirname(binDir), version, source };
}
