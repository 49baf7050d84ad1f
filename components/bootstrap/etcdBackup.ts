/**
 * etcd snapshots on every master (spec `etcd.backup`) and the restore that takes one back: two
 * static scripts, their settings in an env file, a oneshot service and its timer. The same on
 * every platform: the scripts talk to the local member on 127.0.0.1:2379 with the etcd
 * health-check client certificate, and run etcdctl and etcdutl taken from the etcd image the
 * member runs (the version that wrote the data; registry.k8s.io's image has both tools, the
 * node image's etcd is one binary that is each of them by name).
 */
import { etcdObjectStore, type ClusterSpec } from "../spec";
import {
  ADMIN_KUBECONFIG_PATH,
  DEFAULT_SECRET_MOUNT_PATH,
  ETCD_VOLUME_MOUNT_PATH,
  G8S_DIR,
  MANIFESTS_DIR,
  PKI_DIR,
} from "./constants";
import { renderIni, type IniSection } from "./ini";
import type { WriteFile } from "./delivery";

export const ETCD_SNAPSHOT_SCRIPT_PATH = "/usr/local/sbin/g8s-etcd-snapshot";
export const ETCD_RESTORE_SCRIPT_PATH = "/usr/local/sbin/g8s-etcd-restore";
export const ETCD_FETCH_SCRIPT_PATH = "/usr/local/sbin/g8s-etcd-fetch";
export const OBJECT_STORE_CLIENT_PATH = "/usr/local/sbin/g8s-object-store";
/** Outside AWS: the credentialsSecret's keys as files of the masters' secret share (components/kvm). */
export const OBJECT_STORE_KEY_FILES = {
  accessKeyId: "etcd-backup-access-key-id",
  secretAccessKey: "etcd-backup-secret-access-key",
} as const;
/** The files of a snapshot in the object store, the snapshot itself last: a listed `.db` has its sidecars. */
export const SNAPSHOT_SIDECARS = ["sha256", "members.json", "status.json"] as const;
/** On the etcd volume, beside etcd's data directory: it survives the node (AWS: a protected EBS volume; KVM: a host-cluster volume). */
export const ETCD_SNAPSHOT_DIR = `${ETCD_VOLUME_MOUNT_PATH}/snapshots`;
export const ETCD_BACKUP_ENV_PATH = `${G8S_DIR}/etcd-backup.env`;
export const ETCD_SNAPSHOT_UNIT = "g8s-etcd-snapshot";
/** Where a restore holds the kube-apiserver and etcd manifests while it runs. */
export const ETCD_HELD_MANIFESTS_DIR = "/etc/kubernetes/g8s-held-manifests";
/** On each master's Node: the time of its last good snapshot (RFC 3339, UTC). */
export const ETCD_LAST_GOOD_ANNOTATION = "g8s.dev/etcd-last-good-snapshot";
/** Added to the restored revision, so every watcher and informer cache sees its revision gone and re-lists. */
export const ETCD_RESTORE_BUMP_REVISION = 1_000_000_000;

/**
 * `g8s-object-store put|get|list|delete`: the S3 API with AWS Signature Version 4, in the Python
 * the node image has (no AWS CLI there). Static keys from the secret share, or the instance
 * role's from EC2's metadata service (IMDSv2).
 */
