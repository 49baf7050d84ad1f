/** Runs `g8s daemon` as a real process for integration tests and benchmarks. */
import { spawn, type ChildProcess } from "node:child_process";
import * as assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { PROJECT_ROOT } from "../../automation/engine";
import type { StackStatus } from "../../automation/reconciler/types";
import { allPids, orphanedProcesses, processEnv } from "../../automation/os/processes";
import { openStack, readRecord, TEST_PASSPHRASE, writeFixtureStack, type Sandbox } from "./harness";

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
  /**
   * SIGKILL the daemon and its process group (it and the engine CLI): a crash. Plugins the CLI
   * started run in process groups of their own and are left behind, as in a real crash: the
   * restarted daemon must end them.
   */
  crash(): Promise<void>;
  /** Ends the slow-reaper supervisor (its zombies go to init); a no-op without one. */
  release(): Promise<void>;
  exited: Promise<number | null>;
}

export interface StartOptions {
  /**
   * Run the daemon under test/integration/slow-reaper.py, a supervisor that reaps nothing:
   * after crash() the daemon, its engine CLI and everything orphaned stay zombies until
   * release(), as in the window after a real crash before init reaps them.
   */
  readonly slowReaper?: boolean;
  /** Extra environment for the daemon (KUBECONFIG of a host cluster). */
  readonly env?: Record<string, string>;
  /**
   * Run `node <nodeFlags> bin/g8s.js` instead of bin/g8s.js through its shebang (which carries
   * the daemon's V8 flags): `[]` is a daemon with Node.js's defaults (a benchmark's baseline).
   */
  readonly nodeFlags?: readonly string[];
}

export async function startDaemon(
  sandbox: Sandbox,
  extraArgs: string[] = [],
  options: StartOptions = {},
): Promise<DaemonProcess> {
  const supervisor = options.slowReaper ? ["python3", path.join(__dirname, "slow-reaper.py")] : [];
  const command = [
    ...supervisor,
    // As users run it: through its shebang, with the daemon's Node.js flags.
    ...(options.nodeFlags ? [process.execPath, ...options.nodeFlags] : []),
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
    ...sandbox.settingsArgs,
    ...extraArgs,
  ];
  const proc = spawn(command[0], command.slice(1), {
    env: {
      ...process.env,
      PULUMI_CONFIG_PASSPHRASE: TEST_PASSPHRASE,
      G8S_API_TOKEN: TEST_TOKEN,
      G8S_PULUMI: path.join(sandbox.cli.binDir, "pulumi"),
      ...options.env,
    },
    detached: true, // its own process group, so crash() can take the engine down with it
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  let daemonPid = proc.pid as number; // under the supervisor: read from the first log line
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
          if (logs.length === 1 && typeof entry.pid === "number") daemonPid = entry.pid;
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
      if (!options.slowReaper) {
        process.kill(-daemonPid, "SIGKILL");
        await exited;
        return;
      }
      // The daemon first, then the rest of its group: killed together, the daemon may still reap
      // its CLI; killed after it, the CLI's parent is the supervisor, which leaves it a zombie.
      process.kill(daemonPid, "SIGKILL");
      // Dead once its children are handed to the supervisor: a killed Node.js leader thread shows
      // as a zombie while its other threads still exit, and they keep the children until then.
      await waitFor(
        "the daemon to die",
        async () => (isZombieOrGone(daemonPid) && childrenOf(daemonPid).length === 0 ? true : undefined),
        10_000,
      );
      process.kill(-daemonPid, "SIGKILL");
      await waitFor(
        "the daemon's process group to die",
        async () => (groupMembers(daemonPid).every(isZombieOrGone) ? true : undefined),
        10_000,
      );
    },
    release: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      await exited;
    },
  };
}

/** Polls until `check` returns a value (bounded: fails after timeoutMs). */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  pollMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
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

