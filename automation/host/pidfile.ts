/**
 * Pid files: what `up` records about each process it starts, and how `down`/`status` decide
 * whether the process behind a pid file is still that process. A pid alone is not enough: after
 * a reboot or a long time, the number belongs to someone else, and signalling it would hit a
 * stranger. The record holds the start time the kernel reports and the binary; a process is
 * ours only if both still match (automation/os/processes.ts reads /proc).
 */
import { liveness, processInfo, type Liveness, type ProcessInfo } from "../os/processes";

export interface PidRecord {
  readonly pid: number;
  /** /proc's start time of the process (ms since the epoch), read right after it was spawned. */
  readonly startedAtMs: number;
  /** argv[0] as spawned: an absolute path. */
  readonly binary: string;
}

/** running: the recorded process; anything else: not ours (any more). */
export type RecordState = "running" | Exclude<Liveness, "alive"> | "other-program";

export function formatPidRecord(record: PidRecord): string {
  return `${JSON.stringify({ pid: record.pid, startedAtMs: record.startedAtMs, binary: record.binary })}\n`;
}

/** The record in a pid file's text, or undefined for anything else (a torn or foreign file). */
export function parsePidRecord(text: string): PidRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { pid, startedAtMs, binary } = value as Record<string, unknown>;
  if (!Number.isInteger(pid) || (pid as number) <= 0) return undefined;
  if (typeof startedAtMs !== "number" || !Number.isFinite(startedAtMs) || startedAtMs <= 0) return undefined;
  if (typeof binary !== "string" || binary === "") return undefined;
  return { pid: pid as number, startedAtMs, binary };
}

/**
 * Judges a record against what the kernel says now: the liveness of the pid given the recorded
 * start time (a younger process is a reused pid), then the program: a process of that age
 * running another binary is not ours either.
 */
export function judgeRecord(record: PidRecord, alive: Liveness, info: ProcessInfo | undefined): RecordState {
  if (alive !== "alive") return alive;
  const argv0 = info?.argv[0];
  if (argv0 !== undefined && argv0 !== record.binary) return "other-program";
  return "running";
}

/** The state of the process behind a record, from /proc. */
export function recordState(record: PidRecord): RecordState {
  return judgeRecord(record, liveness(record.pid, record.startedAtMs), processInfo(record.pid));
}
