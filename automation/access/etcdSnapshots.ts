/**
 * etcd snapshots and restores of a guest cluster driven from outside it (`g8s etcd`): the node
 * side is components/bootstrap/etcdBackup.ts (g8s-etcd-snapshot, g8s-etcd-restore, their env
 * file); this module runs it on every master through helper pods (guestNodes.ts) and does the
 * runbook's steps an operator did by hand: find the snapshot, put the same file on every master
 * (streamed through the API, checked against its checksum on arrival), start every master's
 * restore at once as a transient systemd unit (the restore stops the API server the command
 * talks through), then follow the units until each has finished and the cluster is ready again.
 * Nothing destructive happens until every master holds the checked file and has the script.
 */
import { MANIFESTS_DIR } from "../../components/bootstrap/constants";
import {
  ETCD_BACKUP_ENV_PATH,
  ETCD_FETCH_SCRIPT_PATH,
  ETCD_HELD_MANIFESTS_DIR,
  ETCD_RESTORE_SCRIPT_PATH,
  ETCD_SNAPSHOT_UNIT,
  OBJECT_STORE_CLIENT_PATH,
} from "../../components/bootstrap/etcdBackup";
import { firstLines, type GuestKubectl, type NodeShells } from "./guestNodes";
import { AccessError } from "./userKubeconfig";

/** What `g8s-etcd-snapshot` names its files: `<id>-<node>-<UTC time>.db`. */
const SNAPSHOT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.db$/;
const CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane";
/** How long the restore units may take, all together, before the command gives up following them. */
export const RESTORE_FOLLOW_SECONDS = 900;

export function snapshotNameProblem(name: string): string | undefined {
  return SNAPSHOT_NAME_RE.test(name)
    ? undefined
    : `--snapshot ${JSON.stringify(name)}: give a snapshot's file name as g8s etcd snapshots lists it (<id>-<node>-<time>.db)`;
}

export interface SnapshotFile {
  readonly name: string;
  readonly bytes: number;
  readonly time: Date;
}

export interface LastGood {
  readonly snapshot: string;
  readonly time: string;
  readonly revision?: number;
  readonly bytes?: number;
}

export interface MasterSnapshots {
  readonly node: string;
  /** Oldest first. */
  readonly snapshots: readonly SnapshotFile[];
  readonly lastGood?: LastGood;
  /** With `store`: the snapshots in etcd.backup.objectStore (every master's), by name. */
  readonly stored?: readonly string[];
  /** With `store`: why the object store could not be listed. */
  readonly storeError?: string;
}

/**
 * Lists the snapshot directory: `snapshot <name> <bytes> <mtime>` lines, then `last-good <json>`;
 * with argument `store`, also `stored <name>` per snapshot in the object store (or `store-error`).
 */
const LIST_SCRIPT = String.raw`. ${ETCD_BACKUP_ENV_PATH} || exit 3
if [ "$1" = store ] && [ -n "$(printenv S3_BUCKET)" ] && [ -x ${OBJECT_STORE_CLIENT_PATH} ]; then
  if keys=$(${OBJECT_STORE_CLIENT_PATH} list "$S3_PREFIX$CLUSTER_ID-" 2>&1); then
    printf '%s\n' "$keys" | while read -r k; do case $k in *.db) echo "stored $(basename "$k")" ;; esac; done
  else echo "store-error $keys" | tr '\n' ' '; echo; fi
fi
cd "$SNAPSHOT_DIR" 2>/dev/null || exit 0
for f in *.db; do [ -f "$f" ] && stat -c 'snapshot %n %s %Y' -- "$f"; done
if [ -f last-good.json ]; then printf 'last-good '; tr -d '\n' <last-good.json; echo; fi
true`;

