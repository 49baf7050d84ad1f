/** `g8s host up | down | status`: the local host Kubernetes cluster on 127.0.0.1. */
import { PROJECT_ROOT } from "../engine/toolchain";
import { parseHostCommandLine, HostUsageError } from "../host/flags";
import { HostCluster, HostError, type HostStatus } from "../host/hostCluster";
import { EXIT, UsageError, writeLine, type CliIo } from "./io";

export const HOST_USAGE = `usage: g8s host up     [--host-dir DIR] [--real-node]
       g8s host down   [--host-dir DIR] [--purge]
       g8s host status [--host-dir DIR] [--json]

A host Kubernetes cluster on 127.0.0.1 (etcd, kube-apiserver, controller manager, scheduler,
KWOK with fake nodes that offer devices.kubevirt.io/kvm and /tun): the target of the KVM
platform on this machine and in tests. Binaries come from .tools/bin ('npm run toolchain').
  up        start what is not running; wait for the API and the nodes; print progress on
            stderr and the admin kubeconfig's path as the last line (stdout)
  down      stop the processes 'up' started (SIGTERM, SIGKILL after 10 s)
  status    each process, the API's readiness and the nodes; exit 0 only when all is up
  --host-dir DIR   certificates, etcd data, logs, pid files (default <project>/.g8s/host)
  --real-node      up: also boot a real node, g8s-host-real-0: a system container of the node
                   image with containerd, kubelet and the KVM device plugin (root)
  --purge          down: also delete the host dir (and the real node's root file system)
  --json           status: print JSON`;

function mib(bytes: number | null): string {
  return bytes === null ? "-" : `${Math.round(bytes / 1048576)} MiB`;
}

/** The status as a table for people. */
export function hostStatusText(s: HostStatus): string {
  const rows = [
    ["COMPONENT", "PID", "STATE", "ADDRESS", "RSS"],
    ...s.components.map((c) => [
      c.name,
      c.pid === null ? "-" : String(c.pid),
      c.running ? "running" : c.state === "stopped" ? "stopped" : `stopped (${c.state})`,
      c.address ?? "-",
      mib(c.rssBytes),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const table = rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]))
      .join("  ")
      .trimEnd(),
  );
  const running = s.components.filter((c) => c.rssBytes !== null);
  const total = running.reduce((sum, c) => sum + (c.rssBytes ?? 0), 0);
  return [
    `host dir:   ${s.hostDir}${s.initialized ? "" : " (not set up: run 'g8s host up')"}`,
    ...table,
    `API:        ${s.api.url ?? "-"} ${s.api.ready ? "ready" : "not ready"}`,
    `nodes:      ${s.nodes === null ? "-" : `${s.nodes.total} (${s.nodes.ready} Ready)`}`,
    ...(s.realNode ? [realNodeLine(s.realNode)] : []),
    `memory:     ${running.length > 0 ? `${mib(total)} resident in ${running.length} process(es)` : "-"}`,
    `kubeconfig: ${s.kubeconfig}`,
  ].join("\n");
}

function realNodeLine(n: NonNullable<HostStatus["realNode"]>): string {
  const state = !n.running ? "stopped" : n.ready ? "Ready" : "not Ready";
  const devices = Object.entries(n.devices)
    .map(([k, v]) => `${k.replace("devices.kubevirt.io/", "")} ${v}`)
    .join(", ");
  return `real node: ${n.name} ${n.address} ${state}, devices ${devices}, memory ${mib(n.memoryBytes)}`;
}

/** Whether the host cluster is fully up: every process running, the API ready, every node Ready (the real one too, when there is one). */
export function hostIsUp(s: HostStatus): boolean {
  return (
    s.components.every((c) => c.running) &&
    s.api.ready &&
    s.nodes !== null &&
    s.nodes.total > 0 &&
    s.nodes.ready === s.nodes.total &&
    (s.realNode === undefined || s.realNode.ready)
  );
}

export async function runHost(argv: string[], io: CliIo): Promise<number> {
  let command;
  try {
    command = parseHostCommandLine(argv, io.cwd, PROJECT_ROOT);
  } catch (err) {
    if (err instanceof HostUsageError) throw new UsageError(err.message);
    throw err;
  }
  if (command.help) {
    writeLine(io.stdout, HOST_USAGE);
    return EXIT.ok;
  }
  const host = new HostCluster({
    hostDir: command.hostDir,
    env: io.env,
    progress: (line) => writeLine(io.stderr, line),
    realNode: command.realNode,
  });
  try {
    switch (command.verb) {
      case "up": {
        const result = await host.up();
        writeLine(io.stdout, result.kubeconfig);
        return EXIT.ok;
      }
      case "down":
        await host.down({ purge: command.purge });
        return EXIT.ok;
      case "status": {
        const status = await host.status();
        writeLine(io.stdout, command.json ? JSON.stringify(status, null, 2) : hostStatusText(status));
        return hostIsUp(status) ? EXIT.ok : EXIT.problems;
      }
    }
  } catch (err) {
    if (!(err instanceof HostError)) throw err;
    writeLine(io.stderr, `g8s host ${command.verb}: ${err.message}`);
    if (err.details) writeLine(io.stderr, err.details);
    return EXIT.problems;
  }
}
