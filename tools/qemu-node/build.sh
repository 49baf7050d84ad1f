#!/usr/bin/env bash
# Builds g8s/qemu-node, the KVM platform's QEMU pod image, as an OCI image archive:
#
#   .tools/share/qemu-node/qemu-node.tar   docker-archive (`ctr images import`, `docker load`)
#   .tools/share/qemu-node/images.json     its reference, sha256 and image digest
#
# Layers: Debian bookworm (debootstrap minbase + QEMU, qemu-utils, iproute2, dnsmasq-base,
# genisoimage, no Recommends); the node image's disk, kernel and initrd
# (.tools/share/node-image, at /usr/share/g8s/node-image); the entrypoint with lib.sh (at
# /opt/g8s/tools/...). Packed by tools/images (go-containerregistry). The tag is the
# platform's default image (DEFAULT_KVM_IMAGE in components/spec/defaults.ts).
#
# Usage: bash tools/qemu-node/build.sh [--check]   (root: debootstrap; `bash tools/build.sh
# qemu-node` runs it after the node image). Rebuilt only when an input changed (this script,
# the entrypoint, lib.sh, the packer's sources, the node image's stamp, the tag; FORCE=1
# anyway); --check exits 0 when the archive is built and up to date.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TOOLS_OUT="$(readlink -f "$REPO/.tools")"
OUT="$TOOLS_OUT/share/qemu-node"
STAMP="$TOOLS_OUT/stamps/qemu-node"
NODE_IMAGE="$TOOLS_OUT/share/node-image"
CACHE="$TOOLS_OUT/cache/qemu-node"
SUITE=bookworm
MIRROR="${G8S_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES=qemu-system-x86,qemu-utils,iproute2,dnsmasq-base,genisoimage
# Image config and layer times: fixed, so the same inputs give the same digests.
CREATED=2026-01-01T00:00:00Z
IMAGE_ROOT=/opt/g8s/tools

T0="$(date +%s)"
log() { printf '[qemu-node %s +%ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - T0))" "$*"; }
die() { printf '[qemu-node %s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

CHECK=0
case "${1:-}" in
--check) CHECK=1 ;;
"") ;;
*) die "unknown argument '$1' (usage: build.sh [--check])" ;;
esac

