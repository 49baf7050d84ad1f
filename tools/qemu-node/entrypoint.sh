#!/usr/bin/env bash
# The entrypoint of g8s/qemu-node, the KVM platform's QEMU pod image: runs one guest node as a
# QEMU VM, configured by the environment the platform sets (components/kvm/README.md, "Image
# contract"; tools/qemu-node/README.md). It creates the node's disk from the image's base disk
# on first boot, builds a NoCloud seed from the user-data Secret, shares the node-secrets Secret
# over virtio 9p, hands the pod's address to the VM (bridge + tap + a one-lease DHCP server),
# and stays in the foreground with QEMU: SIGTERM powers the guest down over ACPI; it exits when
# QEMU does, with QEMU's status.
#
#   entrypoint.sh            (no arguments; everything comes from G8S_* variables)
#
# Beside the contract's variables: G8S_IMAGE_DIR (the base disk, kernel and initrd; default
# /usr/share/g8s/node-image) and G8S_RUN_DIR (seed, sockets, qemu.pid; default /run/g8s).
# The serial console goes to stdout (the pod's log), the entrypoint's own lines to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG=qemu-node-entrypoint
CMD=entrypoint
# shellcheck source=../node-image/lib.sh
. "$HERE/../node-image/lib.sh"

IMAGE_DIR="${G8S_IMAGE_DIR:-/usr/share/g8s/node-image}"
RUN_DIR="${G8S_RUN_DIR:-/run/g8s}"
# Below the pod's terminationGracePeriodSeconds (120): time left to kill QEMU ourselves.
STOP_TIMEOUT="${G8S_STOP_TIMEOUT:-110}"
# The VM's interface in the pod: the bridge binding takes over this one.
POD_IF=eth0
BRIDGE=g8sbr0
TAP=g8stap0

say() { printf '[%s %s] %s\n' "$PROG" "$(date -u +%H:%M:%S)" "$*" >&2; }

# --- the environment ------------------------------------------------------------------
env_set() { [ -n "${!1:-}" ] || die "$1 is not set: the platform's pod spec sets it (components/kvm/workload.ts)"; }
env_int() { # <name> <min> <max>
  env_set "$1"
  [[ "${!1}" =~ ^[0-9]+$ ]] && [ "${!1}" -ge "$2" ] && [ "${!1}" -le "$3" ] ||
    die "$1='${!1}': an integer from $2 to $3"
}
env_one_of() { # <name> <value>...
  local n="$1" v
  env_set "$n"
  shift
  for v in "$@"; do [ "${!n}" != "$v" ] || return 0; done
  die "$n='${!n}': one of $*"
}
env_dir() { env_set "$1" && [ -d "${!1}" ] || die "$1='${!1}': no such directory (a volume mount of the pod)"; }

