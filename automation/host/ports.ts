/**
 * Ports of a host dir: chosen once, at the first `up`, and kept in `host.json`, so the
 * kubeconfig and etcd's member URLs stay valid and two host dirs (a developer's and a test's)
 * never share one.
 */
import { readFileSync } from "node:fs";
import * as net from "node:net";
import { LISTEN_HOST, PORT_NAMES, type HostPorts } from "./config";

/**
 * Ports are drawn below the kernel's ephemeral range: outgoing connections (the API server to
 * etcd, every client to the API server) take their local ports from that range, and one of them
 * could hold a port of ours while the host cluster is down.
 */
export const PORT_FLOOR = 10000;

/** The kernel's ephemeral port range, `[low, high]`. */
export function ephemeralPortRange(text?: string): [number, number] {
  let content = text;
  if (content === undefined) {
    try {
      content = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8");
    } catch {
      content = "32768 60999"; // Linux's default
    }
  }
  const [low, high] = content.trim().split(/\s+/).map(Number);
  return Number.isInteger(low) && Number.isInteger(high) && low <= high ? [low, high] : [32768, 60999];
}

/**
 * Picks distinct ports for every role: random in [PORT_FLOOR, ceiling), each one accepted by
 * `isFree`. `random` returns [0, 1) like Math.random.
 */
export async function pickPorts(
  isFree: (port: number) => Promise<boolean>,
  ceiling: number,
  random: () => number = Math.random,
  attempts = 200,
): Promise<HostPorts> {
  if (ceiling - PORT_FLOOR < PORT_NAMES.length * 4) {
    throw new RangeError(`no room for ports between ${PORT_FLOOR} and ${ceiling} (the ephemeral range starts there)`);
  }
  const chosen = new Set<number>();
  const result: Partial<Record<keyof HostPorts, number>> = {};
  for (const name of PORT_NAMES) {
    let port: number | undefined;
    for (let i = 0; i < attempts && port === undefined; i++) {
      const candidate = PORT_FLOOR + Math.floor(random() * (ceiling - PORT_FLOOR));
      if (!chosen.has(candidate) && (await isFree(candidate))) port = candidate;
    }
    if (port === undefined) throw new Error(`no free port found for ${name} after ${attempts} attempts`);
    chosen.add(port);
    result[name] = port;
  }
  return result as HostPorts;
}

/** Whether nothing listens on 127.0.0.1:port (a bind test; SO_REUSEADDR as Go's listeners set it). */
export function portIsFree(port: number, host: string = LISTEN_HOST): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A host dir's state file (`host.json`). */
export interface HostState {
  /** Format version of this file. */
  readonly version: 1;
  readonly createdAt: string;
  readonly ports: HostPorts;
}

/** The state in `host.json`'s text; a RangeError naming what is wrong otherwise. */
export function parseHostState(text: string, file: string): HostState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new RangeError(`${file}: not JSON (${(err as Error).message})`, { cause: err });
  }
  const v = value as Partial<HostState> | null;
  if (!v || v.version !== 1 || typeof v.ports !== "object" || v.ports === null) {
    throw new RangeError(`${file}: not a g8s host state file (version 1 with ports)`);
  }
  for (const name of PORT_NAMES) {
    const port = (v.ports as unknown as Record<string, unknown>)[name];
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) {
      throw new RangeError(`${file}: ports.${name} must be a port number (got ${JSON.stringify(port)})`);
    }
  }
  return { version: 1, createdAt: String(v.createdAt ?? ""), ports: v.ports as HostPorts };
}
