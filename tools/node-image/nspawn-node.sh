#!/usr/bin/env bash
# Runs a g8s node image as a system container under systemd-nspawn (README.md, "System
# containers"): its own systemd as PID 1, cloud-init from a NoCloud seed directory,
# containerd and kubelet inside, one veth on a bridge of the host.
#
#   nspawn-node.sh bridge-up   --bridge BR --address CIDR      create BR with the host's address on it
#   nspawn-node.sh bridge-down --bridge BR
#   nspawn-node.sh up   --name NAME --state-dir DIR --seed SEED [--bridge BR] [--image DIR]
#                       [--machine ID]                          unique on this host (default NAME)
#                       [--disk-gib N]                          the node's own disk (see below)
#                       [--bind-ro SRC:DST]...                 more read-only mounts (files, /etc/hosts)
#   nspawn-node.sh down --state-dir DIR [--purge]
#   nspawn-node.sh exec --state-dir DIR -- COMMAND...          run COMMAND in the node
#   nspawn-node.sh wait --state-dir DIR --for STAGE [--timeout S]
#
# `up` copies the image's rootfs to DIR/rootfs (kept by `down`, removed by `down --purge`,
# so a second `up` boots the same node again), puts the node in cgroups of its own
# (DIR/cgroups lists them), starts systemd-nspawn in the background and returns;
# DIR/nspawn.pid is its PID, DIR/console.log the console. SEED holds meta-data, user-data
# and optionally network-config (cloud-init NoCloud), mounted read-only at
# /var/lib/cloud/seed/nocloud. `wait` STAGEs: booted (multi-user.target reached),
# cloud-init (cloud-init finished), containerd (containerd answers).
# Needs root, systemd-container, and a host whose cgroups are v1 or hybrid (see README).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DEFAULT_IMAGE="$REPO/.tools/share/node-image"
# The hierarchies a node gets a cgroup of its own in: the v1 controllers, name=systemd
# ("systemd") and, on a hybrid host, the v2 one at /sys/fs/cgroup/unified ("unified"),
# which nspawn treats as the systemd hierarchy there.
CONTROLLERS=(unified systemd cpu cpuacct cpuset memory devices freezer blkio pids net_cls net_prio hugetlb perf_event)
STOP_TIMEOUT=60

PROG=nspawn-node
# shellcheck source=lib.sh
. "$HERE/lib.sh"

CMD="${1:-}"
[ -n "$CMD" ] || usage
shift
DISK_GIB=0 NAME="" MACHINE="" STATE="" SEED="" BRIDGE="" ADDRESS="" IMAGE="$DEFAULT_IMAGE" PURGE=0 STAGE="" TIMEOUT=600
parse_args "name machine state-dir seed bridge address image disk-gib purge for timeout bind-ro" "$@"
[ "$(id -u)" = 0 ] || die "needs root (namespaces, cgroups, bridges)"

valid_ifname() { [[ "$1" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "--bridge '$1': 1 to 15 letters, digits, '.', '-' or '_'"; }

# The node's cgroup in each mounted v1 hierarchy: a child of this process's own cgroup
# there, so the node stays inside whatever limits the caller runs under.
# Raises a host sysctl to at least <value> (says so on stderr); leaves a higher one alone.
raise_sysctl() { # <key> <value>
  local file="/proc/sys/${1//.//}" now
  now="$(cat "$file")"
  [ "$now" -ge "$2" ] && return
  echo "$2" >"$file"
  echo "$PROG: raised $1 from $now to $2 (every node shares the host's)" >&2
}

cgroup_dirs() { # <name>
  local c rel
  for c in "${CONTROLLERS[@]}"; do
    [ -d "/sys/fs/cgroup/$c" ] && mountpoint -q "/sys/fs/cgroup/$c" || continue
    rel="$(awk -F: -v c="$c" '(c == "unified" && $1 == 0) { print $3 }
      { n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c || a[i] == "name=" c) print $3 }' /proc/self/cgroup | head -n1)"
    echo "/sys/fs/cgroup/$c${rel%/}/g8s-$1"
  done
}

# Every PID in a cgroup tree (v1: cgroup.procs of each directory).
cgroup_pids() { find "$@" -name cgroup.procs -exec cat {} + 2>/dev/null || true; }

case "$CMD" in
bridge-up)
  need --bridge "$BRIDGE" && need --address "$ADDRESS"
  valid_ifname "$BRIDGE"
  [[ "$ADDRESS" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] || die "--address '$ADDRESS': an IPv4 CIDR such as 10.88.0.1/24"
  # forward_delay 0: a node's port forwards at once (else networkd-wait-online waits ~15 s).
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then ip link add "$BRIDGE" type bridge forward_delay 0; fi
  ip addr replace "$ADDRESS" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  ;;

bridge-down)
  need --bridge "$BRIDGE"
  valid_ifname "$BRIDGE"
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
  ;;