export function parseSnapshotList(node: string, text: string): MasterSnapshots {
  const snapshots: SnapshotFile[] = [];
  const stored: string[] = [];
  let storeError: string | undefined;
  let lastGood: LastGood | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("stored ")) stored.push(line.slice("stored ".length));
    if (line.startsWith("store-error ")) storeError = line.slice("store-error ".length).trim();
    const m = /^snapshot (\S+) (\d+) (\d+)$/.exec(line);
    if (m) snapshots.push({ name: m[1], bytes: Number(m[2]), time: new Date(Number(m[3]) * 1000) });
    if (line.startsWith("last-good ")) {
      try {
        lastGood = JSON.parse(line.slice("last-good ".length)) as LastGood;
      } catch {
        // a torn file: shown as no last good snapshot
      }
    }
  }
  snapshots.sort((a, b) => a.time.getTime() - b.time.getTime() || a.name.localeCompare(b.name));
  // The names end in their UTC time: by time across masters.
  const byTime = (name: string) => /(\d{8}T\d{6}Z)\.db$/.exec(name)?.[1] ?? name;
  stored.sort((a, b) => byTime(a).localeCompare(byTime(b)) || a.localeCompare(b));
  return {
    node,
    snapshots,
    ...(lastGood ? { lastGood } : {}),
    ...(stored.length > 0 ? { stored } : {}),
    ...(storeError === undefined ? {} : { storeError }),
  };
}

export interface Masters {
  readonly nodes: readonly string[];
  /** The etcd member's image: on every master already, so the helper pods need no pull. */
  readonly image: string;
}

interface NodeList {
  items: { metadata: { name: string } }[];
}

/** The cluster's masters (Nodes with the control-plane role) and their etcd image. */
export async function findMasters(kubectl: GuestKubectl): Promise<Masters> {
  const nodes = (await kubectl.json<NodeList>(["get", "nodes", "-l", CONTROL_PLANE_LABEL])).items
    .map((n) => n.metadata.name)
    .sort();
  if (nodes.length === 0) throw new AccessError(`the cluster has no Node labelled ${CONTROL_PLANE_LABEL}`);
  const pod = await kubectl.json<{ spec: { containers: { image: string }[] } }>([
    "get",
    "pod",
    "-n",
    "kube-system",
    `etcd-${nodes[0]}`,
  ]);
  return { nodes, image: pod.spec.containers[0].image };
}

function mustRun(node: string, what: string, r: { code: number | null; err: string; out: string }): string {
  if (r.code !== 0) throw new AccessError(`${node}: ${what} failed: ${firstLines(r.err || r.out)}`);
  return r.out;
}

/** Each master's snapshots; the first master also lists the object store (every master's copies are there). */
export async function listSnapshots(shells: NodeShells, nodes: readonly string[]): Promise<MasterSnapshots[]> {
  return Promise.all(
    nodes.map(async (node, i) =>
      parseSnapshotList(
        node,
        mustRun(node, "listing snapshots", await shells.run(node, LIST_SCRIPT, i === 0 ? ["store"] : [])),
      ),
    ),
  );
}

/** One snapshot on every master now (their g8s-etcd-snapshot service, as the timer starts it). */
export async function takeSnapshots(shells: NodeShells, nodes: readonly string[]): Promise<MasterSnapshots[]> {
  await Promise.all(
    nodes.map(async (node) =>
      mustRun(
        node,
        `${ETCD_SNAPSHOT_UNIT}.service`,
        await shells.run(
          node,
          `systemctl start ${ETCD_SNAPSHOT_UNIT}.service || { journalctl -u ${ETCD_SNAPSHOT_UNIT}.service -o cat -n 5 --no-pager >&2; exit 1; }`,
          [],
          { timeoutMs: 600_000 },
        ),
      ),
    ),
  );
  return listSnapshots(shells, nodes);
}