export const OBJECT_STORE_CLIENT = String.raw`#!/usr/bin/python3
"""g8s-object-store: put, get, list and delete objects of etcd.backup.objectStore (S3 API, SigV4).

Settings from the environment (etcd-backup.env): S3_ENDPOINT, S3_ADDRESSING (virtual|path),
S3_BUCKET, S3_REGION, S3_CREDENTIALS_DIR (files etcd-backup-access-key-id and
etcd-backup-secret-access-key; empty: the instance role, from EC2's metadata service).
"""
import datetime, hashlib, hmac, json, os, sys, time, urllib.error, urllib.parse, urllib.request
import xml.etree.ElementTree as ET

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
IMDS = "http://169.254.169.254"


def quote(text, safe=""):
    return urllib.parse.quote(text, safe=safe + UNRESERVED)


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(method, host, path, query, headers, payload_sha256, when, access_key, secret_key, region, token=None):
    """The request's headers with SigV4's Authorization for service s3 (path: not yet encoded)."""
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    all_headers = {k.lower(): str(v).strip() for k, v in headers.items()}
    all_headers.update({"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256})
    if token:
        all_headers["x-amz-security-token"] = token
    names = sorted(all_headers)
    canonical = "\n".join([
        method,
        quote(path, "/"),
        "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(query.items())),
        "".join(f"{n}:{all_headers[n]}\n" for n in names),
        ";".join(names),
        payload_sha256,
    ])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret_key).encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    all_headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return all_headers


def die(message):
    print(f"g8s-object-store: {message}", file=sys.stderr)
    sys.exit(1)


def credentials():
    """(access key, secret key, session token or None)."""
    directory = os.environ.get("S3_CREDENTIALS_DIR", "")
    if directory:
        try:
            with open(os.path.join(directory, "etcd-backup-access-key-id")) as f:
                access = f.read().strip()
            with open(os.path.join(directory, "etcd-backup-secret-access-key")) as f:
                secret = f.read().strip()
        except OSError as e:
            die(f"no access key in {directory} ({e.strerror}): is etcd.backup.objectStore.credentialsSecret there?")
        return access, secret, None
    put = urllib.request.Request(f"{IMDS}/latest/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    try:
        imds_token = urllib.request.urlopen(put, timeout=5).read().decode()
        auth = {"X-aws-ec2-metadata-token": imds_token}
        base = f"{IMDS}/latest/meta-data/iam/security-credentials/"
        role = urllib.request.urlopen(urllib.request.Request(base, headers=auth), timeout=5).read().decode().split()[0]
        c = json.load(urllib.request.urlopen(urllib.request.Request(base + role, headers=auth), timeout=5))
    except (OSError, ValueError, IndexError) as e:
        die(f"no instance-role credentials from the metadata service: {e}")
    return c["AccessKeyId"], c["SecretAccessKey"], c.get("Token")


class Store:
    def __init__(self, env):
        self.endpoint = urllib.parse.urlsplit(env["S3_ENDPOINT"])
        self.bucket = env["S3_BUCKET"]
        self.region = env["S3_REGION"]
        self.virtual = env.get("S3_ADDRESSING", "path") == "virtual"
        self.creds = credentials()

    def request(self, method, key="", query=None, body=None, payload_sha256=EMPTY_SHA256, length=None):
        query = query or {}
        host = f"{self.bucket}.{self.endpoint.netloc}" if self.virtual else self.endpoint.netloc
        path = "/" + key if self.virtual else f"/{self.bucket}/{key}" if key else f"/{self.bucket}"
        extra = {} if length is None else {"content-length": str(length)}
        for attempt in range(4):
            when = datetime.datetime.now(datetime.timezone.utc)
            headers = sign(method, host, path, query, extra, payload_sha256, when, *self.creds[:2], self.region,
                           self.creds[2])
            del headers["host"]
            url = f"{self.endpoint.scheme}://{host}{quote(path, '/')}"
            if query:
                url += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(query.items()))
            data = body() if callable(body) else body
            try:
                return urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers),
                                              timeout=120)
            except urllib.error.HTTPError as e:
                detail = e.read().decode(errors="replace")
                code = (ET.fromstring(detail).findtext("Code") if detail.startswith("<") else None) or detail[:200]
                if e.code < 500 and e.code != 429:
                    raise RuntimeError(f"{method} {path}: HTTP {e.code} {code}") from None
                error = f"HTTP {e.code} {code}"
            except OSError as e:
                error = str(e)
            if attempt == 3:
                raise RuntimeError(f"{method} {path}: {error} (after 4 attempts)")
            time.sleep(2 ** attempt)

    def put(self, key, path):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        size = os.path.getsize(path)
        if size > 5 * 1024 ** 3:
            raise RuntimeError(f"{path} has {size} bytes: a single PUT takes 5 GiB at most")
        files = []

        def body():
            for f in files:
                f.close()
            files.append(open(path, "rb"))
            return files[-1]

        try:
            self.request("PUT", key, body=body, payload_sha256=digest.hexdigest(), length=size).read()
        finally:
            for f in files:
                f.close()

    def get(self, key, path):
        part = path + ".part"
        with self.request("GET", key) as r, open(part, "wb") as f:
            for chunk in iter(lambda: r.read(1 << 20), b""):
                f.write(chunk)
        os.replace(part, path)

    def list(self, prefix):
        keys, token = [], None
        ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            root = ET.fromstring(self.request("GET", query=query).read())
            keys += [c.findtext(f"{ns}Key") or c.findtext("Key") for c in root.iter() if c.tag.endswith("Contents")]
            token = root.findtext(f"{ns}NextContinuationToken") or root.findtext("NextContinuationToken")
            truncated = (root.findtext(f"{ns}IsTruncated") or root.findtext("IsTruncated") or "false") == "true"
            if not truncated or not token:
                return sorted(keys)

    def delete(self, key):
        self.request("DELETE", key).read()


def main(argv):
    usage = "usage: g8s-object-store put KEY FILE | get KEY FILE | list PREFIX | delete KEY"
    if len(argv) < 2:
        die(usage)
    command, args = argv[1], argv[2:]
    arity = {"put": 2, "get": 2, "list": 1, "delete": 1}
    if arity.get(command) != len(args):
        die(usage)
    missing = [k for k in ("S3_ENDPOINT", "S3_BUCKET", "S3_REGION") if not os.environ.get(k)]
    if missing:
        die(f"{', '.join(missing)} not set: is etcd.backup.objectStore on?")
    try:
        store = Store(os.environ)
        if command == "list":
            for key in store.list(args[0]):
                print(key)
        else:
            getattr(store, command)(*args)
    except RuntimeError as e:
        die(str(e))


if __name__ == "__main__":
    main(sys.argv)
`;

