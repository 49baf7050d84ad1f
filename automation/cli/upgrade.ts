/**
 * `g8s upgrade STACK`: rolls the guest cluster to the `kubernetes.version` its stack file names,
 * one node at a time (automation/access/upgrade.ts), through the cluster's own API with the admin
 * kubeconfig its stack exports. Resumes an interrupted rollout; a cluster already on the version
 * is left alone.
 */
import { pauseImageOf } from "../../components/bootstrap/nodeImage";
import { versionChangeProblem } from "../../components/spec/versions";
import { adminKubeconfigFromState, findKubectl, GuestKubectl, NodeShells } from "../access/guestNodes";
import { APT_UPGRADE_UNSUPPORTED, readVersions, upgradeCluster } from "../access/upgrade";
import { serverFlagProblem } from "../access/userKubeconfig";
import { readStackFile, withStackState } from "./appliedStack";
import { EXIT, UsageError, writeLine, type CliIo } from "./io";
import { parseCommandLine, settingsFrom, SETTINGS_HELP } from "./settingsFlags";

export const UPGRADE_USAGE = `usage: g8s upgrade STACK [--server URL] [settings]

Rolls the cluster to the kubernetes.version of its stack file (one minor at a time), one node at
a time: the first master with 'kubeadm upgrade apply', every other master and then every worker
with 'kubeadm upgrade node'. Each node is cordoned and drained first (PodDisruptionBudgets
honoured), its kubelet switched and restarted after kubeadm, and uncordoned; the next node starts
once every readyz check passes, every etcd member is healthy and the node runs the new version.
A rollout that stopped (a failure, a crash) goes on where it stopped when run again; a failed
node stays cordoned until then. The nodes must hold the version's kubelet and kubeadm (the node
image holds its own version and the next minor's).
Through the cluster's API with the admin kubeconfig the stack exports, kubectl (the toolchain's,
else PATH's, or G8S_KUBECTL) and a privileged helper pod per node in kube-system (removed after).
  --server URL     the API server as you reach it (default: the stack's adminKubeconfig server);
                   its certificate is still checked for the stack's API name

${SETTINGS_HELP}`;

export async function runUpgrade(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, {
    server: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    writeLine(io.stdout, UPGRADE_USAGE);
    return EXIT.ok;
  }
  const [stack, ...rest] = positionals;
  if (stack === undefined || rest.length > 0) throw new UsageError("name one stack");
  const server = values.server as string | undefined;
  const problem = serverFlagProblem(server);
  if (problem !== undefined) throw new UsageError(problem);

  const settings = settingsFrom(values, io);
  const file = readStackFile("upgrade", stack, settings, io);
  if (typeof file === "number") return file;
  const target = file.spec.kubernetes.version;
  const say = (line: string) => writeLine(io.stderr, `[upgrade ${stack}] ${line}`);
  const done = await withStackState("upgrade", stack, settings, io, async (resources) => {
    const kubectl = new GuestKubectl(findKubectl(io.env), adminKubeconfigFromState(resources, stack, server));
    let shells: NodeShells | undefined;
    try {
      const view = await readVersions(kubectl);
      const running = view.cluster;
      // Any image every node has serves the helper pods (they run the node's own tools): the
      // sandbox image of the running version, which kubelet keeps.
      shells = new NodeShells(kubectl, pauseImageOf(running.replace(/^v/, "")), "upgrade");
      const refused = versionChangeProblem(running.replace(/^v/, ""), target);
      if (refused !== undefined) return { refused: `${file.display}: kubernetes.version: ${refused}` };
      if (file.spec.kubernetes.packages !== "image" && running !== `v${target}`)
        return { refused: `${file.display}: kubernetes.packages: ${APT_UPGRADE_UNSUPPORTED}` };
      await shells.close(); // a leftover of an interrupted run
      const report = await upgradeCluster(kubectl, shells, target, say, {
        pinCoreDns: file.spec.kubernetes.packages === "image",
        view,
      });
      if (report.nodes.length === 0) return { lines: [`${stack} runs ${running} on every node: nothing to upgrade`] };
      return {
        lines: [
          `${stack} upgraded from ${report.from} to ${report.to} in ${report.seconds.toFixed(1)} s:`,
          ...report.nodes.map((n) => `  ${n.node}: ${n.seconds.toFixed(1)} s (${n.summary})`),
        ],
      };
    } finally {
      await shells?.close();
      kubectl.close();
    }
  });
  if (typeof done === "number") return done;
  if (done.value.refused !== undefined) {
    writeLine(io.stderr, `g8s upgrade: ${done.value.refused}`);
    return EXIT.problems;
  }
  for (const line of done.value.lines ?? []) writeLine(io.stdout, line);
  return EXIT.ok;
}