/** Checks the file against its checksum and that the master can restore: prints its size. */
const CHECK_SCRIPT = String.raw`. ${ETCD_BACKUP_ENV_PATH} || exit 3
[ -x ${ETCD_RESTORE_SCRIPT_PATH} ] || { echo "no ${ETCD_RESTORE_SCRIPT_PATH}: this master was booted before etcd backups; roll it first" >&2; exit 3; }
cd "$SNAPSHOT_DIR" 2>/dev/null && [ -f "$1" ] || exit 4
sha256sum --check --status "$1.sha256" || { echo "$1 does not match $1.sha256" >&2; exit 5; }
[ -f "$1.members.json" ] || { echo "$1.members.json is missing" >&2; exit 5; }
stat -c %s -- "$1"`;
/** A master booted before off-volume copies has no fetch script: as if there were no object store. */
const FETCH_SCRIPT = String.raw`[ -x ${ETCD_FETCH_SCRIPT_PATH} ] || exit 3; exec ${ETCD_FETCH_SCRIPT_PATH} "$1"`;
const READ_SCRIPT = String.raw`. ${ETCD_BACKUP_ENV_PATH} && exec cat -- "$SNAPSHOT_DIR/$1"`;
const WRITE_SCRIPT = String.raw`set -e; . ${ETCD_BACKUP_ENV_PATH}
mkdir -p "$SNAPSHOT_DIR"; chmod 0700 "$SNAPSHOT_DIR"
cat >"$SNAPSHOT_DIR/.$1.part"; mv "$SNAPSHOT_DIR/.$1.part" "$SNAPSHOT_DIR/$1"`;
/** This master's etcd member as its manifest names it: `NAME=PEER-URL` (the manifest in place, or held by a restore). */
const MEMBER_SCRIPT = String.raw`m=${MANIFESTS_DIR}/etcd.yaml; [ -f "$m" ] || m=${ETCD_HELD_MANIFESTS_DIR}/etcd.yaml
[ -f "$m" ] || { echo "no etcd manifest: is this a master?" >&2; exit 3; }
printf '%s=%s\n' "$(sed -n 's/^ *- --name=//p' "$m" | head -n 1)" "$(sed -n 's/^ *- --initial-advertise-peer-urls=//p' "$m" | head -n 1)"`;

/** The members to restore: the masters there are now, whatever the snapshot's list (masters added or replaced since). */
export function initialCluster(members: readonly string[]): string {
  for (const m of members) {
    if (!/^[a-z0-9][a-z0-9.-]*=https:\/\/[^\s,=]+$/.test(m)) {
      throw new AccessError(
        `a master's etcd manifest gives ${JSON.stringify(m)}, not NAME=https://PEER: restore by hand`,
      );
    }
  }
  return [...members].sort().join(",");
}

/**
 * Every master's restore starts RESTORE_DELAY_SECONDS after its unit is made (a transient timer):
 * the first restore to start stops the API server these commands reach the masters through, so
 * no start may depend on the API being up after another one began.
 */
export const RESTORE_DELAY_SECONDS = 10;
const START_SCRIPT = String.raw`. ${ETCD_BACKUP_ENV_PATH} || exit 3
systemd-run --quiet --unit "$1" --on-active=${RESTORE_DELAY_SECONDS} -p Type=oneshot -p RemainAfterExit=yes -p TimeoutStartSec=${RESTORE_FOLLOW_SECONDS} ${ETCD_RESTORE_SCRIPT_PATH} "$SNAPSHOT_DIR/$2" --initial-cluster "$3"`;
const CANCEL_SCRIPT = String.raw`systemctl stop "$1.timer"`;
const STATE_SCRIPT = String.raw`systemctl show -p ActiveState -p Result "$1"; journalctl -u "$1" -t ${ETCD_RESTORE_SCRIPT_PATH.split("/").pop()} -o cat --no-pager -n 5 | sed 's/^/log /'`;

export interface RestoreProgress {
  (line: string): void;
}

export interface RestoreReport {
  readonly snapshot: string;
  readonly source: string;
  readonly masters: readonly string[];
  /** Bytes copied to the masters that lacked the file. */
  readonly copiedBytes: number;
  /** From the units' start until every one had finished. */
  readonly restoreSeconds: number;
  /** Each master's last line of its restore (the script's summary). */
  readonly summaries: ReadonlyMap<string, string>;
}

type UnitState = { state: "running" } | { state: "done"; summary: string } | { state: "failed"; log: string };