TAG="$(sed -n 's/^export const DEFAULT_KVM_IMAGE = "\(g8s\/qemu-node:[^"]*\)";$/\1/p' "$REPO/components/spec/defaults.ts")"
[ -n "$TAG" ] || die "no DEFAULT_KVM_IMAGE = \"g8s/qemu-node:<version>\" in components/spec/defaults.ts"
# The archive names the image in full, as a container runtime expands the short name of a pod
# spec (the packer refuses short names): kubelet finds docker.io/g8s/qemu-node:<version> imported.
REF="docker.io/$TAG"

input_hash() {
  {
    echo "suite=$SUITE mirror=$MIRROR packages=$PACKAGES tag=$TAG created=$CREATED"
    cat "$HERE/build.sh" "$HERE/entrypoint.sh" "$REPO/tools/node-image/lib.sh"
    cat "$REPO"/tools/images/*.go "$REPO/tools/images/go.mod" "$REPO/tools/images/go.sum"
    echo "node-image=$(cat "$TOOLS_OUT/stamps/node-image" 2>/dev/null || true)"
  } | sha256sum | cut -d' ' -f1
}
HASH="$(input_hash)"
if [ "${FORCE:-0}" != 1 ] && [ -f "$OUT/qemu-node.tar" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$HASH" ]; then
  [ "$CHECK" = 1 ] || log "up to date ($OUT/qemu-node.tar, $TAG)"
  exit 0
fi
[ "$CHECK" = 0 ] || exit 1

[ "$(id -u)" = 0 ] || die "debootstrap needs root: run as root"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
for f in disk.qcow2 vmlinuz initrd.img; do
  [ -f "$NODE_IMAGE/$f" ] || die "$NODE_IMAGE/$f is missing: build the node image first (bash tools/build.sh node-image)"
done
bash "$REPO/tools/node-image/build.sh" --check ||
  die "the node image is out of date: build it first (bash tools/build.sh node-image)"
GO="$(command -v go || echo /usr/local/go/bin/go)"
[ -x "$GO" ] || die "the Go toolchain is required to build the packer (tools/images)"

mkdir -p "$TOOLS_OUT/share" "$TOOLS_OUT/stamps" "$CACHE"
STAGING="$(mktemp -d "$TOOLS_OUT/share/.qemu-node.XXXXXX")"
cleanup() {
  local m
  for m in $(findmnt -rn -o TARGET | grep -F "$STAGING/" | sort -r); do umount "$m" || umount -l "$m" || true; done
  findmnt -rn -o TARGET | grep -qF "$STAGING/" || rm -rf "$STAGING"
}
trap cleanup EXIT

# --- Debian with QEMU ---------------------------------------------------------------
ROOTFS="$STAGING/rootfs"
start="$(date +%s)"
debootstrap --variant=minbase --merged-usr --components=main --include="$PACKAGES" --cache-dir="$CACHE" \
  "$SUITE" "$ROOTFS" "$MIRROR" >"$STAGING/debootstrap.log" 2>&1 || {
  tail -n 20 "$STAGING/debootstrap.log" "$ROOTFS/debootstrap/debootstrap.log" >&2 || true
  die "debootstrap failed (above: the end of its logs)"
}
chroot "$ROOTFS" dpkg-query -W -f '${Package} ${Version}\n' | LC_ALL=C sort >"$STAGING/packages.lock"
# What a pod never reads: documentation, translations, apt's lists and caches.
rm -rf "$ROOTFS"/usr/share/{doc,man,info,locale} "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* \
  "$ROOTFS"/var/log/*.log "$ROOTFS/debootstrap"
: >"$ROOTFS/etc/resolv.conf"
# Device nodes (debootstrap's /dev), FIFOs and sockets: a container runtime makes its own.
find "$ROOTFS" -xdev \( -type c -o -type b -o -type p -o -type s \) -delete
log "debootstrap with $PACKAGES: $(wc -l <"$STAGING/packages.lock") packages, $(du -sm "$ROOTFS" | cut -f1) MiB in $(($(date +%s) - start)) s"

# --- pack --------------------------------------------------------------------------------
start="$(date +%s)"
(cd "$REPO/tools/images" && GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 \
  "$GO" build -trimpath -o "$STAGING/images" .)
cat >"$STAGING/spec.json" <<SPEC
{
  "created": "$CREATED",
  "layers": {
    "debian": { "dir": "$ROOTFS" },
    "node-image": { "files": [
      { "path": "/usr/share/g8s/node-image/disk.qcow2", "src": "$NODE_IMAGE/disk.qcow2", "mode": "0644" },
      { "path": "/usr/share/g8s/node-image/vmlinuz", "src": "$NODE_IMAGE/vmlinuz", "mode": "0644" },
      { "path": "/usr/share/g8s/node-image/initrd.img", "src": "$NODE_IMAGE/initrd.img", "mode": "0644" },
      { "path": "/usr/share/g8s/node-image/image.env", "src": "$NODE_IMAGE/image.env", "mode": "0644" }
    ] },
    "entrypoint": { "files": [
      { "path": "$IMAGE_ROOT/qemu-node/entrypoint.sh", "src": "$HERE/entrypoint.sh", "mode": "0755" },
      { "path": "$IMAGE_ROOT/node-image/lib.sh", "src": "$REPO/tools/node-image/lib.sh", "mode": "0644" }
    ] }
  },
  "images": [
    { "ref": "$REF", "file": "qemu-node.tar", "layers": ["debian", "node-image", "entrypoint"],
      "entrypoint": ["$IMAGE_ROOT/qemu-node/entrypoint.sh"],
      "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] }
  ]
}
SPEC
mkdir "$STAGING/out"
"$STAGING/images" -spec "$STAGING/spec.json" -out "$STAGING/out" >"$STAGING/pack.log" 2>&1 ||
  { tail -n 20 "$STAGING/pack.log" >&2; die "packing the image failed"; }
cp "$STAGING/packages.lock" "$STAGING/out/"
log "packed $REF in $(($(date +%s) - start)) s"

rm -rf "$OUT"
mv "$STAGING/out" "$OUT"
echo "$HASH" >"$STAMP"
log "done: $OUT/qemu-node.tar $(du -m "$OUT/qemu-node.tar" | cut -f1) MiB ($REF)"
