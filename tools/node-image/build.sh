#!/usr/bin/env bash
# Builds the g8s node image (tools/node-image/README.md) into <repo>/.tools/share/node-image:
#
#   rootfs/         the root file system, for system containers (nspawn-node.sh)
#   disk.qcow2      the same tree as an ext4 file system without partition table (/dev/vda)
#   vmlinuz         the image's kernel (linux-image-amd64) and its initrd, for QEMU's
#   initrd.img      direct kernel boot (qemu-node.sh)
#   packages.lock   every installed Debian package with its version
#   images.lock     the image references in the image's containerd
#   image.env       what was built: suite, input hash, kernel, sizes, g8s slots filled
#
# Debian bookworm from debootstrap (--variant=minbase, the packages of packages.txt and
# their dependencies), then overlay/ copied on top, then g8s's own files when they exist:
# .tools/bin/{kubelet,kubeadm,kubectl,crictl} -> /usr/local/bin, the next minor's kubelet and
# kubeadm (.tools/share/kubernetes-next/<v>/) -> /opt/g8s/kubernetes/<v>/ (switched to by
# overlay/usr/local/sbin/g8s-kubernetes), .tools/share/cni/bin/* -> /opt/cni/bin, and every .tools/share/node-images/*.tar imported into the image's
# containerd (namespace k8s.io) at build time, so a node pulls and imports nothing.
#
# Usage: bash tools/node-image/build.sh        (root; Debian with debootstrap, e2fsprogs >= 1.43
#                                               and qemu-utils; `--install-deps` apt-installs them)
#        bash tools/node-image/build.sh --check  (exit 0 when the image is built and up to date)
# Rebuilt only when its inputs change: this script, packages.txt, overlay/, the suite and
# mirror, and the sha256 of every g8s file copied in; the hash is kept in
# .tools/stamps/node-image. FORCE=1 rebuilds anyway. Downloaded .debs are kept in
# .tools/cache/node-image (NODE_IMAGE_NO_CACHE=1 ignores it, for a cold build).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# Physical path (.tools may be a symlink into another worktree): mount points are
# compared against it.
mkdir -p "$REPO/.tools"
TOOLS_OUT="$(readlink -f "$REPO/.tools")"
OUT="$TOOLS_OUT/share/node-image"
STAMP="$TOOLS_OUT/stamps/node-image"
CACHE="$TOOLS_OUT/cache/node-image"
SUITE=bookworm
MIRROR="${G8S_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Free space left in the ext4 file system of disk.qcow2; a VM's overlay disk is larger
# and cloud-init's resize_rootfs grows the file system to it at first boot.
DISK_HEADROOM_MIB=1024
DEPS=(debootstrap e2fsprogs qemu-utils)

T0="$(date +%s)"
log() { printf '[node-image %s +%ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - T0))" "$*"; }
die() { printf '[node-image %s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

CHECK=0
case "${1:-}" in
--install-deps)
  apt-get install -y --no-install-recommends "${DEPS[@]}"
  shift
  ;;
--check) CHECK=1 && shift ;;
esac
[ "$#" -eq 0 ] || die "unknown argument '$1' (usage: build.sh [--install-deps | --check])"

# Package names of packages.txt: comments and blank lines dropped.
package_list() { sed -e 's/#.*//' -e 's/[[:space:]]//g' "$HERE/packages.txt" | grep -v '^$'; }