export function parseUnitState(text: string): UnitState {
  const value = (key: string) => new RegExp(`^${key}=(.*)$`, "m").exec(text)?.[1] ?? "";
  const log = text
    .split("\n")
    .filter((l) => l.startsWith("log "))
    .map((l) => l.slice(4));
  const active = value("ActiveState");
  if (active === "failed" || (active === "inactive" && value("Result") !== "success" && value("Result") !== ""))
    return { state: "failed", log: log.join("\n") };
  if (active === "active" && value("Result") === "success") return { state: "done", summary: log.at(-1) ?? "" };
  return { state: "running" };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Restores every master's etcd member from snapshot `name` (found on whichever master holds it),
 * all at once. Resolves when every master's restore unit has finished well; an AccessError
 * names the master and its log otherwise.
 */
export async function restoreEtcd(
  kubectl: GuestKubectl,
  shells: NodeShells,
  nodes: readonly string[],
  name: string,
  progress: RestoreProgress,
): Promise<RestoreReport> {
  // 1. Where the file is, and that every master can restore.
  const checks = await Promise.all(nodes.map((n) => shells.run(n, CHECK_SCRIPT, [name])));
  const holders: string[] = [];
  checks.forEach((r, i) => {
    if (r.code === 0) holders.push(nodes[i]);
    else if (r.code !== 4) mustRun(nodes[i], `checking ${name}`, r);
  });
  if (holders.length === 0) {
    // No master has it (new volumes): every master fetches it from the object store, checked.
    progress(`no master holds ${name}: fetching it from the object store`);
    const fetched = await Promise.all(nodes.map((n) => shells.run(n, FETCH_SCRIPT, [name], { timeoutMs: 1_800_000 })));
    fetched.forEach((r, i) => {
      if (r.code === 0) holders.push(nodes[i]);
    });
    if (holders.length === 0) {
      const why = fetched[0];
      throw new AccessError(
        why.code === 3 || why.code === 4
          ? `neither a master nor the object store holds ${name}: pick one that g8s etcd snapshots lists`
          : `${nodes[0]}: fetching ${name} failed: ${firstLines(why.err || why.out)}`,
      );
    }
    progress(`fetched ${name} on ${holders.join(", ")}`);
  }
  const source = holders.find((n) => name.includes(`-${n}-`)) ?? holders[0];
  // Its size as the check reports it (again after a fetch: the first check found nothing there).
  const sourceCheck =
    checks[nodes.indexOf(source)].code === 0
      ? checks[nodes.indexOf(source)]
      : await shells.run(source, CHECK_SCRIPT, [name]);
  const bytes = Number(mustRun(source, `checking ${name}`, sourceCheck).trim());
  progress(`${name} (${bytes} bytes, checksum good) on ${holders.join(", ")}`);

  // 2. The same file on every master, checked on arrival.
  let copiedBytes = 0;
  for (const target of nodes.filter((n) => !holders.includes(n))) {
    for (const file of [`${name}.sha256`, `${name}.members.json`, name]) {
      const read = shells.stream(source, READ_SCRIPT, [file]);
      const write = await shells.run(target, WRITE_SCRIPT, [file], { stdin: read.stdout, timeoutMs: 1_800_000 });
      mustRun(source, `reading ${file}`, await read.done);
      mustRun(target, `writing ${file}`, write);
    }
    const check = await shells.run(target, CHECK_SCRIPT, [name]);
    mustRun(target, `checking the copy of ${name}`, check);
    copiedBytes += bytes;
    progress(`copied ${name} from ${source} to ${target}, checksum good`);
  }

  // 3. Every master's restore at once: a transient unit each, which outlives this API's outage,
  // restoring the masters there are now (the snapshot's member list may predate a new master).
  const members = await Promise.all(
    nodes.map(async (n) => mustRun(n, "reading its etcd member", await shells.run(n, MEMBER_SCRIPT)).trim()),
  );
  const cluster = initialCluster(members);
  const unit = `g8s-etcd-restore-${Date.now().toString(36)}`;
  const started = Date.now();
  const starts = await Promise.all(nodes.map((n) => shells.run(n, START_SCRIPT, [unit, name, cluster])));
  const failed = starts.findIndex((r) => r.code !== 0);
  if (failed >= 0) {
    // All or none: the timers set on the others are stopped before they fire.
    const set = nodes.filter((_, i) => starts[i].code === 0);
    const cancels = await Promise.all(set.map((n) => shells.run(n, CANCEL_SCRIPT, [unit])));
    const left = set.filter((_, i) => cancels[i].code !== 0);
    mustRun(
      nodes[failed],
      `starting ${unit} (${left.length === 0 ? "nothing was restored" : `its timer could not be stopped on ${left.join(", ")}: stop ${unit}.timer there now`})`,
      starts[failed],
    );
  }
  progress(
    `set ${unit} to start in ${RESTORE_DELAY_SECONDS} s on ${nodes.join(", ")} as members ${cluster}: the API goes away until etcd is restored`,
  );

  // 4. Follow the units. The API drops out while they run; afterwards it no longer knows the
  // helper pods (made after the snapshot), so they are made again.
  const summaries = new Map<string, string>();
  let reopened = 0;
  while (summaries.size < nodes.length) {
    if ((Date.now() - started) / 1000 > RESTORE_FOLLOW_SECONDS)
      throw new AccessError(
        `the restore units (${unit}) had not finished after ${RESTORE_FOLLOW_SECONDS} s on ` +
          `${nodes.filter((n) => !summaries.has(n)).join(", ")}: see journalctl -u ${unit} there`,
      );
    await sleep(3000);
    const pending = nodes.filter((n) => !summaries.has(n));
    const states = await Promise.all(pending.map((n) => shells.run(n, STATE_SCRIPT, [unit], { timeoutMs: 20_000 })));
    const unreachable: string[] = [];
    states.forEach((r, i) => {
      if (r.code !== 0) return void unreachable.push(pending[i]);
      const s = parseUnitState(r.out);
      if (s.state === "failed")
        throw new AccessError(`${pending[i]}: ${unit} failed: ${s.log || "(no log)"}; see journalctl -u ${unit}`);
      if (s.state === "done") {
        summaries.set(pending[i], s.summary);
        progress(`${pending[i]}: ${s.summary}`);
      }
    });
    if (unreachable.length > 0 && Date.now() - reopened > 20_000) {
      const ready = await kubectl.run(["get", "--raw", "/readyz", "--request-timeout=10s"], { timeoutMs: 15_000 });
      if (ready.code === 0) {
        reopened = Date.now();
        await shells.open(unreachable).catch((err: Error) => progress(`helper pods not back yet: ${err.message}`));
      }
    }
  }
  return {
    snapshot: name,
    source,
    masters: nodes,
    copiedBytes,
    restoreSeconds: (Date.now() - started) / 1000,
    summaries,
  };
}

/** Waits until the API answers every readyz check and every Node is Ready; the seconds it took. */
export async function waitHealthy(kubectl: GuestKubectl, timeoutSeconds: number): Promise<number> {
  const started = Date.now();
  let last = "";
  while ((Date.now() - started) / 1000 < timeoutSeconds) {
    const ready = await kubectl.run(["get", "--raw", "/readyz", "--request-timeout=10s"], { timeoutMs: 15_000 });
    if (ready.code === 0 && ready.out.trim() === "ok") {
      const nodes = await kubectl.run(["get", "nodes", "-o", "json", "--request-timeout=10s"], { timeoutMs: 15_000 });
      if (nodes.code === 0) {
        const items = (
          JSON.parse(nodes.out) as {
            items: { metadata: { name: string }; status: { conditions?: { type: string; status: string }[] } }[];
          }
        ).items;
        const notReady = items.filter((n) => n.status.conditions?.find((c) => c.type === "Ready")?.status !== "True");
        if (notReady.length === 0) return (Date.now() - started) / 1000;
        last = `not Ready: ${notReady.map((n) => n.metadata.name).join(", ")}`;
      }
    } else {
      last = `readyz: ${firstLines(ready.err || ready.out, 1)}`;
    }
    await sleep(3000);
  }
  throw new AccessError(`the cluster was not healthy ${timeoutSeconds} s after the restore (${last})`);
}
