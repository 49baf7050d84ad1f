/** `g8s lab up | down <stack-file>`: a KVM-platform guest cluster on this machine, end to end. */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { LabError, labDown, labUp } from "../lab/lab";
import { EXIT, UsageError, writeLine, type CliIo } from "./io";

export const LAB_USAGE = `usage: g8s lab up   STACK-FILE [--lab-dir DIR] [--timeout MINUTES] [--vm NODE]...
       g8s lab down STACK-FILE [--lab-dir DIR]

Boots the guest cluster of a KVM-platform stack file (kubernetes.packages: image,
pki.backend: local) on this machine: a host cluster (g8s host up), the stack applied to it by
the reconciler, then one system container per QEMU pod, booted from the node image with the
user-data and files the platform stored. Builds what a fresh clone lacks first, as npm start
does (scripts/provision.sh: the toolchain and the node image; a cold build takes 30-50 min on 2
cores). Needs root.
  up     progress on stderr; exits 0 once every node is Ready and prints the guest's admin
         kubeconfig path as the last line (stdout); each pki.users entry's kubeconfig is in
         <lab-dir>/users. On a running lab: applies the stack again, updates the running nodes'
         files in place (renewed certificates reach them) and boots the nodes that stopped
  down   stops the nodes and the host cluster and removes the lab dir
  --lab-dir DIR     default <project>/.g8s/lab/<cluster id>
  --timeout MINUTES per phase and for Ready (default 15)
  --vm NODE         boot worker NODE (e.g. pool-default-0) as a QEMU VM through the platform's
                    pod entrypoint (tools/qemu-node), emulated (TCG) where KVM cannot run it:
                    minutes per phase; repeatable`;

export async function runLab(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        "lab-dir": { type: "string" },
        timeout: { type: "string" },
        vm: { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new UsageError(`g8s lab: ${(err as Error).message}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    writeLine(io.stdout, LAB_USAGE);
    return EXIT.ok;
  }
  const [verb, stackFile, ...extra] = positionals;
  if ((verb !== "up" && verb !== "down") || stackFile === undefined || extra.length > 0) {
    throw new UsageError("g8s lab: expected 'up STACK-FILE' or 'down STACK-FILE'");
  }
  if (verb === "down" && values.vm !== undefined) {
    throw new UsageError("g8s lab down: --vm is for 'up' only (down finds the VM nodes itself)");
  }
  const minutes = values.timeout === undefined ? 15 : Number(values.timeout);
  if (!Number.isFinite(minutes) || minutes <= 0) {
    throw new UsageError(`g8s lab: --timeout must be a positive number of minutes (got '${String(values.timeout)}')`);
  }
  const options = {
    stackFile: path.resolve(io.cwd, stackFile),
    labDir: values["lab-dir"] === undefined ? undefined : path.resolve(io.cwd, values["lab-dir"]),
    env: io.env,
    progress: (line: string) => writeLine(io.stderr, line),
    timeoutMs: minutes * 60_000,
    vmNodes: values.vm ?? [],
  };
  try {
    if (verb === "up") writeLine(io.stdout, await labUp(options));
    else await labDown(options);
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof LabError)) throw err;
    writeLine(io.stderr, `g8s lab ${verb}: ${err.message}`);
    if (err.details) writeLine(io.stderr, err.details);
    return EXIT.problems;
  }
}