# g8s's own files copied into the image, as "<source> <target in rootfs>" lines; only
# those that exist (they come from other toolchain steps and may not be built yet).
G8S_BINARIES=(kubelet kubeadm kubectl crictl)
g8s_files() {
  local b f
  for b in "${G8S_BINARIES[@]}"; do
    [ ! -f "$TOOLS_OUT/bin/$b" ] || echo "$TOOLS_OUT/bin/$b /usr/local/bin/$b"
  done
  # The next minor's kubelet and kubeadm beside them, for upgrades (g8s-kubernetes).
  for f in "$TOOLS_OUT"/share/kubernetes-next/v*/kubelet "$TOOLS_OUT"/share/kubernetes-next/v*/kubeadm; do
    [ ! -f "$f" ] || echo "$f /opt/g8s/kubernetes/$(basename "$(dirname "$f")")/$(basename "$f")"
  done
  # CNI plugins where kubelet's runtime looks for them (what Debian's kubernetes-cni held).
  for f in "$TOOLS_OUT"/share/cni/bin/*; do
    [ ! -f "$f" ] || echo "$f /opt/cni/bin/$(basename "$f")"
  done
}
# The image archives imported into containerd at build time.
image_archives() {
  local f
  for f in "$TOOLS_OUT"/share/node-images/*.tar; do [ ! -f "$f" ] || echo "$f"; done
}

# sha256 of a (large) file, remembered by path, size and mtime in $CACHE/sums, so the
# up-to-date check reads ~0.6 GB of binaries and archives only when they changed.
sum_of() {
  local key sum memo="$CACHE/sums"
  key="$(stat -c '%n %s %Y' "$1")"
  sum="$(awk -v k="$key" 'substr($0, 1, length(k)) == k && length($0) == length(k) + 65 { s = substr($0, length(k) + 2) } END { print s }' "$memo" 2>/dev/null || true)"
  if [ -z "$sum" ]; then
    sum="$(sha256sum <"$1" | cut -d' ' -f1)"
    mkdir -p "$CACHE" && echo "$key $sum" >>"$memo"
  fi
  echo "$sum"
}

# sha256 of every input: a change to any of them rebuilds the image.
input_hash() {
  {
    echo "suite=$SUITE mirror=$MIRROR headroom=$DISK_HEADROOM_MIB"
    echo "== build.sh" && cat "$HERE/build.sh"
    echo "== packages" && package_list
    (cd "$HERE/overlay" && find . \( -type f -o -type l \) -printf '%p %m %l\n' | LC_ALL=C sort |
      while read -r p _; do
        echo "== overlay $p $(stat -c %a "$p")"
        if [ -L "$p" ]; then readlink "$p"; else cat "$p"; fi
      done)
    local src dst
    g8s_files | while read -r src dst; do echo "== $dst $(sum_of "$src")"; done
    image_archives | while read -r src; do echo "== image $(basename "$src") $(sum_of "$src")"; done
  } | sha256sum | cut -d' ' -f1
}

HASH="$(input_hash)"
OUTPUTS=("$OUT/rootfs/usr/bin/containerd" "$OUT/disk.qcow2" "$OUT/vmlinuz" "$OUT/initrd.img" "$OUT/image.env")
up_to_date() {
  [ "${FORCE:-0}" != 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] || return 1
  local f
  for f in "${OUTPUTS[@]}"; do [ -e "$f" ] || return 1; done
}
if [ "$CHECK" = 1 ]; then up_to_date; exit; fi
if up_to_date; then
  log "up to date ($OUT)"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "debootstrap and the image's file ownership need root: run as root"
for c in debootstrap mkfs.ext4 qemu-img; do
  command -v "$c" >/dev/null ||
    die "'$c' is missing: apt-get install ${DEPS[*]} (or run with --install-deps)"
done

mkdir -p "$TOOLS_OUT/share" "$TOOLS_OUT/stamps" "$CACHE"
# Staged next to the result, moved into place when complete: a failed build never leaves
# half an image, and nodes still running from the old one keep their files.
STAGING="$(mktemp -d "$TOOLS_OUT/share/.node-image.XXXXXX")"
ROOTFS="$STAGING/rootfs"
cleanup() {
  [ -n "$STAGING" ] || return 0
  # debootstrap mounts /proc and /sys in the target; never leave them behind.
  local m
  for m in $(findmnt -rn -o TARGET | grep -F "$STAGING/" | sort -r); do umount "$m" || umount -l "$m" || true; done
  if findmnt -rn -o TARGET | grep -qF "$STAGING/"; then
    echo "node-image: $STAGING still has mounts; left in place" >&2
  else
    rm -rf "$STAGING"
  fi
}
trap cleanup EXIT

# --- debootstrap + apt ------------------------------------------------------------
# debootstrap lays down minbase; apt (in the new root) installs packages.txt with real
# dependency resolution (debootstrap's own --include resolver trips over python3's
# alternatives). .debs are kept in $CACHE and hard-linked in and out.
log "debootstrap $SUITE (minbase) from $MIRROR"
start="$(date +%s)"
cache_args=(--cache-dir="$CACHE/debootstrap")
[ "${NODE_IMAGE_NO_CACHE:-0}" != 1 ] || cache_args=()
mkdir -p "$CACHE/debootstrap" "$CACHE/apt"
debootstrap --variant=minbase --merged-usr --components=main "${cache_args[@]}" \
  "$SUITE" "$ROOTFS" "$MIRROR" >"$STAGING/debootstrap.log" 2>&1 || {
  tail -n 20 "$STAGING/debootstrap.log" "$ROOTFS/debootstrap/debootstrap.log" >&2 || true
  die "debootstrap failed (above: the end of its logs)"
}
log "debootstrap: $(($(date +%s) - start)) s"

in_root() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"; }
start="$(date +%s)"
echo "deb $MIRROR $SUITE main" >"$ROOTFS/etc/apt/sources.list"
# No service may start inside the build root.
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOTFS/proc"
[ "${NODE_IMAGE_NO_CACHE:-0}" = 1 ] || find "$CACHE/apt" -name '*.deb' -exec cp -l -n -t "$ROOTFS/var/cache/apt/archives/" {} +
in_root apt-get -q update >"$STAGING/apt.log" 2>&1 || { tail -n 20 "$STAGING/apt.log" >&2; die "apt-get update failed"; }
# shellcheck disable=SC2046 # one word per package
in_root env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends \
  $(package_list) >>"$STAGING/apt.log" 2>&1 ||
  { tail -n 30 "$STAGING/apt.log" >&2; die "apt-get install failed (above: the end of its log)"; }
find "$ROOTFS/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec cp -l -n -t "$CACHE/apt/" {} +
# The generic kernel's drivers for hardware no node has (sound, graphics, cameras, radios,
# InfiniBand): ~40 % of its modules. The initrd is already built; depmod redoes the index.
kmods="$(ls -d "$ROOTFS"/lib/modules/*/kernel)"
rm -rf "$kmods"/sound "$kmods"/drivers/{gpu,media,bluetooth,infiniband,staging,net/wireless}
in_root depmod -a "$(basename "$(dirname "$kmods")")"
umount "$ROOTFS/proc"
rm -f "$ROOTFS/usr/sbin/policy-rc.d"
log "apt: $(grep -c '^Setting up' "$STAGING/apt.log") packages set up in $(($(date +%s) - start)) s"