/** Processes of the sandbox's engine runs (its PULUMI_HOME) whose parent died: what a crash leaves. */
export function orphanedEngineProcesses(sandbox: Sandbox): number[] {
  return orphanedProcesses(
    (pid) => processEnv(pid, "PULUMI_HOME") === sandbox.env.PULUMI_HOME,
    (p) => path.basename(p.argv[0] ?? "") === "pulumi",
  ).map((p) => p.pid);
}

/** SIGKILLs every process (not this one) whose PULUMI_HOME passes `home`; returns their pids. */
function endByEngineHome(home: (value: string | undefined) => boolean): number[] {
  const ended: number[] = [];
  for (const pid of allPids()) {
    if (pid === process.pid || !home(processEnv(pid, "PULUMI_HOME"))) continue;
    try {
      process.kill(pid, "SIGKILL");
      ended.push(pid);
    } catch {
      /* gone meanwhile */
    }
  }
  return ended;
}

/** Ends every process of the sandbox's engine runs, by pid: a test's safety net, after its assertions. */
export function endEngineProcesses(sandbox: Sandbox): void {
  endByEngineHome((home) => home === sandbox.env.PULUMI_HOME);
}

/**
 * Ends every process whose engine home lies under `root`: the plugins a `kill -9`-ed replica with
 * a state directory of its own left behind, which no restarted daemon ends. Returns their pids.
 */
export function endProcessesUnder(root: string): number[] {
  return endByEngineHome((home) => home?.startsWith(`${root}/`) === true);
}

export interface CrashRound {
  /** From the restart to the stack in sync with the new desired state. */
  readonly convergeMs: number;
  /** The bound it must meet: reconcile interval + the converging update + 10 s. */
  readonly boundMs: number;
  readonly lockCleared: boolean;
  /** The restarted daemon's log after the restart, one line per entry (HTTP requests left out). */
  readonly timeline: readonly string[];
}

/**
 * One kill-and-restart round on fixture stack `stack` (which must exist and be in sync): the
 * desired records change to `target`, a daemon starts the update (3 s per record), is killed
 * with its engine (-9, whole process group) inside it and restarted at once; resolves when the
 * stack converged, after checking that the history kept every earlier update and that no
 * engine process of the dead run is left.
 */
