#!/usr/bin/env bash
# Proves that containerd takes the node images: starts a containerd of its own (root,
# state and sockets in a temporary folder, nothing shared with a containerd of the
# machine), imports every archive of .tools/share/node-images/images.json with
# `ctr -n k8s.io images import`, checks that each image is listed under its reference
# with the image ID images.json gives, then runs a few of them with runc: pause -v,
# coredns -version, flanneld --version, and iptables/nft (the Debian layer) in kube-proxy,
# also writing and listing rules in the container's own network namespace.
# Stops containerd by its PID and removes the folder.
#
# Usage: bash tools/images/check.sh      (needs Debian's containerd and runc, as root)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IMAGES="$REPO/.tools/share/node-images"
MANIFEST="$IMAGES/images.json"
T0="$(date +%s)"
log() { printf '[images-check +%ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() {
  printf '[images-check] ERROR: %s\n' "$*" >&2
  exit 1
}

[ -f "$MANIFEST" ] || die "$MANIFEST is missing: run 'npm run toolchain' first"
for c in containerd ctr runc node; do
  command -v "$c" >/dev/null || die "$c is needed (apt-get install containerd runc; node from the repo's setup)"
done
[ "$(id -u)" = 0 ] || die "containerd needs root"

DIR="$(mktemp -d /tmp/g8s-images-check.XXXXXX)"
PID=""
stop() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID"
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  fi
  # Mounts a killed containerd may leave behind, then the folder.
  grep -o " $DIR/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$DIR"
}
trap stop EXIT

SOCK="$DIR/containerd.sock"
cat >"$DIR/config.toml" <<EOF
version = 2
root = "$DIR/root"
state = "$DIR/state"
# Only images and tasks: no CRI server (it would look for CNI configuration).
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = "$DIR/debug.sock"
EOF
containerd --config "$DIR/config.toml" --root "$DIR/root" --state "$DIR/state" --address "$SOCK" \
  >"$DIR/containerd.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
  ctr -a "$SOCK" version >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || die "containerd exited: $(tail -n 20 "$DIR/containerd.log")"
  sleep 0.1
done
log "containerd $(containerd --version | awk '{print $3}') running as PID $PID with root, state and socket in $DIR"

ctr_() { ctr -a "$SOCK" -n k8s.io "$@"; }
SNAPSHOTTER=overlayfs
while IFS=$'\t' read -r ref file id; do
  start="$(date +%s)"
  ctr_ images import --snapshotter "$SNAPSHOTTER" "$IMAGES/$file" >"$DIR/import.log" 2>&1 ||
    die "ctr images import $file: $(cat "$DIR/import.log")"
  # The image ID containerd computed must be the one images.json gives.
  got="$(ctr_ images ls | awk -v r="$ref" '$1 == r { print $3 }')"
  [ -n "$got" ] || die "$ref is not listed after importing $file: $(ctr_ images ls -q)"
  conf="$(ctr_ content get "$got" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).config.digest))')"
  [ "$conf" = "$id" ] || die "$ref: containerd has image ID $conf, images.json says $id"
  log "imported $file as $ref in $(($(date +%s) - start)) s (image ID $id)"
done < <(node -e '
  for (const i of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).images)
    console.log([i.ref, i.file, i.imageId].join("\t"));
' "$MANIFEST")
ctr_ images ls | awk 'NR > 1 { print "  " $1, $4 " " $5, $6 }'

# run <image ref> <command...>: runs the command in a new container of the image, with runc.
# With RUN_FLAGS (e.g. --privileged) passed to ctr run. The container has a network
# namespace of its own, so rules it writes never reach the machine's.
run() {
  local ref="$1" id="check-$RANDOM"
  shift
  # shellcheck disable=SC2086
  ctr_ run --rm ${RUN_FLAGS:-} --snapshotter "$SNAPSHOTTER" "$ref" "$id" "$@" 2>&1
}
ref_of() { node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).images.find(i => i.file === process.argv[2] + ".tar").ref)' "$MANIFEST" "$1"; }
check_run() { # <image file name> <expected text> <command...>
  local name="$1" want="$2" ref out
  shift 2
  ref="$(ref_of "$name")"
  out="$(run "$ref" "$@")" || die "$ref: '$*' failed: $out"
  grep -qF -- "$want" <<<"$out" || die "$ref: '$*' printed '$out', expected '$want'"
  log "ran $ref: $* -> $(head -n1 <<<"$out")"
}
check_run pause "pause.c v" /pause -v
check_run coredns "CoreDNS-" /coredns -version
check_run flannel "v0." /opt/bin/flanneld --version
check_run kube-proxy "nf_tables" iptables --version
check_run kube-proxy "nftables v" nft --version
# kube-proxy's modes write rules with these tools: both work in the image (in the
# container's own network namespace).
RUN_FLAGS=--privileged check_run kube-proxy "table ip g8s-check" nft "add table ip g8s-check; list tables"
RUN_FLAGS=--privileged check_run kube-proxy "Chain INPUT (policy ACCEPT)" iptables -w -L -n
check_run kube-proxy "Kubernetes v" kube-proxy --version
check_run etcd "etcd Version:" etcd --version
log "all $(ctr_ images ls -q | wc -l) images imported and run; stopping containerd (PID $PID)"