# --- configuration -----------------------------------------------------------------

cp -a "$HERE/overlay/." "$ROOTFS/"
chown -R root:root "$ROOTFS/etc/systemd/system" "$ROOTFS/usr/local" "$ROOTFS/etc/cloud/cloud.cfg.d"

installed=()
while read -r src dst; do
  install -D -m 0755 "$src" "$ROOTFS$dst"
  installed+=("$dst")
done < <(g8s_files)
log "g8s files: ${installed[*]:-none yet (kubelet, kubeadm, kubectl, crictl, CNI plugins are added once built)}"

# --- images into containerd ---------------------------------------------------------
# The image's own containerd, run in the new root with a private mount namespace (its
# overlay mounts and /proc vanish with it) and without the CRI plugin, imports and
# unpacks every archive into /var/lib/containerd (namespace k8s.io, the one kubelet's
# CRI uses). A node then starts with its images in place: no import, no pull.
imported=()
mapfile -t archives < <(image_archives)
if [ "${#archives[@]}" -gt 0 ]; then
  start="$(date +%s)"
  b=/run/g8s-build
  mkdir -p "$ROOTFS$b/archives"
  printf '%s\n' 'version = 2' 'root = "/var/lib/containerd"' "state = \"$b/state\"" \
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]' '[grpc]' "  address = \"$b/containerd.sock\"" \
    >"$ROOTFS$b/config.toml"
  for a in "${archives[@]}"; do ln "$a" "$ROOTFS$b/archives/" 2>/dev/null || cp "$a" "$ROOTFS$b/archives/"; done
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare --mount --propagation private sh -c 'mount -t proc proc "$1/proc" && exec chroot "$1" containerd --config "$2/config.toml"' \
    g8s-build "$ROOTFS" "$b" >"$STAGING/containerd.log" 2>&1 &
  ctrd=$!
  ctr_b() { in_root ctr --address "$b/containerd.sock" "$@"; }
  for _ in $(seq 100); do ctr_b version >/dev/null 2>&1 && break; sleep 0.2; done
  ctr_b version >/dev/null 2>&1 || { kill "$ctrd"; tail -n 20 "$STAGING/containerd.log" >&2; die "the image's containerd did not start"; }
  for a in "${archives[@]}"; do
    ctr_b --namespace k8s.io images import "$b/archives/$(basename "$a")" >>"$STAGING/containerd.log" 2>&1 ||
      { kill "$ctrd"; tail -n 20 "$STAGING/containerd.log" >&2; die "importing $(basename "$a") failed"; }
    imported+=("$(basename "$a" .tar)")
  done
  ctr_b --namespace k8s.io images ls -q | grep -v '^sha256:' >"$STAGING/images.lock" || true
  kill -TERM "$ctrd"
  wait "$ctrd" || true
  rm -rf "${ROOTFS:?}$b"
  log "images: ${#archives[@]} archives imported into containerd in $(($(date +%s) - start)) s: $(paste -sd' ' "$STAGING/images.lock")"
fi