/**
 * What the scripts share: settings, etcdctl against the local member, and the tools from the
 * etcd image (copied once per image into /usr/local/lib/g8s/etcd-<digest>).
 */
const COMMON = String.raw`set -euo pipefail
. ${ETCD_BACKUP_ENV_PATH}
S3_BUCKET=$(printenv S3_BUCKET || true) # an env file from before etcd.backup.objectStore has none
MANIFESTS=${MANIFESTS_DIR}
HELD=${ETCD_HELD_MANIFESTS_DIR}
ETCD_PKI=${PKI_DIR}/etcd
say() { echo "$(basename "$0"): $*" >&2; }
die() { say "$*"; exit 1; }

# The etcd static pod's manifest: in place, or held aside by an interrupted restore.
etcd_manifest() {
  if [ -f "$MANIFESTS/etcd.yaml" ]; then echo "$MANIFESTS/etcd.yaml"
  elif [ -f "$HELD/etcd.yaml" ]; then echo "$HELD/etcd.yaml"
  else die "no etcd manifest in $MANIFESTS or $HELD: is this a master?"; fi
}
# A flag of the etcd command line in its manifest (- --name=master-0).
etcd_flag() { sed -n "s/^ *- --$1=//p" "$(etcd_manifest)" | head -n 1; }

# etcdctl and etcdutl of the member's own etcd image.
etcd_tools() {
  local image digest dir mnt
  image=$(sed -n 's/^ *image: *//p' "$(etcd_manifest)" | head -n 1)
  [ -n "$image" ] || die "no image in the etcd manifest"
  digest=$(ctr -n k8s.io images ls "name==$image" -q 2>/dev/null | head -n 1)
  [ -n "$digest" ] || die "etcd image $image is not on this node"
  dir=/usr/local/lib/g8s/etcd-$(printf '%s' "$image" | sha256sum | cut -c1-16)
  if [ ! -x "$dir/etcdutl" ]; then
    mnt=$(mktemp -d)
    ctr -n k8s.io images mount "$image" "$mnt" >/dev/null
    mkdir -p "$dir.new"
    for tool in etcdctl etcdutl; do
      if [ -x "$mnt/usr/local/bin/$tool" ]; then cp "$mnt/usr/local/bin/$tool" "$dir.new/$tool"
      else cp "$mnt/usr/local/bin/etcd" "$dir.new/$tool"; fi
    done
    ctr -n k8s.io images unmount --rm "$mnt" >/dev/null; rmdir "$mnt"
    rm -rf "$dir"; mv "$dir.new" "$dir"
  fi
  ETCDUTL="$dir/etcdutl"
  ETCDCTL_BIN="$dir/etcdctl"
}
etcdctl_() {
  "$ETCDCTL_BIN" --endpoints=https://127.0.0.1:2379 --cacert="$ETCD_PKI/ca.crt" \
    --cert="$ETCD_PKI/healthcheck-client.crt" --key="$ETCD_PKI/healthcheck-client.key" "$@"
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
`;