up)
  check_node_args
  [ -x "$IMAGE/rootfs/lib/systemd/systemd" ] ||
    die "--image '$IMAGE': no rootfs/ with systemd; build it with 'bash tools/build.sh node-image'"
  command -v systemd-nspawn >/dev/null || die "systemd-nspawn is missing: apt-get install systemd-container"
  [ -z "$BRIDGE" ] || ip link show "$BRIDGE" >/dev/null 2>&1 ||
    die "--bridge '$BRIDGE' does not exist: create it with '$0 bridge-up --bridge $BRIDGE --address CIDR'"
  # Every node's systemd, containerd and kubelet take inotify instances from one host-wide
  # budget of root's (default 128): with four nodes a path unit failed with "Too many open
  # files". Raised, never lowered, as kind asks of its hosts.
  raise_sysctl fs.inotify.max_user_instances 8192
  raise_sysctl fs.inotify.max_user_watches 524288
  mkdir -p "$STATE"
  STATE="$(cd "$STATE" && pwd)"
  SEED="$(cd "$SEED" && pwd)"
  if [ -f "$STATE/nspawn.pid" ] && kill -0 "$(cat "$STATE/nspawn.pid")" 2>/dev/null; then
    die "node '$NAME' is already running (pid $(cat "$STATE/nspawn.pid")); '$0 down --state-dir $STATE' first"
  fi
  # --disk-gib: the node's root file system on a disk of its own (a sparse ext4 image, loop
  # mounted), as a VM has one. Without it the node's kubelet measures the host's file system: here
  # 85 % of it counts as used (reserved blocks), past kubelet's 85 % image GC and 15 % eviction
  # thresholds, and the nodes went DiskPressure (pods evicted, new ones not scheduled).
  if [ "$DISK_GIB" != 0 ]; then
    int_in --disk-gib "$DISK_GIB" 1 65536
    if [ ! -f "$STATE/disk.img" ]; then
      truncate -s "${DISK_GIB}G" "$STATE/disk.img.tmp"
      mkfs.ext4 -q -F -L "g8s-$NAME" "$STATE/disk.img.tmp"
      mv "$STATE/disk.img.tmp" "$STATE/disk.img"
      rm -rf "$STATE/rootfs"
    fi
    mkdir -p "$STATE/rootfs"
    mountpoint -q "$STATE/rootfs" || mount -o loop "$STATE/disk.img" "$STATE/rootfs"
  fi
  if [ ! -x "$STATE/rootfs/lib/systemd/systemd" ]; then
    rm -rf "$STATE/rootfs.tmp"
    cp -a --reflink=auto "$IMAGE/rootfs" "$STATE/rootfs.tmp"
    if [ "$DISK_GIB" != 0 ]; then
      (shopt -s dotglob && mv "$STATE/rootfs.tmp"/* "$STATE/rootfs/") && rmdir "$STATE/rootfs.tmp"
    else
      rm -rf "$STATE/rootfs" && mv "$STATE/rootfs.tmp" "$STATE/rootfs"
    fi
  fi
  # `modprobe overlay` / `modprobe br_netfilter` (kubeadm's preflight, g8s's bootstrap)
  # look in /lib/modules/<running kernel>: the host's modules, or, when the host kernel has
  # them built in and no module tree, a modules.builtin that says so.
  kver="$(uname -r)"
  mod_args=()
  if [ -d "/lib/modules/$kver" ]; then
    mod_args=(--bind-ro="/lib/modules/$kver")
  elif [ ! -d "$STATE/rootfs/lib/modules/$kver" ]; then
    mkdir -p "$STATE/rootfs/lib/modules/$kver"
    {
      ! grep -qw overlay /proc/filesystems || echo kernel/fs/overlayfs/overlay.ko
      [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || echo kernel/net/bridge/br_netfilter.ko
    } >"$STATE/rootfs/lib/modules/$kver/modules.builtin"
    chroot "$STATE/rootfs" depmod "$kver" 2>/dev/null || true
  fi

  # The machine name keys what is host-wide: the veth (vb-<machine>), the cgroups and nspawn's
  # propagation directory. Two labs may both have a master-0: their machine names differ.
  MACHINE="${MACHINE:-$NAME}"
  mapfile -t cgs < <(cgroup_dirs "$MACHINE")
  for d in "${cgs[@]}"; do
    mkdir -p "$d"
    # A v1 cpuset cgroup has no CPUs or memory nodes until given its parent's.
    if [[ "$d" == /sys/fs/cgroup/cpuset/* ]]; then
      cat "$(dirname "$d")/cpuset.cpus" >"$d/cpuset.cpus"
      cat "$(dirname "$d")/cpuset.mems" >"$d/cpuset.mems"
    fi
  done
  printf '%s\n' "${cgs[@]}" >"$STATE/cgroups"
  net_args=(--private-network)
  [ -z "$BRIDGE" ] || net_args=(--network-bridge="$BRIDGE")
  printf 'NAME=%s\nMACHINE=%s\nBRIDGE=%s\n' "$NAME" "$MACHINE" "$BRIDGE" >"$STATE/node.env"
  : >"$STATE/console.log"
  date +%s.%N >"$STATE/started-at"
  # Why each setting (README.md, "System containers"): SYSTEMD_SECCOMP=0 drops nspawn's
  # syscall filter (runc and containerd need keyctl, bpf, mount APIs ...);
  # SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 leaves /proc/sys and /sys writable (kubelet and
  # kube-proxy set sysctls); --capability=all as a privileged container; /dev/kmsg for
  # kubelet's OOM watcher; --keep-unit --register=no because the host has no systemd.
  setsid bash -c '
    for d in "$@"; do [ "$d" = -- ] && break; echo $$ >"$d/cgroup.procs"; done
    while [ "$1" != -- ]; do shift; done; shift
    exec env SYSTEMD_SECCOMP=0 SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 "$@"
  ' g8s-nspawn "${cgs[@]}" -- systemd-nspawn --quiet --boot --directory="$STATE/rootfs" --machine="$MACHINE" \
    --hostname="$NAME" --register=no --keep-unit --capability=all --console=read-only \
    "${net_args[@]}" --bind-ro="$SEED:/var/lib/cloud/seed/nocloud" --bind=/dev/kmsg \
    "${BINDS[@]/#/--bind-ro=}" \
    "${mod_args[@]}" </dev/null >>"$STATE/console.log" 2>&1 &
  echo "$!" >"$STATE/nspawn.pid"
  # The container's PID 1 is nspawn's child: record it once it exists (exec/wait use it).
  for _ in $(seq 100); do
    leader="$(pgrep -P "$!" -x systemd || true)"
    [ -z "$leader" ] || break
    kill -0 "$!" 2>/dev/null || { tail -n 20 "$STATE/console.log" >&2; die "node '$NAME': systemd-nspawn exited"; }
    sleep 0.1
  done
  [ -n "$leader" ] || die "node '$NAME': no systemd in the container after 10 s (console: $STATE/console.log)"
  echo "$leader" >"$STATE/leader.pid"
  echo "node $NAME: nspawn pid $(cat "$STATE/nspawn.pid"), init pid $leader, console $STATE/console.log"
  ;;

down)
  need --state-dir "$STATE"
  [ -d "$STATE" ] || exit 0
  NAME="$(sed -n 's/^NAME=//p' "$STATE/node.env" 2>/dev/null || true)"
  MACHINE="$(sed -n 's/^MACHINE=//p' "$STATE/node.env" 2>/dev/null || true)"
  MACHINE="${MACHINE:-$NAME}"
  if [ -f "$STATE/nspawn.pid" ]; then
    pid="$(cat "$STATE/nspawn.pid")"
    # SIGTERM makes nspawn ask the container's systemd for an orderly poweroff.
    if kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd-nspawn ]; then
      kill -TERM "$pid"
      for _ in $(seq $((STOP_TIMEOUT * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/nspawn.pid" "$STATE/leader.pid"
  fi
  if [ -f "$STATE/cgroups" ]; then
    mapfile -t cgs <"$STATE/cgroups"
    existing=()
    for d in "${cgs[@]}"; do [ ! -d "$d" ] || existing+=("$d"); done
    if [ "${#existing[@]}" -gt 0 ]; then
      # Anything the node left behind (a shim whose parent died with a SIGKILL).
      for _ in 1 2 3; do
        pids="$(cgroup_pids "${existing[@]}" | sort -u)"
        [ -n "$pids" ] || break
        # shellcheck disable=SC2086 # one word per PID
        kill -KILL $pids 2>/dev/null || true
        sleep 0.2
      done
      for d in "${existing[@]}"; do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
    fi
    rm -f "$STATE/cgroups"
  fi
  # nspawn's mount propagation directory on the host (it cannot remove it without host systemd).
  [ -z "$MACHINE" ] || rm -rf "/run/systemd/nspawn/propagate/$MACHINE"
  # The node's own disk (--disk-gib): unmounted (its loop device goes with it), kept until --purge.
  if [ -f "$STATE/disk.img" ] && mountpoint -q "$STATE/rootfs"; then umount "$STATE/rootfs"; fi
  if [ "$PURGE" = 1 ]; then rm -rf "$STATE"; fi
  ;;

exec)
  need --state-dir "$STATE"
  [ "${#CMD_ARGS[@]}" -gt 0 ] || die "exec: a command is required after --"
  leader="$(cat "$STATE/leader.pid" 2>/dev/null)" || die "no node running in $STATE"
  exec nsenter --target "$leader" --all --root --wd -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb "${CMD_ARGS[@]}"
  ;;

wait)
  need --state-dir "$STATE" && need --for "$STAGE"
  in_node() { "$0" exec --state-dir "$STATE" -- sh -c "$1"; }
  alive() { kill -0 "$(cat "$STATE/nspawn.pid" 2>/dev/null || echo 0)" 2>/dev/null; }
  wait_stage in_node alive 0.5
  ;;

*) usage ;;
esac
