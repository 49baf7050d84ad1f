/**
 * What the kernel says about a process: is it running, is it still the process we think it is,
 * and which processes are left over from a program that died. Linux reads /proc; elsewhere
 * only `kill(pid, 0)` is available and the answers are coarser (no zombie or reuse detection).
 *
 * Used by the engine (is a backend lock's owner alive?), the host cluster (are the processes
 * in its pid files still ours?) and crash recovery (engine plugins orphaned by a killed CLI).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

/** One process as /proc shows it. */
export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  /** Kernel state letter: R running, S sleeping, D disk wait, T stopped, Z zombie, X dead, … */
  readonly state: string;
  /** When the process started (ms since the epoch), to the kernel's clock-tick resolution. */
  readonly startedAtMs: number;
  readonly argv: readonly string[];
}

/** What became of a process we recorded: a dead one includes a zombie and a reused pid. */
export type Liveness = "alive" | "exited" | "zombie" | "reused";

const HAS_PROC = process.platform === "linux";
let bootTimeMs: number | undefined;
let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100; // USER_HZ on every mainstream Linux build
    }
  }
  return ticksPerSecond;
}

function bootTime(): number {
  if (bootTimeMs === undefined) {
    const line = readFileSync("/proc/stat", "utf8")
      .split("\n")
      .find((l) => l.startsWith("btime "));
    bootTimeMs = Number(line?.split(/\s+/)[1] ?? 0) * 1000;
  }
  return bootTimeMs;
}

/** Parses /proc/<pid>/stat; the command name may hold spaces and parentheses, so split after the last ')'. */
export function parseStat(text: string, boot: number, ticks: number): Omit<ProcessInfo, "argv"> {
  const close = text.lastIndexOf(")");
  const pid = Number(text.slice(0, text.indexOf("(")).trim());
  const rest = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // rest[0] is field 3 (state); field 4 ppid; field 22 starttime (clock ticks after boot).
  return {
    pid,
    state: rest[0],
    ppid: Number(rest[1]),
    startedAtMs: boot + (Number(rest[19]) * 1000) / ticks,
  };
}

/** The process with this pid, or undefined when there is none (or it cannot be read). */
export function processInfo(pid: number): ProcessInfo | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (!HAS_PROC) {
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EPERM") return undefined;
    }
    return { pid, ppid: 0, state: "?", startedAtMs: 0, argv: [] };
  }
  try {
    const stat = parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"), bootTime(), clockTicks());
    let argv: string[] = [];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);
    } catch {
      /* a zombie has no command line */
    }
    return { ...stat, argv };
  } catch {
    return undefined;
  }
}

/**
 * Whether the process we recorded as `pid` still runs. `startedNoLaterThanMs` is a time the
 * process must already have been running at (when it wrote a lock or pid file): a process with
 * that pid that started later is another program that got the number (pid reuse). A zombie is
 * dead: it holds nothing, it only waits for its parent to reap it.
 */
export function liveness(pid: number, startedNoLaterThanMs?: number): Liveness {
  const info = processInfo(pid);
  if (!info) return "exited";
  if (info.state === "Z" || info.state === "X") return "zombie";
  // Start times are rounded to clock ticks; allow one second of slack against the recorded time.
  if (startedNoLaterThanMs !== undefined && info.startedAtMs > startedNoLaterThanMs + 1000) return "reused";
  return "alive";
}

/** Every process's pid (Linux). */
export function allPids(): number[] {
  if (!HAS_PROC) return [];
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** The value of one environment variable of a process, when it can be read (same user or root). */
export function processEnv(pid: number, key: string): string | undefined {
  try {
    const prefix = `${key}=`;
    const entry = readFileSync(`/proc/${pid}/environ`, "utf8")
      .split("\0")
      .find((e) => e.startsWith(prefix));
    return entry?.slice(prefix.length);
  } catch {
    return undefined;
  }
}

/**
 * Processes left over from a run that died: those marked by `belongsHere` (for engine runs:
 * their PULUMI_HOME is ours) whose parent is not marked although only a marked `driver` starts
 * them, plus all their descendants. For the engine the driver is the Pulumi CLI: language hosts
 * and provider plugins are always the CLI's children, so one whose parent is anything else lost
 * its CLI (init or a subreaper adopted it). A CLI is never included: one that outlived its daemon
 * still owns its update and ends it by itself; children of this process are never included.
 */
export function orphanedProcesses(
  belongsHere: (pid: number) => boolean,
  isDriver: (info: ProcessInfo) => boolean,
  self: number = process.pid,
): ProcessInfo[] {
  const infos = new Map<number, ProcessInfo>();
  for (const pid of allPids()) {
    const info = processInfo(pid);
    if (info) infos.set(pid, info);
  }
  const marked = new Set([...infos.keys()].filter((pid) => pid !== self && belongsHere(pid)));
  const result: ProcessInfo[] = [];
  const take = (info: ProcessInfo): void => {
    result.push(info);
    for (const child of infos.values()) if (child.ppid === info.pid && marked.has(child.pid)) take(child);
  };
  for (const pid of marked) {
    const info = infos.get(pid) as ProcessInfo;
    if (marked.has(info.ppid) || info.ppid === self || isDriver(info) || info.state === "Z") continue;
    take(info);
  }
  return result;
}

/** A process's resident set size in bytes (VmRSS of /proc/<pid>/status), when it can be read. */
export function residentBytes(pid: number): number | undefined {
  if (!HAS_PROC) return undefined;
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("VmRSS:"));
    const kib = Number(line?.split(/\s+/)[1]);
    return Number.isFinite(kib) ? kib * 1024 : undefined;
  } catch {
    return undefined;
  }
}