/** `g8s-etcd-snapshot`: one verified snapshot, its member list and checksum; the newest RETENTION kept. */
export const ETCD_SNAPSHOT_SCRIPT = String.raw`#!/bin/bash
# g8s-etcd-snapshot: a verified snapshot of this master's etcd member into $SNAPSHOT_DIR, with
# the member list and a checksum beside it; keeps the newest $RETENTION. Run by
# ${ETCD_SNAPSHOT_UNIT}.timer; safe to run by hand (systemctl start ${ETCD_SNAPSHOT_UNIT}).
${COMMON}
etcd_tools
mkdir -p "$SNAPSHOT_DIR"; chmod 0700 "$SNAPSHOT_DIR"
# A full etcd volume would stop etcd itself: room for two more of the database, or no snapshot.
db=$(etcdctl_ endpoint status -w json | json 'd[0]["Status"]["dbSize"]')
free=$(( $(stat -f -c '%a * %S' "$SNAPSHOT_DIR") ))
if [ "$free" -lt $(( 2 * db )) ]; then
  die "$free bytes free on $SNAPSHOT_DIR, the database has $db: no snapshot (lower etcd.backup.retention or grow the etcd volume)"
fi
name="$CLUSTER_ID-$(hostname -s)-$(date -u +%Y%m%dT%H%M%SZ).db"
part="$SNAPSHOT_DIR/.$name.part"
trap 'rm -f "$part" "$part".*' EXIT
etcdctl_ --command-timeout=10m snapshot save "$part" >/dev/null
# Reads the whole file and checks its hash: a torn snapshot fails here, not at a restore.
"$ETCDUTL" snapshot status "$part" -w json >"$part.status.json"
etcdctl_ member list -w json >"$part.members.json"
(cd "$SNAPSHOT_DIR" && sha256sum ".$name.part" | sed "s/\.$name\.part$/$name/" >"$part.sha256")
for side in status.json members.json sha256; do mv "$part.$side" "$SNAPSHOT_DIR/$name.$side"; done
mv "$part" "$SNAPSHOT_DIR/$name"
# The newest $RETENTION of this cluster's snapshots (the names sort by time).
ls -1 "$SNAPSHOT_DIR"/"$CLUSTER_ID"-*.db | sort | head -n -"$RETENTION" | while read -r old; do
  rm -f "$old" "$old".status.json "$old".members.json "$old".sha256
done
revision=$(json 'd["revision"]' <"$SNAPSHOT_DIR/$name.status.json")
bytes=$(stat -c %s "$SNAPSHOT_DIR/$name")
if [ -n "$S3_BUCKET" ]; then
  # Off the volume: the sidecars, then the snapshot (a listed .db has them). Not good until there.
  for f in ${SNAPSHOT_SIDECARS.map((x) => `"$name.${x}"`).join(" ")} "$name"; do
    ${OBJECT_STORE_CLIENT_PATH} put "$S3_PREFIX$f" "$SNAPSHOT_DIR/$f" ||
      die "$name stays on $SNAPSHOT_DIR, but its copy to $S3_ENDPOINT/$S3_BUCKET/$S3_PREFIX failed: not counted as good"
  done
  if [ "$S3_PRUNE" = yes ]; then
    stored=$(${OBJECT_STORE_CLIENT_PATH} list "$S3_PREFIX$CLUSTER_ID-$(hostname -s)-") ||
      { say "warning: could not list the object store: nothing pruned there"; stored=""; }
    printf '%s\n' "$stored" | { grep '\.db$' || true; } | sort | head -n -"$RETENTION" |
      while read -r old; do
        for f in "$old" ${SNAPSHOT_SIDECARS.map((x) => `"$old.${x}"`).join(" ")}; do
          ${OBJECT_STORE_CLIENT_PATH} delete "$f" || say "warning: could not delete $f from the object store"
        done
      done
  fi
  say "copied to $S3_ENDPOINT/$S3_BUCKET/$S3_PREFIX$name"
fi
good=$(date -u +%FT%TZ)
printf '{"snapshot":"%s","time":"%s","revision":%s,"bytes":%s}\n' "$name" "$good" "$revision" "$bytes" \
  >"$SNAPSHOT_DIR/.last-good.json"
mv "$SNAPSHOT_DIR/.last-good.json" "$SNAPSHOT_DIR/last-good.json"
say "$SNAPSHOT_DIR/$name: revision $revision, $bytes bytes"
# The time on this master's Node (the member's name is the node's), for whoever watches the
# cluster's API; the snapshot stands whether or not the API takes it.
node=$(etcd_flag name)
kubectl --kubeconfig ${ADMIN_KUBECONFIG_PATH} --request-timeout=20s annotate --overwrite node "$node" \
  "${ETCD_LAST_GOOD_ANNOTATION}=$good" >/dev/null ||
  say "warning: could not annotate node $node with ${ETCD_LAST_GOOD_ANNOTATION}"
`;

