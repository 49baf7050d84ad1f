/**
 * Provider plugins for the engine's private PULUMI_HOME. Every engine run has plugin download
 * turned off (so a pass never stalls on the network or picks up an unpinned version), which
 * means the plugins the project pins must be in that home before a stack runs: from the
 * toolchain where `npm run toolchain` built them, else downloaded once at start (not with
 * --offline). What cannot be had is reported once, as one line with the command that fixes it.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import type { PulumiCli } from "./toolchain";

const run = promisify(execFile);

/** A resource plugin an installed Pulumi SDK package asks for. */
export interface RequiredPlugin {
  /** Plugin name: `kubernetes` for `pulumi-resource-kubernetes`. */
  readonly name: string;
  /** The version package-lock.json pins (the SDK asks the engine for exactly this one). */
  readonly version: string;
  /** The npm package that needs it. */
  readonly sdk: string;
}

export type PluginState = "present" | "installed-from-toolchain" | "downloaded" | "missing";

export interface PluginReport extends RequiredPlugin {
  readonly state: PluginState;
  /** For a missing plugin: why, in one line, with the command that installs it. */
  readonly problem?: string;
}

/**
 * The resource plugins of the project's Pulumi SDK packages, at the versions package-lock.json
 * pins: every top-level `node_modules/@pulumi/*` package whose package.json marks it a resource
 * package (`"pulumi": { "resource": true, "name": … }`).
 */
export function requiredPlugins(projectDir: string): RequiredPlugin[] {
  const lockFile = path.join(projectDir, "package-lock.json");
  if (!existsSync(lockFile)) return [];
  const lock = JSON.parse(readFileSync(lockFile, "utf8")) as { packages?: Record<string, { version?: string }> };
  const plugins: RequiredPlugin[] = [];
  for (const [key, entry] of Object.entries(lock.packages ?? {})) {
    const m = /^node_modules\/(@pulumi\/[^/]+)$/.exec(key);
    if (!m || !entry.version) continue;
    let meta: { pulumi?: { resource?: boolean; name?: string } } = {};
    try {
      meta = JSON.parse(readFileSync(path.join(projectDir, key, "package.json"), "utf8")) as typeof meta;
    } catch {
      continue; // not installed: `npm ci` has not run; the engine will say so itself
    }
    if (meta.pulumi?.resource !== true) continue;
    plugins.push({ name: meta.pulumi.name ?? m[1].slice("@pulumi/".length), version: entry.version, sdk: m[1] });
  }
  return plugins.sort((a, b) => a.name.localeCompare(b.name));
}

/** The folder the engine keeps a plugin in, under PULUMI_HOME. */
export function pluginDir(pulumiHome: string, plugin: Pick<RequiredPlugin, "name" | "version">): string {
  return path.join(pulumiHome, "plugins", `resource-${plugin.name}-v${plugin.version}`);
}

/** Installed and complete: the binary is there and no `.partial` marker of an interrupted install. */
export function isInstalled(pulumiHome: string, plugin: Pick<RequiredPlugin, "name" | "version">): boolean {
  const dir = pluginDir(pulumiHome, plugin);
  return existsSync(path.join(dir, `pulumi-resource-${plugin.name}`)) && !existsSync(`${dir}.partial`);
}

/** A plugin binary `npm run toolchain` built, with its version (from .tools/versions.json). */
export interface ToolchainPlugin {
  readonly name: string;
  readonly version: string;
  readonly binary: string;
}

/** The plugins in a toolchain folder (`<repo>/.tools`), by name. */
export function toolchainPlugins(toolsDir: string): Map<string, ToolchainPlugin> {
  const found = new Map<string, ToolchainPlugin>();
  let versions: { tools?: Record<string, { version?: string; bin?: string[] }> } = {};
  try {
    versions = JSON.parse(readFileSync(path.join(toolsDir, "versions.json"), "utf8")) as typeof versions;
  } catch {
    return found;
  }
  for (const tool of Object.values(versions.tools ?? {})) {
    for (const bin of tool.bin ?? []) {
      const m = /(?:^|\/)pulumi-resource-([a-z0-9-]+)$/.exec(bin);
      if (!m || !tool.version || m[1] === "pulumi-nodejs") continue;
      const binary = path.join(toolsDir, bin);
      if (existsSync(binary)) found.set(m[1], { name: m[1], version: tool.version.replace(/^v/, ""), binary });
    }
  }
  return found;
}

