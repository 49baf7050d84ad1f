#!/usr/bin/env bash
# Proves the flannel CNI plugin with the real bridge and host-local plugins of
# .tools/share/cni/bin: in a network and mount namespace of its own (the machine's network
# and /var/lib/cni are not touched) it writes a subnet.env as flanneld would, runs ADD for
# a pod network namespace and checks the pod's address, routes and MTU, the bridge's
# gateway address and hairpin mode, and a TCP connection from the node to the pod; then
# CHECK, DEL (address released, configuration removed) and a second DEL.
#
# Usage: bash tools/flannel-cni/netns-check.sh      (as root, after `npm run toolchain`)
set -euo pipefail

CNI_BIN="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.tools/share/cni/bin"
die() {
  printf '[flannel-cni-check] FAILED: %s\n' "$*" >&2
  exit 1
}
log() { printf '[flannel-cni-check] %s\n' "$*"; }

if [ "${G8S_IN_NETNS:-}" != 1 ]; then
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
  for p in flannel bridge host-local; do
    [ -x "$CNI_BIN/$p" ] || die "$CNI_BIN/$p is missing: run 'npm run toolchain'"
  done
  # Mount points it has to create on the machine are removed again afterwards.
  made=()
  for d in /run/netns /var/lib/cni; do [ -d "$d" ] || made+=("$d"); done
  rc=0
  G8S_IN_NETNS=1 unshare --net --mount bash "${BASH_SOURCE[0]}" || rc=$?
  for d in "${made[@]}"; do rmdir "$d" 2>/dev/null || true; done
  exit "$rc"
fi

# A private /run/netns, /sys (of this network namespace) and /var/lib/cni (host-local's leases).
mount --make-rprivate /
mkdir -p /run/netns /var/lib/cni
mount -t tmpfs tmpfs /run/netns
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /var/lib/cni
ip link set lo up
WORK="$(mktemp -d /tmp/g8s-flannel-cni.XXXXXX)"
SERVER=""
trap '[ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT

cat >"$WORK/subnet.env" <<EOF
FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.7.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
EOF
CONF='{"cniVersion":"1.0.0","name":"cbr0","type":"flannel","subnetFile":"'$WORK/subnet.env'","dataDir":"'$WORK/data'"}'
ip netns add pod1
export CNI_PATH="$CNI_BIN" CNI_CONTAINERID=pod1 CNI_NETNS=/run/netns/pod1 CNI_IFNAME=eth0
cni() { CNI_COMMAND="$1" "$CNI_BIN/flannel" <<<"$2"; }
# (Outputs captured first: `cmd | grep -q` can fail under pipefail when grep exits early.)
has() { grep -q -- "$2" <<<"$1" || die "$3: $1"; }
in_pod() { ip netns exec pod1 "$@"; }

result="$(cni ADD "$CONF")" || die "ADD: $result"
has "$result" '"address": "10.244.7.2/24"' "ADD result"
has "$(in_pod ip -4 -o addr show eth0)" "inet 10.244.7.2/24" "pod eth0"
routes="$(in_pod ip route)"
has "$routes" "^default via 10.244.7.1 dev eth0" "pod routes"
has "$routes" "^10.244.0.0/16 via 10.244.7.1" "pod routes"
has "$(in_pod ip link show eth0)" "mtu 1450" "pod MTU"
has "$(ip -4 -o addr show cni0)" "inet 10.244.7.1/24" "cni0"
port="$(ls /sys/class/net/cni0/brif/)"
[ "$(cat "/sys/class/net/cni0/brif/$port/hairpin_mode")" = 1 ] || die "hairpin mode is off on $port"
log "ADD: pod eth0 10.244.7.2/24, default via 10.244.7.1, route to 10.244.0.0/16, MTU 1450; cni0 10.244.7.1/24, hairpin on $port"

in_pod python3 -m http.server 8080 --bind 10.244.7.2 >/dev/null 2>&1 &
SERVER=$!
for _ in $(seq 50); do
  code="$(curl -s -o /dev/null -w '%{http_code}' http://10.244.7.2:8080/ || true)"
  [ "$code" = 200 ] && break
  sleep 0.1
done
[ "$code" = 200 ] || die "no HTTP answer from the pod at 10.244.7.2:8080"
log "node -> pod: HTTP 200 from 10.244.7.2:8080"
kill "$SERVER"
SERVER=""

cni CHECK '{"cniVersion":"1.0.0","name":"cbr0","type":"flannel","dataDir":"'$WORK/data'","prevResult":'"$result"'}' ||
  die "CHECK failed"
log "CHECK: ok"
cni DEL "$CONF" || die "DEL failed"
in_pod ip link show eth0 >/dev/null 2>&1 && die "DEL left eth0 in the pod"
[ ! -e /var/lib/cni/networks/cbr0/10.244.7.2 ] || die "DEL did not release 10.244.7.2"
[ ! -e "$WORK/data/pod1" ] || die "DEL left the saved configuration"
cni DEL "$CONF" || die "a second DEL failed"
log "DEL: eth0 gone, 10.244.7.2 released, saved configuration removed; a second DEL succeeds"
ip netns del pod1