/** `g8s-etcd-fetch NAME`: a snapshot and its sidecars from the object store into SNAPSHOT_DIR, checked. */
export const ETCD_FETCH_SCRIPT = String.raw`#!/bin/bash
# g8s-etcd-fetch NAME: copies snapshot NAME (as g8s etcd snapshots lists it) with its checksum and
# member list from etcd.backup.objectStore into $SNAPSHOT_DIR, and checks it. Exit 3: no object
# store here; 4: the store has no NAME.
${COMMON}
[ $# -eq 1 ] || { echo "usage: $(basename "$0") NAME" >&2; exit 2; }
name=$(basename "$1")
[ -n "$S3_BUCKET" ] || { say "etcd.backup.objectStore is off for this cluster"; exit 3; }
listed=$(${OBJECT_STORE_CLIENT_PATH} list "$S3_PREFIX$name") || die "cannot list $S3_ENDPOINT/$S3_BUCKET/$S3_PREFIX"
grep -qxF "$S3_PREFIX$name" <<<"$listed" || { say "$S3_BUCKET/$S3_PREFIX has no $name"; exit 4; }
mkdir -p "$SNAPSHOT_DIR"; chmod 0700 "$SNAPSHOT_DIR"
for f in "$name.sha256" "$name.members.json" "$name"; do
  ${OBJECT_STORE_CLIENT_PATH} get "$S3_PREFIX$f" "$SNAPSHOT_DIR/.$f.fetch" || die "could not fetch $f"
done
(cd "$SNAPSHOT_DIR" && sed "s/ $name$/ .$name.fetch/" ".$name.sha256.fetch" | sha256sum --check --status) ||
  { rm -f "$SNAPSHOT_DIR/.$name".*fetch; die "$name from the object store does not match its checksum"; }
for f in "$name.sha256" "$name.members.json" "$name"; do mv "$SNAPSHOT_DIR/.$f.fetch" "$SNAPSHOT_DIR/$f"; done
say "$SNAPSHOT_DIR/$name: fetched from $S3_ENDPOINT/$S3_BUCKET/$S3_PREFIX, checksum good"
`;

/**
 * `g8s-etcd-restore SNAPSHOT [--initial-cluster NAME=URL,…]`: this master's member from the
 * snapshot. Run on every master with the same file at once (components/bootstrap/README.md, the
 * runbook): each stops its API server and etcd, restores into a new data directory (the old one
 * is kept), starts etcd, waits for the restored cluster's quorum, starts the API server and
 * restarts what caches the cluster's state.
 */