export async function crashAndRestart(
  sandbox: Sandbox,
  stack: string,
  target: string,
  reconcile: Record<string, unknown>,
  intervalMs: number,
): Promise<CrashRound> {
  writeFixtureStack(sandbox, stack, { a: target, b: target }, { ...reconcile, "store:delayMs": 3000 });
  const handle = await openStack(sandbox, stack);
  // Every update, not the CLI's default page of 10; keyed by start time (a file backend reports
  // version 0 for every update).
  const updatesOf = (h: Awaited<ReturnType<typeof handle.history>>) => h.map((u) => u.startTime.toISOString());
  const versionsBefore = updatesOf(await handle.history(10_000, 1));
  const locks = path.join(fileURLToPath(sandbox.env.PULUMI_BACKEND_URL), ".pulumi", "locks");
  const lockFiles = () =>
    existsSync(locks) ? readdirSync(locks, { recursive: true }).filter((f) => String(f).endsWith(".json")) : [];

  const first = await startDaemon(sandbox, [], { slowReaper: true });
  let daemon = first;
  try {
    await waitFor(
      "the update to hold the backend lock",
      async () => (lockFiles().length > 0 ? true : undefined),
      120_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 1500)); // inside the first 3 s record update
    await daemon.crash();
    assert.ok(lockFiles().length > 0, "the killed update left its lock behind");
    assert.notEqual(readRecord(sandbox, stack, "a"), target, "the kill came before the update finished");

    const owner = lockOwner(locks);
    assert.ok(
      isZombieOrGone(owner) && existsSync(`/proc/${owner}`),
      `the dead CLI that holds the lock is a zombie: pid ${owner}, ${
        existsSync(`/proc/${owner}`) ? readFileSync(`/proc/${owner}/stat`, "utf8") : "gone"
      }`,
    );

    // A supervisor restarts the daemon at once: no pause, and the dead CLI is still a zombie.
    const restartedAt = Date.now();
    daemon = await startDaemon(sandbox);
    const d = daemon;
    const converged = await waitFor(
      `${stack} to converge after the restart`,
      async () => {
        const s = await d.stack(stack);
        // A pass of this daemon: the status of the one before survives the restart.
        return s.phase === "in-sync" &&
          s.lastPass?.outcome === "corrected" &&
          Date.parse(s.lastPass.startedAt) >= restartedAt &&
          readRecord(sandbox, stack, "a") === target &&
          readRecord(sandbox, stack, "b") === target
          ? s
          : undefined;
      },
      240_000,
    );
    const convergeMs = Date.now() - restartedAt;
    const boundMs = intervalMs + (converged.lastPass?.correctMs ?? 0) + 10_000;
    assert.equal(converged.consecutiveFailures, 0);
    const history = await handle.history(10_000, 1);
    const versions = updatesOf(history);
    assert.ok(
      versionsBefore.every((v) => versions.includes(v)),
      `every earlier update is still in the history: ${versionsBefore.join(",")} ⊂ ${versions.join(",")}`,
    );
    assert.ok(versions.length > versionsBefore.length, "the converging update was recorded");
    assert.equal(history[0].result, "succeeded", "the newest update succeeded");
    assert.deepEqual(orphanedEngineProcesses(sandbox), [], "no engine process of the killed run is left");
    const lockCleared = d.logs.some((l) => l.msg === "cleared a stale backend lock");
    const timeline = d.logs
      .filter((l) => l.msg !== "http request")
      .map((l) => `+${((Date.parse(String(l.time)) - restartedAt) / 1000).toFixed(1)} s ${l.stack ?? "-"} ${l.msg}`);
    assert.equal(await d.stop(), 0, "SIGTERM stops the daemon with exit 0");
    return { convergeMs, boundMs, lockCleared, timeline };
  } finally {
    if (daemon !== first && daemon.proc.exitCode === null && daemon.proc.signalCode === null) await daemon.crash();
    await first.release();
  }
}

/** Pids whose stat field `field` (1: parent, 2: process group) is `value`, straight from /proc. */
function pidsWhere(field: 1 | 2, value: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[field]) === value) found.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return found;
}
const childrenOf = (pid: number) => pidsWhere(1, pid);
const groupMembers = (pgid: number) => pidsWhere(2, pgid);

/** Read straight from /proc (not through the code under test). */
function isZombieOrGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** The pid recorded in the (single) lock file under `locks`. */
function lockOwner(locks: string): number {
  const files = readdirSync(locks, { recursive: true }).filter((f) => String(f).endsWith(".json"));
  return (JSON.parse(readFileSync(path.join(locks, String(files[0])), "utf8")) as { pid: number }).pid;
}

/** A pass as a daemon logged it: which replica, which stack, its outcome, start and end (epoch ms). */
export interface LoggedPass {
  readonly replica: string;
  readonly stack: string;
  readonly outcome: string;
  readonly start: number;
  readonly end: number;
}

/** Every pass a daemon logged (`in sync` is a debug line: start it with `--log-level debug`). */
export function passesOf(replica: string, daemon: DaemonProcess): LoggedPass[] {
  return daemon.logs
    .filter((l) => typeof l.stack === "string" && typeof l.outcome === "string" && typeof l.durationMs === "number")
    .filter((l) => !String(l.msg).includes("renewal"))
    .map((l) => {
      const end = typeof l.time === "number" ? l.time : Date.parse(String(l.time));
      return {
        replica,
        stack: l.stack as string,
        outcome: l.outcome as string,
        start: end - (l.durationMs as number),
        end,
      };
    });
}
