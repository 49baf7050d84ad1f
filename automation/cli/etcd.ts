/**
 * `g8s etcd snapshots|snapshot|restore STACK`: a guest cluster's etcd snapshots, listed, taken
 * now, or restored on every master at once, through the cluster's own API with the admin
 * kubeconfig its stack exports (automation/access/etcdSnapshots.ts). The runbook is in
 * components/bootstrap/README.md.
 */
import { writeLine, EXIT, UsageError, type CliIo } from "./io";
import { parseCommandLine, settingsFrom, SETTINGS_HELP } from "./settingsFlags";
import { readStackFile, withStackState } from "./appliedStack";
import {
  findMasters,
  listSnapshots,
  restoreEtcd,
  snapshotNameProblem,
  takeSnapshots,
  waitHealthy,
  type MasterSnapshots,
} from "../access/etcdSnapshots";
import { adminKubeconfigFromState, findKubectl, GuestKubectl, NodeShells } from "../access/guestNodes";
import { serverFlagProblem } from "../access/userKubeconfig";

export const ETCD_USAGE = `usage: g8s etcd snapshots STACK [--server URL] [settings]
       g8s etcd snapshot STACK [--server URL] [settings]
       g8s etcd restore STACK --snapshot NAME --yes [--server URL] [settings]

A guest cluster's etcd snapshots (etcd.backup in the stack file), on every master's etcd volume
and, with etcd.backup.objectStore, in the object store:
  snapshots   lists each master's snapshots, oldest first, its last good one, and the object store's
  snapshot    takes one on every master now (as the timer does) and lists them
  restore     restores every master's etcd member from snapshot NAME at once: copies the file
              (checked against its checksum) to every master that lacks it (from the object
              store when no master has it), then runs each
              master's g8s-etcd-restore together and follows them until the cluster is ready.
              Everything written after the snapshot is lost (the data before is kept on each
              master as data.before-restore-<time>). The stack file must say
              g8s:reconcile.mode: off while it runs (a pass must not replace a master it sees
              unready); --yes confirms.
Through the cluster's API with the admin kubeconfig the stack exports, kubectl (the toolchain's,
else PATH's, or G8S_KUBECTL) and a privileged helper pod per master in kube-system (removed after).
  --server URL     the API server as you reach it (default: the stack's adminKubeconfig server);
                   its certificate is still checked for the stack's API name
  --snapshot NAME  restore: the snapshot's file name, as 'snapshots' lists it
  --yes            restore: confirms that what was written after the snapshot is lost

${SETTINGS_HELP}`;

const SUBCOMMANDS = ["snapshots", "snapshot", "restore"] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

function formatSnapshots(all: readonly MasterSnapshots[]): string[] {
  const lines: string[] = [];
  for (const m of all) {
    lines.push(
      `${m.node}: ${m.snapshots.length} snapshot(s)` +
        (m.lastGood ? `; last good ${m.lastGood.snapshot} at ${m.lastGood.time}` : "; none good yet"),
    );
    for (const s of m.snapshots)
      lines.push(`  ${s.name}  ${(s.bytes / 1048576).toFixed(1)} MiB  ${s.time.toISOString()}`);
  }
  for (const m of all) {
    if (m.storeError !== undefined) lines.push(`object store: not listed (${m.storeError})`);
    if (m.stored !== undefined) {
      lines.push(`object store: ${m.stored.length} snapshot(s), every master's (restore takes them too)`);
      for (const name of m.stored) lines.push(`  ${name}`);
    }
  }
  return lines;
}

export async function runEtcd(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, {
    server: { type: "string" },
    snapshot: { type: "string" },
    yes: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    writeLine(io.stdout, ETCD_USAGE);
    return EXIT.ok;
  }
  const [sub, stack, ...rest] = positionals;
  if (!SUBCOMMANDS.includes(sub as Subcommand)) throw new UsageError(`name what to do: ${SUBCOMMANDS.join(", ")}`);
  if (stack === undefined || rest.length > 0) throw new UsageError("name one stack");
  const server = values.server as string | undefined;
  const problems = [serverFlagProblem(server)];
  const snapshot = values.snapshot as string | undefined;
  if (sub === "restore") {
    if (snapshot === undefined) problems.push("--snapshot is required: the snapshot to restore (g8s etcd snapshots)");
    else problems.push(snapshotNameProblem(snapshot));
    if (!values.yes)
      problems.push("--yes is required: a restore loses everything written after the snapshot; say you mean it");
  } else if (snapshot !== undefined || values.yes) {
    problems.push(`--snapshot and --yes belong to restore, not ${sub}`);
  }
  const problem = problems.filter((p): p is string => p !== undefined);
  if (problem.length > 0) throw new UsageError(problem.join("\n"));

  const settings = settingsFrom(values, io);
  const file = readStackFile(`etcd ${sub}`, stack, settings, io);
  if (typeof file === "number") return file;
  if (sub === "restore" && file.reconcile.mode !== "off") {
    writeLine(
      io.stderr,
      `g8s etcd restore: ${file.display}: g8s:reconcile.mode is ${file.reconcile.mode}: set it to off while ` +
        `etcd is restored (a pass must not replace a master it sees unready), and back afterwards`,
    );
    return EXIT.problems;
  }
  const say = (line: string) => writeLine(io.stderr, `[etcd ${sub} ${stack}] ${line}`);
  const done = await withStackState(`etcd ${sub}`, stack, settings, io, async (resources) => {
    const kubectl = new GuestKubectl(findKubectl(io.env), adminKubeconfigFromState(resources, stack, server));
    let shells: NodeShells | undefined;
    try {
      const masters = await findMasters(kubectl);
      shells = new NodeShells(kubectl, masters.image, "etcd");
      await shells.close(); // a leftover of an interrupted run
      await shells.open(masters.nodes);
      if (sub === "snapshots") return formatSnapshots(await listSnapshots(shells, masters.nodes));
      if (sub === "snapshot") {
        const started = Date.now();
        const lines = formatSnapshots(await takeSnapshots(shells, masters.nodes));
        say(`took a snapshot on ${masters.nodes.join(", ")} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        return lines;
      }
      if (masters.nodes.length !== file.spec.masters.count)
        say(
          `warning: the cluster has ${masters.nodes.length} master Node(s) (${masters.nodes.join(", ")}), ` +
            `the stack file ${file.spec.masters.count}: every master takes part in the restore`,
        );
      const report = await restoreEtcd(kubectl, shells, masters.nodes, snapshot as string, say);
      say(`every member restored in ${report.restoreSeconds.toFixed(1)} s; waiting for readyz and every Node Ready`);
      const healthy = await waitHealthy(kubectl, 600);
      return [
        `restored ${report.snapshot} (from ${report.source}) on ${report.masters.join(", ")}: members back in ` +
          `${report.restoreSeconds.toFixed(1)} s, the cluster ready ${healthy.toFixed(1)} s later. Set ` +
          `g8s:reconcile.mode back, and remove data.before-restore-* on the masters once the cluster is well.`,
      ];
    } finally {
      await shells?.close();
      kubectl.close();
    }
  });
  if (typeof done === "number") return done;
  for (const line of done.value) writeLine(io.stdout, line);
  return EXIT.ok;
}