export const ETCD_RESTORE_SCRIPT = String.raw`#!/bin/bash
# g8s-etcd-restore SNAPSHOT [--initial-cluster NAME=PEER-URL,...]: replaces this master's etcd
# member with one restored from SNAPSHOT. With several masters: run it on every master, with the
# same snapshot file, at the same time (the runbook: components/bootstrap/README.md in g8s).
${COMMON}
[ $# -ge 1 ] || { echo "usage: $(basename "$0") SNAPSHOT [--initial-cluster NAME=PEER-URL,...]" >&2; exit 2; }
snapshot=$1; shift
initial_cluster=""
while [ $# -gt 0 ]; do
  case $1 in
    --initial-cluster) initial_cluster=$2; shift 2 ;;
    *) echo "$(basename "$0"): unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ ! -f "$snapshot" ] && [ -n "$S3_BUCKET" ]; then
  # Not on this master (a new volume): from the object store.
  ${ETCD_FETCH_SCRIPT_PATH} "$snapshot" || die "no snapshot $snapshot here, and none fetched from the object store"
  snapshot="$SNAPSHOT_DIR/$(basename "$snapshot")"
fi
[ -f "$snapshot" ] || die "no snapshot $snapshot"
if [ -f "$snapshot.sha256" ]; then
  (cd "$(dirname "$snapshot")" && sha256sum --check --status "$(basename "$snapshot").sha256") ||
    die "$snapshot does not match its checksum ($snapshot.sha256): not restoring from it"
fi
etcd_tools
name=$(etcd_flag name); data=$(etcd_flag data-dir); peer=$(etcd_flag initial-advertise-peer-urls)
[ -n "$name" ] && [ -n "$data" ] && [ -n "$peer" ] || die "the etcd manifest lacks --name, --data-dir or --initial-advertise-peer-urls"
if [ -z "$initial_cluster" ] && [ -f "$snapshot.members.json" ]; then
  # The members when the snapshot was taken: every master restores the same cluster.
  initial_cluster=$(json '",".join(m["name"] + "=" + m["peerURLs"][0] for m in d["members"] if m.get("name"))' <"$snapshot.members.json")
fi
if [ -z "$initial_cluster" ]; then initial_cluster="$name=$peer"; fi
case ",$initial_cluster," in *",$name=$peer,"*) ;; *) die "--initial-cluster $initial_cluster lacks this member ($name=$peer)" ;; esac
# Every master derives the same token from the same file.
token="g8s-restore-$(sha256sum "$snapshot" | cut -c1-16)"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
started=$(date +%s)

say "stopping kube-apiserver and etcd (manifests held in $HELD)"
mkdir -p "$HELD"
for pod in kube-apiserver etcd; do
  if [ -f "$MANIFESTS/$pod.yaml" ]; then mv "$MANIFESTS/$pod.yaml" "$HELD/$pod.yaml"; fi
done
for _ in $(seq 120); do
  [ -z "$(crictl ps -q --name '^(etcd|kube-apiserver)$' 2>/dev/null)" ] && break
  sleep 1
done
[ -z "$(crictl ps -q --name '^(etcd|kube-apiserver)$' 2>/dev/null)" ] || die "etcd or kube-apiserver still runs after 120 s"

say "restoring $snapshot as member $name of $initial_cluster"
rm -rf "$data.restoring"
"$ETCDUTL" snapshot restore "$snapshot" --name "$name" --initial-cluster "$initial_cluster" \
  --initial-cluster-token "$token" --initial-advertise-peer-urls "$peer" --data-dir "$data.restoring" \
  --bump-revision ${ETCD_RESTORE_BUMP_REVISION} --mark-compacted
if [ -d "$data" ]; then mv "$data" "$data.before-restore-$stamp"; fi
mv "$data.restoring" "$data"

say "starting etcd; waiting for the restored cluster's quorum"
mv "$HELD/etcd.yaml" "$MANIFESTS/etcd.yaml"
healthy=""
for _ in $(seq 300); do
  if etcdctl_ --command-timeout=3s endpoint health >/dev/null 2>&1; then healthy=yes; break; fi
  sleep 1
done
[ -n "$healthy" ] || die "etcd is not healthy 300 s after the restore (with several masters: has every master run the restore?); kube-apiserver's manifest is still held in $HELD"

say "starting kube-apiserver; restarting the controller manager, the scheduler and kubelet"
mv "$HELD/kube-apiserver.yaml" "$MANIFESTS/kube-apiserver.yaml"
for id in $(crictl ps -q --name '^kube-(controller-manager|scheduler)$' 2>/dev/null); do crictl stop "$id" >/dev/null || true; done
systemctl restart kubelet
say "restored from $snapshot in $(( $(date +%s) - started )) s; the data before it is in $data.before-restore-$stamp (remove it once the cluster is well)"
`;

