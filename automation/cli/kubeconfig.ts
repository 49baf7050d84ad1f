/**
 * `g8s kubeconfig STACK --user NAME [--group G]… [--ttl 8h]`: a person's short-lived kubeconfig,
 * signed by the cluster's CA from the stack's state (local and tls backends, with the backend's
 * passphrase). Read-only: the stack is neither locked nor changed, and nothing about the
 * certificate is stored anywhere but in the kubeconfig it prints.
 */
import { chmodSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { DEFAULT_USER_KUBECONFIG_TTL, durationSeconds } from "../../components/spec";
import {
  endpointFromState,
  issueUserKubeconfig,
  reachedAt,
  requestProblems,
  signingCaFromState,
} from "../access/userKubeconfig";
import { readStackFile, withStackState } from "./appliedStack";
import { EXIT, UsageError, writeLine, type CliIo } from "./io";
import { parseCommandLine, settingsFrom, SETTINGS_HELP } from "./settingsFlags";

export const KUBECONFIG_USAGE = `usage: g8s kubeconfig STACK --user NAME [--group GROUP]… [--ttl ${DEFAULT_USER_KUBECONFIG_TTL}] [--output FILE] [--server URL] [settings]

Prints a kubeconfig for a person: a fresh key and a client certificate (CN the user, O each
group) from the cluster's CA, valid for --ttl (1m to 24h; default ${DEFAULT_USER_KUBECONFIG_TTL}). The API server grants it what
RBAC grants the user and the groups. A certificate cannot be revoked: keep the TTL short, and
list lasting users in the stack file (pki.users) instead. The stack must have been applied; its
state is read with the backend's passphrase (pki.backend local or tls; with vault, Vault issues:
vault write pki-<id>/issue/user-<name>).
  --user NAME     the user name (the certificate's CN)
  --group GROUP   an RBAC group (O); repeat for several; never system:masters
  --ttl DURATION  how long it is valid, e.g. 30m, 8h
  --output FILE   write it to FILE (mode 0600) instead of stdout
  --server URL    the API server as the person reaches it (default: the stack's adminKubeconfig
                  server); the API server's certificate is still checked for the stack's API name

${SETTINGS_HELP}`;

export async function runKubeconfig(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, {
    user: { type: "string" },
    group: { type: "string", multiple: true },
    ttl: { type: "string" },
    output: { type: "string", short: "o" },
    server: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    writeLine(io.stdout, KUBECONFIG_USAGE);
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new UsageError("name one stack");
  if (values.user === undefined) throw new UsageError("--user is required: the name the certificate carries");
  const [stack] = positionals;
  const user = values.user as string;
  const groups = [...new Set((values.group as string[] | undefined) ?? [])];
  const ttl = (values.ttl as string | undefined) ?? DEFAULT_USER_KUBECONFIG_TTL;
  const server = values.server as string | undefined;
  const problems = requestProblems(user, groups, ttl, server);
  if (problems.length > 0) throw new UsageError(problems.join("\n"));

  const settings = settingsFrom(values, io);
  const file = readStackFile("kubeconfig", stack, settings, io);
  if (typeof file === "number") return file;
  const { spec, display } = file;
  const backend = spec.pki.backend;
  if (backend === "vault") {
    writeLine(
      io.stderr,
      `g8s kubeconfig: ${display}: pki.backend is vault, whose CA key never leaves Vault: issue with ` +
        `'vault write pki-${spec.id}/issue/user-${user} common_name=${user} ttl=${ttl}' (a role per user listed in pki.users)`,
    );
    return EXIT.problems;
  }
  const read = await withStackState("kubeconfig", stack, settings, io, (resources) => {
    const endpoint = endpointFromState(resources, stack);
    return issueUserKubeconfig(
      spec,
      signingCaFromState(resources, backend, stack),
      server === undefined ? endpoint : reachedAt(endpoint, server),
      { user, groups, ttlSeconds: durationSeconds(ttl) },
      new Date(),
    );
  });
  if (typeof read === "number") return read;
  const issued = read.value;
  if (values.output !== undefined) {
    const out = path.resolve(io.cwd, values.output as string);
    writeFileSync(out, issued.kubeconfig, { mode: 0o600 });
    chmodSync(out, 0o600); // an existing file keeps its mode on write
  } else {
    io.stdout.write(issued.kubeconfig);
  }
  // The audit line: who, which groups, which serial, until when (never the key).
  writeLine(
    io.stderr,
    `issued ${user}${groups.length > 0 ? ` (groups ${groups.join(", ")})` : ""} for stack ${stack}: ` +
      `serial ${issued.serial}, valid ${issued.notBefore.toISOString()} to ${issued.notAfter.toISOString()}` +
      (values.output !== undefined ? `; written to ${values.output as string}` : ""),
  );
  return EXIT.ok;
}