/** The one line a missing plugin is reported with. */
export function missingPluginLine(plugin: RequiredPlugin, reason: string): string {
  return (
    `provider plugin ${plugin.name} ${plugin.version} (for ${plugin.sdk}) is missing: ${reason}; ` +
    `install it with \`pulumi plugin install resource ${plugin.name} ${plugin.version}\`` +
    ` (PULUMI_HOME=<state dir>/pulumi-home) or build it with \`npm run toolchain\` where the toolchain can`
  );
}

export interface EnsurePluginsOptions {
  readonly cli: PulumiCli;
  /** The engine environment (its PULUMI_HOME is where plugins go). */
  readonly env: Record<string, string>;
  readonly projectDir: string;
  /** The toolchain folder (`<g8s repo>/.tools`). */
  readonly toolsDir: string;
  /** Only local plugins: never download. */
  readonly offline: boolean;
  /** Bound on one download. */
  readonly downloadTimeoutMs?: number;
}

/**
 * Makes every plugin the project pins present in the engine's PULUMI_HOME: already there, else
 * installed from the toolchain's binary of that exact version, else downloaded (unless offline).
 * Never throws for a plugin that cannot be had: it is reported `missing` with its one line, and
 * only the stacks that need it will fail.
 */
export async function ensurePlugins(options: EnsurePluginsOptions): Promise<PluginReport[]> {
  const home = options.env.PULUMI_HOME;
  const local = toolchainPlugins(options.toolsDir);
  const reports: PluginReport[] = [];
  for (const plugin of requiredPlugins(options.projectDir)) {
    if (isInstalled(home, plugin)) {
      reports.push({ ...plugin, state: "present" });
      continue;
    }
    const built = local.get(plugin.name);
    const pulumi = (args: string[], timeout?: number) =>
      run(options.cli.binary, ["plugin", "install", "resource", plugin.name, plugin.version, ...args], {
        env: { ...options.env, PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "false" },
        timeout,
        maxBuffer: 16 << 20,
      });
    if (built && built.version === plugin.version) {
      try {
        await pulumi(["--file", built.binary]);
        reports.push({ ...plugin, state: "installed-from-toolchain" });
        continue;
      } catch (err) {
        reports.push({ ...plugin, state: "missing", problem: missingPluginLine(plugin, firstLine(err)) });
        continue;
      }
    }
    const mismatch = built ? `the toolchain built version ${built.version}` : "the toolchain does not build it";
    if (options.offline) {
      reports.push({ ...plugin, state: "missing", problem: missingPluginLine(plugin, `${mismatch} and --offline`) });
      continue;
    }
    try {
      await pulumi([], options.downloadTimeoutMs ?? 300_000);
      reports.push({ ...plugin, state: "downloaded" });
    } catch (err) {
      reports.push({
        ...plugin,
        state: "missing",
        problem: missingPluginLine(plugin, `${mismatch} and the download failed (${firstLine(err)})`),
      });
    }
  }
  return reports;
}

/** The first meaningful line of a failed command's error, not its whole output. */
function firstLine(err: unknown): string {
  const e = err as { stderr?: string; message?: string; killed?: boolean };
  if (e.killed) return "timed out";
  const text = (e.stderr || e.message || String(err)).trim();
  const lines = text.split("\n");
  const line = lines.find((l) => /^error:/i.test(l)) ?? lines.find((l) => /error/i.test(l)) ?? lines[0];
  return line.replace(/^error:\s*/i, "").slice(0, 200);
}

/**
 * An engine error that only says a plugin is missing, as one line (the engine prints the same
 * multi-kilobyte output for it on every step); undefined for any other error.
 */
export function missingPluginError(text: string, required: readonly RequiredPlugin[]): string | undefined {
  const m = /no resource plugin 'pulumi-resource-([a-z0-9-]+)'/.exec(text);
  if (!m) return undefined;
  const plugin = required.find((p) => p.name === m[1]) ?? { name: m[1], version: "(any)", sdk: "the program" };
  return missingPluginLine(plugin, "not installed in the engine's PULUMI_HOME");
}
