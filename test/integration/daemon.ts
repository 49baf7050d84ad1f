/** Runs `g8s daemon` as a real process for integration tests and benchmarks. */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import * as path from "node:path";
import { PROJECT_ROOT } from "../../automation/engine";
import type { StackStatus } from "../../automation/reconciler/types";
import { TEST_PASSPHRASE, type Sandbox } from "./harness";

export const TEST_TOKEN = "integration-test-token-0123456789";

export interface DaemonProcess {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly logs: Array<Record<string, unknown>>;
  stacks(): Promise<StackStatus[]>;
  stack(name: string): Promise<StackStatus>;
  metrics(): Promise<string>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL the daemon and every process it started (its process group): a crash. */
  crash(): Promise<void>;
  exited: Promise<number | null>;
}

export async function startDaemon(sandbox: Sandbox, extraArgs: string[] = []): Promise<DaemonProcess> {
  const proc = spawn(
    process.execPath,
    [
      path.join(PROJECT_ROOT, "bin/g8s.js"),
      "daemon",
      "--project-dir",
      sandbox.projectDir,
      "--state-dir",
      sandbox.stateDir,
      "--port",
      "0",
      "--discover-interval",
      "1s",
      "--log-level",
      "debug",
      ...extraArgs,
    ],
    {
      env: {
        ...process.env,
        PULUMI_CONFIG_PASSPHRASE: TEST_PASSPHRASE,
        G8S_API_TOKEN: TEST_TOKEN,
        G8S_PULUMI: path.join(sandbox.cli.binDir, "pulumi"),
      },
      detached: true, // its own process group, so crash() can take the engine down with it
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const logs: Array<Record<string, unknown>> = [];
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let buffer = "";
    proc.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === "g8s daemon listening") resolve(entry.port as number);
        } catch {
          /* not a log line */
        }
      }
    });
    proc.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    void exited.then((code) => reject(new Error(`daemon exited (${code}) before listening: ${stderr}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  const getJson = async <T>(route: string): Promise<T> => (await (await fetch(`${base}${route}`)).json()) as T;
  return {
    proc,
    port,
    logs,
    exited,
    stacks: async () => (await getJson<{ stacks: StackStatus[] }>("/api/stacks")).stacks,
    stack: (name) => getJson<StackStatus>(`/api/stacks/${name}`),
    metrics: async () => (await fetch(`${base}/metrics`)).text(),
    stop: async () => {
      proc.kill("SIGTERM");
      return exited;
    },
    crash: async () => {
      process.kill(-(proc.pid as number), "SIGKILL");
      await exited;
      killOrphanedPlugins(sandbox.root);
    },
  };
}

/**
 * Plugins the killed engine started (dynamic providers) are orphaned rather than killed with
 * it: end those running for this sandbox, so tests leave no processes behind.
 */
export function killOrphanedPlugins(root: string): number {
  let killed = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (cwd.startsWith(root) && cmd.includes("dynamic-provider")) {
        process.kill(Number(pid), "SIGKILL");
        killed++;
      }
    } catch {
      /* gone meanwhile, or not ours */
    }
  }
  return killed;
}

/** Polls until `check` returns a value (bounded: fails after timeoutMs). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
}

/** Value of one sample in Prometheus text, or 0. */
export function sample(metrics: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of metrics.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (want.every((w) => line.includes(w))) return Number(line.split(" ").pop());
  }
  return 0;
}