/** The settings both scripts read. */
export function etcdBackupEnv(spec: ClusterSpec): string {
  const store = etcdObjectStore(spec);
  return [
    `CLUSTER_ID=${spec.id}`,
    `RETENTION=${spec.etcd.backup.retention}`,
    `SNAPSHOT_DIR=${ETCD_SNAPSHOT_DIR}`,
    // Empty S3_BUCKET: no object store. The client reads the S3_ variables from the environment.
    `S3_ENDPOINT=${store?.endpoint ?? ""}`,
    `S3_ADDRESSING=${store?.addressing ?? ""}`,
    `S3_BUCKET=${store?.bucket ?? ""}`,
    `S3_REGION=${store?.region ?? ""}`,
    `S3_PREFIX=${store?.prefix ?? ""}`,
    `S3_PRUNE=${store?.prune ? "yes" : "no"}`,
    // No directory: the instance role (AWS).
    `S3_CREDENTIALS_DIR=${store?.credentialsSecret === undefined ? "" : DEFAULT_SECRET_MOUNT_PATH}`,
    "export S3_ENDPOINT S3_ADDRESSING S3_BUCKET S3_REGION S3_CREDENTIALS_DIR",
    "",
  ].join("\n");
}

/** systemd's time span for a spec duration (`6h`, `1h30m`): the same units, spaced. */
function timeSpan(duration: string): string {
  return duration.replace(/(\d+)([a-z]+)/g, "$1$2 ").trim();
}

/** The snapshot's oneshot service and its timer (first run 15 min after boot, then every interval). */
export function etcdSnapshotUnits(spec: Pick<ClusterSpec, "etcd">): Record<string, IniSection[]> {
  const every = timeSpan(spec.etcd.backup.interval);
  return {
    [`${ETCD_SNAPSHOT_UNIT}.service`]: [
      {
        name: "Unit",
        entries: [
          ["Description", "g8s: a verified snapshot of this master's etcd member"],
          ["After", "kubelet.service containerd.service"],
        ],
      },
      {
        name: "Service",
        entries: [
          ["Type", "oneshot"],
          ["ExecStart", ETCD_SNAPSHOT_SCRIPT_PATH],
        ],
      },
    ],
    [`${ETCD_SNAPSHOT_UNIT}.timer`]: [
      { name: "Unit", entries: [["Description", `g8s: an etcd snapshot every ${every}`]] },
      {
        name: "Timer",
        entries: [
          ["OnBootSec", "15min"],
          ["OnUnitActiveSec", every],
          ["RandomizedDelaySec", "5min"],
        ],
      },
      { name: "Install", entries: [["WantedBy", "timers.target"]] },
    ],
  };
}

/** A master's files: both scripts always (a restore needs no timer), the env, and the units when backups are on. */
export function etcdBackupWriteFiles(spec: ClusterSpec): WriteFile[] {
  return [
    { path: ETCD_BACKUP_ENV_PATH, content: etcdBackupEnv(spec), permissions: "0644" },
    { path: ETCD_SNAPSHOT_SCRIPT_PATH, content: ETCD_SNAPSHOT_SCRIPT, permissions: "0755" },
    { path: ETCD_RESTORE_SCRIPT_PATH, content: ETCD_RESTORE_SCRIPT, permissions: "0755" },
    { path: ETCD_FETCH_SCRIPT_PATH, content: ETCD_FETCH_SCRIPT, permissions: "0755" },
    { path: OBJECT_STORE_CLIENT_PATH, content: OBJECT_STORE_CLIENT, permissions: "0755" },
    ...(spec.etcd.backup.enabled
      ? Object.entries(etcdSnapshotUnits(spec)).map(([unit, sections]) => ({
          path: `/etc/systemd/system/${unit}`,
          content: renderIni(sections),
          permissions: "0644",
        }))
      : []),
  ];
}

/** The units a master enables once kubeadm has made its member. */
export function etcdBackupUnitNames(spec: Pick<ClusterSpec, "etcd">): string[] {
  return spec.etcd.backup.enabled ? [`${ETCD_SNAPSHOT_UNIT}.timer`] : [];
}
