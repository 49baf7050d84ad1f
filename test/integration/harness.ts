/**
 * Integration-test harness: a temporary sandbox per test run with its own backend, PULUMI_HOME
 * and store directory, a copy of the fixture project, and stacks driven through the Automation
 * API with the real Pulumi engine (found like every other engine use, through automation/engine).
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import { stringify } from "yaml";
import { engineEnvironment, findPulumi, prepareStateDir, PROJECT_ROOT, type PulumiCli } from "../../automation/engine";

export const FIXTURE_PROJECT = path.join(PROJECT_ROOT, "test/fixtures/projects/store");
export const TEST_PASSPHRASE = "g8s-integration-test";

export interface Sandbox {
  readonly root: string;
  readonly stateDir: string;
  readonly projectDir: string;
  readonly storeDir: string;
  readonly cli: PulumiCli;
  readonly env: Record<string, string>;
  /**
   * Settings flags every g8s command on this sandbox takes: a fixture's stacks are not g8s
   * clusters, so `--spec-checks false`; a copy of the g8s project needs none.
   */
  readonly settingsArgs: readonly string[];
  dispose(): void;
}

/** What a sandbox copies of the g8s project itself to run the real program (index.ts). */
const G8S_PROJECT_FILES = [
  "Pulumi.yaml",
  "index.ts",
  "components",
  "package.json",
  "package-lock.json",
  "tsconfig.json",
];

export interface SandboxOptions {
  /** Run a copy of the g8s program itself (index.ts and components/) instead of a fixture. */
  readonly project?: "g8s";
  /** The fixture project to copy. Default: the store fixture. */
  readonly fixture?: string;
  /**
   * Copy the fixture to its own path under `<root>/repo` and link the repository's `components/`
   * at `<root>/repo/components`, so a fixture importing g8s components by relative path
   * (`../../../../components/…`) runs unchanged in the sandbox. Default: false (`<root>/project`).
   */
  readonly withComponents?: boolean;
}

/** A fresh sandbox; throws the toolchain's own message when no engine is available. */
export async function createSandbox(label = "g8s-it", options: SandboxOptions = {}): Promise<Sandbox> {
  const cli = await findPulumi({ env: process.env });
  const root = mkdtempSync(path.join(tmpdir(), `${label}-`));
  const stateDir = path.join(root, "state");
  const fixture = options.fixture ?? FIXTURE_PROJECT;
  const projectDir = options.withComponents
    ? path.join(root, "repo", path.relative(PROJECT_ROOT, fixture))
    : path.join(root, "project");
  const storeDir = path.join(root, "store");
  mkdirSync(stateDir, { recursive: true });
  if (options.project === "g8s") {
    for (const f of G8S_PROJECT_FILES)
      cpSync(path.join(PROJECT_ROOT, f), path.join(projectDir, f), { recursive: true });
  } else cpSync(fixture, projectDir, { recursive: true });
  if (options.withComponents) {
    symlinkSync(path.join(PROJECT_ROOT, "components"), path.join(root, "repo", "components"), "dir");
  }
  mkdirSync(path.join(projectDir, "stacks"), { recursive: true });
  // The program resolves @pulumi/pulumi and typescript from the project's own packages.
  symlinkSync(path.join(PROJECT_ROOT, "node_modules"), path.join(projectDir, "node_modules"), "dir");
  const env = engineEnvironment({
    stateDir,
    passphrase: TEST_PASSPHRASE,
    pathPrepend: [cli.binDir, path.join(PROJECT_ROOT, "node_modules/.bin")],
    base: process.env,
  });
  prepareStateDir(env);
  return {
    root,
    stateDir,
    projectDir,
    storeDir,
    cli,
    env,
    settingsArgs: options.project === "g8s" ? [] : ["--spec-checks", "false"],
    dispose: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Writes stacks/Pulumi.<stack>.yaml for the fixture with the given records. */
export function writeFixtureStack(
  sandbox: Sandbox,
  stack: string,
  records: Record<string, string>,
  extra: Record<string, unknown> = {},
): string {
  const file = path.join(sandbox.projectDir, "stacks", `Pulumi.${stack}.yaml`);
  const config = { "store:dir": path.join(sandbox.storeDir, stack), "store:records": records, ...extra };
  writeFileSync(file, stringify({ config }));
  return file;
}

/** The stack through the Automation API, on the sandbox's backend unless `env` names another. */
export async function openStack(sandbox: Sandbox, stack: string, env: Record<string, string> = {}): Promise<Stack> {
  const pulumiCommand = await PulumiCommand.get({ root: sandbox.cli.root, skipVersionCheck: false });
  return LocalWorkspace.createOrSelectStack(
    { stackName: stack, workDir: sandbox.projectDir },
    { pulumiCommand, envVars: { ...sandbox.env, ...env } },
  );
}

export function readRecord(sandbox: Sandbox, stack: string, key: string): string {
  return readFileSync(path.join(sandbox.storeDir, stack, `${key}.txt`), "utf8");
}

export function writeRecord(sandbox: Sandbox, stack: string, key: string, content: string): void {
  writeFileSync(path.join(sandbox.storeDir, stack, `${key}.txt`), content);
}

/** Wall time of an async step, in milliseconds, with its result. */
export async function timed<T>(step: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const start = process.hrtime.bigint();
  const result = await step();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, result };
}

/** `g8s <args>` as users run it (bin/g8s.js), 5 min at most. */
export function g8sCli(...args: string[]) {
  return spawnSync(process.execPath, [path.join(PROJECT_ROOT, "bin/g8s.js"), ...args], {
    encoding: "utf8",
    timeout: 300_000,
  });
}

/** `g8s host up` into `hostDir`; the admin kubeconfig's path (its last line). Throws with the output when it fails. */
export function hostUp(hostDir: string): string {
  const up = g8sCli("host", "up", "--host-dir", hostDir);
  if (up.status !== 0) throw new Error(`g8s host up failed (${up.status}):\n${up.stdout}\n${up.stderr}`);
  return up.stdout.trim().split("\n").pop() as string;
}

/** `g8s host down`: stops every process of the host cluster (and with `purge` deletes the dir). */
export function hostDown(hostDir: string, purge = false): void {
  g8sCli("host", "down", "--host-dir", hostDir, ...(purge ? ["--purge"] : []));
}

/** `g8s reconcile --once --json` on the sandbox's project, as a process; `args` are extra flags and stacks. */
export function reconcileOnce(
  sandbox: Sandbox,
  args: readonly string[] = [],
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    process.execPath,
    [
      path.join(PROJECT_ROOT, "bin/g8s.js"),
      "reconcile",
      "--once",
      "--json",
      "--project-dir",
      sandbox.projectDir,
      "--state-dir",
      sandbox.stateDir,
      ...sandbox.settingsArgs,
      ...args,
    ],
    {
      env: {
        ...process.env,
        PULUMI_CONFIG_PASSPHRASE: TEST_PASSPHRASE,
        G8S_PULUMI: path.join(sandbox.cli.binDir, "pulumi"),
      },
      encoding: "utf8",
      maxBuffer: 64 << 20,
    },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