env_set G8S_CLUSTER_ID
env_set G8S_POD_NAME
[[ "$G8S_POD_NAME" =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] ||
  die "G8S_POD_NAME='$G8S_POD_NAME': a DNS label (the pod's name)"
env_one_of G8S_ROLE master worker
env_int G8S_CPUS 1 64
env_int G8S_MEMORY_MIB 512 1048576
env_int G8S_DISK_GIB 2 65536
env_dir G8S_DISK_DIR
env_dir G8S_USER_DATA_DIR
env_dir G8S_SHARE_DIR
env_set G8S_SHARE_TAG
[[ "$G8S_SHARE_TAG" =~ ^[A-Za-z0-9_-]{1,31}$ ]] || die "G8S_SHARE_TAG='$G8S_SHARE_TAG': 1 to 31 letters, digits, '-', '_'"
env_one_of G8S_NETWORK bridge
env_one_of G8S_ACCEL kvm tcg auto
if [ "$G8S_ROLE" = master ]; then
  env_dir G8S_ETCD_DIR
  env_int G8S_ETCD_DISK_GIB 1 65536
fi
for f in disk.qcow2 vmlinuz initrd.img; do
  [ -f "$IMAGE_DIR/$f" ] || die "G8S_IMAGE_DIR='$IMAGE_DIR': no $f (the image's base disk, kernel and initrd)"
done
for c in qemu-system-x86_64 qemu-img dnsmasq ip; do
  command -v "$c" >/dev/null || die "$c is missing from the image"
done
ACCEL="$(resolve_accel "$G8S_ACCEL" G8S_ACCEL)"
mkdir -p "$RUN_DIR"

# --- disks ----------------------------------------------------------------------------
# The node's disk: a full copy of the base disk, not an overlay on it, so that a newer image
# (another base disk) never changes a disk that exists. Grown to G8S_DISK_GIB; cloud-init's
# resize_rootfs grows the file system at first boot. Reused on every later start.
DISK="$G8S_DISK_DIR/disk.qcow2"
if [ ! -f "$DISK" ]; then
  start="$(date +%s)"
  rm -f "$DISK.partial"
  qemu-img convert -O qcow2 "$IMAGE_DIR/disk.qcow2" "$DISK.partial"
  qemu-img resize -q "$DISK.partial" "${G8S_DISK_GIB}G"
  mv "$DISK.partial" "$DISK"
  say "disk: created $DISK (${G8S_DISK_GIB} GiB) from the base disk in $(($(date +%s) - start)) s"
else
  say "disk: reusing $DISK"
fi
extra=()
if [ "$G8S_ROLE" = master ]; then
  # etcd's own disk, empty; the guest finds it as /dev/disk/by-id/virtio-g8s-etcd.
  ETCD_DISK="$G8S_ETCD_DIR/etcd.qcow2"
  [ -f "$ETCD_DISK" ] || qemu-img create -q -f qcow2 "$ETCD_DISK" "${G8S_ETCD_DISK_GIB}G"
  extra+=(-drive "file=$ETCD_DISK,if=none,id=etcd,format=qcow2,discard=unmap"
    -device "virtio-blk-pci,drive=etcd,serial=g8s-etcd")
fi

# --- the NoCloud seed -----------------------------------------------------------------
# Masters' Secret holds user-data-<slot> (the pod's ordinal), pools' one user-data for all.
ordinal="${G8S_POD_NAME##*-}"
user_data="$G8S_USER_DATA_DIR/user-data-$ordinal"
[[ "$ordinal" =~ ^[0-9]+$ ]] && [ -f "$user_data" ] || user_data="$G8S_USER_DATA_DIR/user-data"
[ -f "$user_data" ] ||
  die "G8S_USER_DATA_DIR='$G8S_USER_DATA_DIR': neither user-data-$ordinal nor user-data (the user-data Secret's keys)"
seed="$RUN_DIR/seed"
rm -rf "$seed" && mkdir -m 0700 "$seed"
# The instance id is the pod's name: stable, so cloud-init runs the user-data once per disk.
printf 'instance-id: %s\nlocal-hostname: %s\n' "$G8S_POD_NAME" "$G8S_POD_NAME" >"$seed/meta-data"
cp "$user_data" "$seed/user-data"
seed_iso "$RUN_DIR/seed.iso" "$seed/meta-data" "$seed/user-data"
rm -rf "$seed"
say "seed: $(basename "$user_data") as instance $G8S_POD_NAME"

# --- bridge binding -------------------------------------------------------------------
# The pod's address, routes and MAC move to the VM: eth0 loses its address and joins a bridge
# with the VM's tap device; dnsmasq leases exactly that address (forever) to the VM's MAC, with
# the pod's routes (option 121), DNS servers, search domains and MTU. The facts are kept in
# $G8S_DISK_DIR/network.env: a restarted container finds eth0 already bridged and reuses them.
NET_ENV="$G8S_DISK_DIR/network.env"
ip link show "$POD_IF" >/dev/null 2>&1 || die "G8S_NETWORK=bridge: the pod has no $POD_IF"
if ip -4 -o addr show dev "$POD_IF" | grep -q ' inet '; then
  cidr="$(ip -4 -o addr show dev "$POD_IF" | awk '$3 == "inet" { print $4; exit }')"
  # Routes through eth0 as dnsmasq's classless-static-route list (destination/length,
  # gateway): `via` routes keep their gateway, on-link ones (not the subnet's own) get 0.0.0.0.
  routes="$(ip -4 route show dev "$POD_IF" | awk '
    / proto kernel / { next }
    {
      dst = $1 == "default" ? "0.0.0.0/0" : ($1 ~ /\// ? $1 : $1 "/32"); via = "0.0.0.0"
      for (i = 2; i < NF; i++) if ($i == "via") via = $(i + 1)
      printf "%s%s,%s", sep, dst, via; sep = ","
    }')"
  {
    echo "POD_IP=${cidr%/*}"
    echo "POD_PREFIX=${cidr#*/}"
    echo "POD_MAC=$(cat "/sys/class/net/$POD_IF/address")"
    echo "POD_MTU=$(cat "/sys/class/net/$POD_IF/mtu")"
    echo "POD_ROUTES=$routes"
    echo "POD_DNS=$(awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ { printf "%s%s", s, $2; s = "," }' /etc/resolv.conf 2>/dev/null)"
    echo "POD_SEARCH=$(awk '$1 == "search" { for (i = 2; i <= NF; i++) printf "%s%s", (i > 2 ? "," : ""), $i }' /etc/resolv.conf 2>/dev/null)"
  } >"$NET_ENV.new"
  mv "$NET_ENV.new" "$NET_ENV"
elif [ ! -f "$NET_ENV" ] || ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  die "G8S_NETWORK=bridge: $POD_IF has no IPv4 address and no earlier run of this pod bridged it"
fi
# shellcheck source=/dev/null
. "$NET_ENV"
mask_of() { # <prefix length>: dotted netmask
  local p="$1" m=() i
  for i in 0 1 2 3; do
    if [ "$p" -ge 8 ]; then m+=(255) && p=$((p - 8)); else m+=($((256 - (1 << (8 - p))))) && p=0; fi
  done
  local IFS=.
  echo "${m[*]}"
}
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip addr flush dev "$POD_IF"
  # The VM takes the pod's MAC (the network may know the pod by it); eth0 gets a local one.
  ip link set "$POD_IF" down
  ip link set "$POD_IF" address "02:$(printf %s "$G8S_POD_NAME" | sha256sum | sed 's/^\(..\)\(..\)\(..\)\(..\)\(..\).*/\1:\2:\3:\4:\5/')"
  ip link add "$BRIDGE" mtu "$POD_MTU" type bridge
  ip link set "$POD_IF" master "$BRIDGE" up
fi
ip link show "$TAP" >/dev/null 2>&1 || ip tuntap add dev "$TAP" mode tap
ip link set "$TAP" mtu "$POD_MTU" master "$BRIDGE" up
ip link set "$BRIDGE" up
# dnsmasq answers on the bridge from an address of its own: one outside the pod's network, but
# in the same half of the address space as the pod's, so that the range's 128.0.0.0 mask joins
# them (dnsmasq serves a range only through an interface with an address in it). The lease is
# infinite: the guest never has to reach this address again.
if [ "${POD_IP%%.*}" -lt 128 ]; then DHCP_SERVER=100.127.255.254; else DHCP_SERVER=169.254.75.10; fi
[ "$POD_IP" != "$DHCP_SERVER" ] || die "the pod's address $POD_IP is the DHCP server's own"
ip addr replace "$DHCP_SERVER/32" dev "$BRIDGE"
dhcp=(--dhcp-range="$POD_IP,static,128.0.0.0,infinite" --dhcp-host="$POD_MAC,$POD_IP,$G8S_POD_NAME"
  --dhcp-option="option:netmask,$(mask_of "$POD_PREFIX")" --dhcp-option="option:mtu,$POD_MTU")
[ -z "$POD_ROUTES" ] || dhcp+=(--dhcp-option="option:classless-static-route,$POD_ROUTES")
[ -z "$POD_DNS" ] || dhcp+=(--dhcp-option="option:dns-server,$POD_DNS")
[ -z "$POD_SEARCH" ] || dhcp+=(--dhcp-option="option:domain-search,$POD_SEARCH")
dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --interface="$BRIDGE" --bind-dynamic \
  --dhcp-authoritative --dhcp-leasefile="$RUN_DIR/dhcp.leases" "${dhcp[@]}" \
  --log-facility=- --quiet-dhcp > >(sed -u "s/^/[$PROG dnsmasq] /" >&2) 2>&1 &
DNSMASQ=$!
say "network: $POD_IP/$POD_PREFIX (MAC $POD_MAC, MTU $POD_MTU) to the VM through $BRIDGE and $TAP; routes ${POD_ROUTES:-none}; DNS ${POD_DNS:-none}"

# --- QEMU ------------------------------------------------------------------------------
# The monitor on a pair of FIFOs (QEMU opens both read-write, so neither side blocks): the
# entrypoint needs nothing but bash to press the ACPI power button.
MON="$RUN_DIR/monitor"
rm -f "$MON.in" "$MON.out" "$RUN_DIR/qemu.pid" "$RUN_DIR/qga.sock"
mkfifo -m 0600 "$MON.in" "$MON.out"
cat "$MON.out" >/dev/null &
MON_DRAIN=$!
date +%s.%N >"$RUN_DIR/started-at"
qemu_node_argv "$G8S_POD_NAME" "$ACCEL" "$G8S_CPUS" "$G8S_MEMORY_MIB" "$IMAGE_DIR" "$DISK" "$RUN_DIR/seed.iso" \
  "$POD_MAC" "tap,id=net0,ifname=$TAP,script=no,downscript=no" "$RUN_DIR"
QEMU_ARGV+=(
  "${extra[@]}"
  -virtfs "local,path=$G8S_SHARE_DIR,mount_tag=$G8S_SHARE_TAG,security_model=none,readonly=on"
  -chardev "pipe,id=mon0,path=$MON" -mon chardev=mon0,mode=readline
  -chardev stdio,id=console0,signal=off -serial chardev:console0
)
qemu-system-x86_64 "${QEMU_ARGV[@]}" </dev/null &
QEMU=$!
say "qemu: pid $QEMU ($ACCEL, $G8S_CPUS CPUs, $G8S_MEMORY_MIB MiB), $G8S_ROLE node $G8S_POD_NAME of cluster $G8S_CLUSTER_ID"

# QEMU runs and has not exited (a zombie, exited but not yet waited for, does not count).
qemu_running() { [ -r "/proc/$QEMU/stat" ] && [ "$(awk '{ print $3 }' "/proc/$QEMU/stat" 2>/dev/null)" != Z ]; }
stopping=0
stop() {
  interrupted=1
  [ "$stopping" = 0 ] || return 0
  stopping=1
  say "SIGTERM: ACPI power button; QEMU is killed after $STOP_TIMEOUT s"
  echo system_powerdown >"$MON.in" || true
  local i
  for ((i = 0; i < STOP_TIMEOUT; i++)); do
    qemu_running || return 0
    sleep 1
  done
  say "the guest did not power off in $STOP_TIMEOUT s: killing QEMU"
  kill -TERM "$QEMU" 2>/dev/null || true
  sleep 5
  kill -KILL "$QEMU" 2>/dev/null || true
}
trap stop TERM INT
# `wait` returns early (128 + signal) when a trap has run: then wait again, which returns QEMU's
# own status at once if it has exited meanwhile.
while :; do
  interrupted=0
  if wait "$QEMU"; then status=0; else status=$?; fi
  [ "$interrupted" = 1 ] || break
done
kill "$MON_DRAIN" "$DNSMASQ" 2>/dev/null || true
say "qemu exited with status $status"
exit "$status"