# Services: containerd and the image import always; in a system container, writable
# cgroup controllers (g8s-container-cgroups); kubelet is enabled as kubeadm expects
# (it waits for kubeadm's config, restarting every 10 s); networkd applies cloud-init's
# rendered network config and the DHCP fallback.
in_root systemctl enable containerd.service g8s-import-images.service kubelet.service \
  g8s-container-cgroups.service g8s-network-no-ra.service g8s-dhcp-resolv-conf.service systemd-networkd.service >/dev/null 2>&1
# Nothing on a node updates itself or scrubs at random times.
in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
  e2scrub_reap.service fstrim.timer >/dev/null 2>&1 || true
# kubelet refuses to run with swap on; a node image has no swap anyway. Root is mounted
# read-write by the kernel command line (VM) or by nspawn: no fstab entry is needed.
: >"$ROOTFS/etc/fstab"
# Every node gets its own machine-id at first boot (an empty file means "generate one"),
# and its hostname from cloud-init's meta-data.
: >"$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"
echo localhost >"$ROOTFS/etc/hostname"
# The build host's resolver means nothing on a node; the seed's user-data writes its own.
rm -f "$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/resolv.conf"
in_root apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old
in_root dpkg-query -W -f '${Package} ${Version}\n' | LC_ALL=C sort >"$STAGING/packages.lock"

# --- kernel and initrd for QEMU -----------------------------------------------------
kernel="$(cd "$ROOTFS/boot" && ls vmlinuz-* | LC_ALL=C sort -V | tail -n1)"
[ -n "$kernel" ] || die "no kernel in $ROOTFS/boot (is linux-image-amd64 in packages.txt?)"
kver="${kernel#vmlinuz-}"
[ -f "$ROOTFS/boot/initrd.img-$kver" ] || die "no initrd for kernel $kver in $ROOTFS/boot"
cp "$ROOTFS/boot/vmlinuz-$kver" "$STAGING/vmlinuz"
cp "$ROOTFS/boot/initrd.img-$kver" "$STAGING/initrd.img"

{
  echo "NODE_IMAGE_SUITE=$SUITE"
  echo "NODE_IMAGE_INPUT_HASH=$HASH"
  echo "NODE_IMAGE_KERNEL=$kver"
  echo "NODE_IMAGE_G8S_FILES=\"${installed[*]:-}\""
  echo "NODE_IMAGE_IMAGES=\"${imported[*]:-}\""
} >"$ROOTFS/etc/g8s-node-image"

# --- disk ----------------------------------------------------------------------------
# The root file system alone, labelled g8s-root, written by mkfs from the tree (no loop
# device, no mount). qemu-node.sh boots it with root=/dev/vda.
used_mib="$(du -sm "$ROOTFS" | cut -f1)"
disk_mib=$(((used_mib * 11 / 10 + DISK_HEADROOM_MIB + 63) / 64 * 64))
start="$(date +%s)"
mkfs.ext4 -q -F -L g8s-root -d "$ROOTFS" -E root_owner=0:0 "$STAGING/disk.raw" "${disk_mib}M" >/dev/null
qemu-img convert -f raw -O qcow2 "$STAGING/disk.raw" "$STAGING/disk.qcow2"
rm -f "$STAGING/disk.raw"
log "disk: ${disk_mib} MiB ext4 in $(($(date +%s) - start)) s"

rootfs_mib="$(du -sm "$ROOTFS" | cut -f1)"
qcow_mib="$(($(stat -c %s "$STAGING/disk.qcow2") / 1048576))"
{
  cat "$ROOTFS/etc/g8s-node-image"
  echo "NODE_IMAGE_ROOTFS_MIB=$rootfs_mib"
  echo "NODE_IMAGE_DISK_MIB=$disk_mib"
  echo "NODE_IMAGE_QCOW2_MIB=$qcow_mib"
} >"$STAGING/image.env"

# --- into place ---------------------------------------------------------------------
rm -f "$STAGING/debootstrap.log" "$STAGING/apt.log" "$STAGING/containerd.log"
old=""
if [ -e "$OUT" ]; then
  old="$(mktemp -d "$TOOLS_OUT/share/.node-image-old.XXXXXX")"
  mv "$OUT" "$old/"
fi
mv "$STAGING" "$OUT"
chmod 0755 "$OUT"
STAGING=""
[ -z "$old" ] || rm -rf "$old"
echo "$HASH" >"$STAMP"
log "done: rootfs ${rootfs_mib} MiB, disk.qcow2 ${qcow_mib} MiB (${disk_mib} MiB ext4), kernel $kver in $OUT"
