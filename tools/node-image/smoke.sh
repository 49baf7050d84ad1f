#!/usr/bin/env bash
# Proves the node image on a substrate and prints its figures (README.md, "Figures"):
#
#   smoke.sh nspawn   two system containers on a bridge: cloud-init from a NoCloud seed,
#                     containerd importing and running an image with runc, kubelet started
#                     by the kubeadm drop-in up to its API-server connect loop, ping + TCP
#                     between the nodes, memory of each node
#   smoke.sh qemu     one VM under TCG: the same checks for a single node
#
# Everything it starts (nodes, bridge) is stopped and removed at the end, also on failure.
# Needs root and the image (bash tools/build.sh node-image). WORK=DIR keeps the node
# folders there (default: a temporary folder, removed at the end).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUBSTRATE="${1:-}"
case "$SUBSTRATE" in nspawn | qemu) ;; *) echo "usage: smoke.sh nspawn|qemu" >&2 && exit 2 ;; esac
BRIDGE=g8s-smoke0
NET=10.88.7
KEEP="${WORK:+1}"
WORK="${WORK:-$(mktemp -d /var/tmp/g8s-node-smoke.XXXXXX)}"
mkdir -p "$WORK"
T0="$(date +%s)"
log() { printf '[smoke %s +%ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - T0))" "$*"; }
fail() { printf '[smoke] FAILED: %s\n' "$*" >&2; exit 1; }

NODES=(n1 n2)
[ "$SUBSTRATE" = nspawn ] || NODES=(v1)
node_ip() { case "$1" in n1 | v1) echo "$NET.11" ;; n2) echo "$NET.12" ;; esac; }

cleanup() {
  local n
  for n in "${NODES[@]}"; do
    if [ "$SUBSTRATE" = nspawn ]; then
      "$HERE/nspawn-node.sh" down --state-dir "$WORK/$n" || true
    else
      "$HERE/qemu-node.sh" down --state-dir "$WORK/$n" || true
    fi
  done
  [ "$SUBSTRATE" != nspawn ] || "$HERE/nspawn-node.sh" bridge-down --bridge "$BRIDGE" || true
  [ -n "$KEEP" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# The seed: a file written and a command run by cloud-init (the NoCloud proof), a static
# address, and a kubelet configuration + kubeconfig in kubeadm's places, pointing at an
# API server that does not exist, so kubelet must reach its connect loop and no further.
make_seed() { # <node> <dir>
  local n="$1" d="$2" cert key
  mkdir -p "$d"
  # A throwaway client certificate: kubelet refuses a kubeconfig without one.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=system:node:$n" \
    -keyout "$d/client.key" -out "$d/client.crt" 2>/dev/null
  cert="$(base64 -w0 <"$d/client.crt")"
  key="$(base64 -w0 <"$d/client.key")"
  printf 'instance-id: %s-smoke\nlocal-hostname: %s\n' "$n" "$n" >"$d/meta-data"
  if [ "$SUBSTRATE" = nspawn ]; then
    # accept-ra: false, else networkd-wait-online holds boot ~13 s for router advertisements.
    printf 'version: 2\nethernets:\n  host0:\n    match:\n      name: host0\n    addresses: [%s/24]\n    accept-ra: false\n' \
      "$(node_ip "$n")" >"$d/network-config"
  fi
  cat >"$d/user-data" <<EOF
#cloud-config
write_files:
  - path: /etc/g8s-smoke
    content: "seeded $n\n"
  - path: /var/lib/kubelet/config.yaml
    content: |
      apiVersion: kubelet.config.k8s.io/v1beta1
      kind: KubeletConfiguration
      cgroupDriver: systemd
      containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
      failSwapOn: false
      authentication:
        anonymous:
          enabled: true
        webhook:
          enabled: false
      authorization:
        mode: AlwaysAllow
  - path: /var/lib/kubelet/kubeadm-flags.env
    content: |
      KUBELET_KUBEADM_ARGS="--node-ip=$(node_ip "$n")"
  - path: /etc/kubernetes/kubelet.conf
    permissions: "0600"
    content: |
      apiVersion: v1
      kind: Config
      clusters:
        - name: none
          cluster:
            server: https://$NET.1:6443
            insecure-skip-tls-verify: true
      users:
        - name: kubelet
          user:
            client-certificate-data: $cert
            client-key-data: $key
      contexts:
        - name: default
          context: { cluster: none, user: kubelet }
      current-context: default
runcmd:
  - [sh, -c, "echo runcmd \$(hostname) > /var/tmp/g8s-smoke-runcmd"]
EOF
}

if [ "$SUBSTRATE" = nspawn ]; then
  "$HERE/nspawn-node.sh" bridge-up --bridge "$BRIDGE" --address "$NET.1/24"
  run() { "$HERE/nspawn-node.sh" exec --state-dir "$WORK/$1" -- "${@:2}"; }
  for n in "${NODES[@]}"; do
    make_seed "$n" "$WORK/$n-seed"
    "$HERE/nspawn-node.sh" up --name "$n" --state-dir "$WORK/$n" --seed "$WORK/$n-seed" --bridge "$BRIDGE"
  done
  for n in "${NODES[@]}"; do
    for stage in booted cloud-init containerd; do
      r="$("$HERE/nspawn-node.sh" wait --state-dir "$WORK/$n" --for "$stage" --timeout 300)" || fail "$n: no $stage"
      log "$n: $r"
    done
  done
else
  run() { "$HERE/qemu-node.sh" exec --state-dir "$WORK/$1" -- "${@:2}"; }
  for n in "${NODES[@]}"; do
    make_seed "$n" "$WORK/$n-seed"
    "$HERE/qemu-node.sh" up --name "$n" --state-dir "$WORK/$n" --seed "$WORK/$n-seed"
    for stage in booted cloud-init containerd; do
      r="$("$HERE/qemu-node.sh" wait --state-dir "$WORK/$n" --for "$stage" --timeout 1800)" || fail "$n: no $stage"
      log "$n: $r"
    done
  done
fi

for n in "${NODES[@]}"; do
  [ "$(run "$n" cat /etc/g8s-smoke)" = "seeded $n" ] || fail "$n: cloud-init did not write /etc/g8s-smoke"
  [ "$(run "$n" cat /var/tmp/g8s-smoke-runcmd)" = "runcmd $n" ] || fail "$n: cloud-init runcmd did not run"
  log "$n: cloud-init wrote the seed's file and ran its command (hostname $n)"
done

# containerd: the image archive is imported by g8s-import-images (restarted after the
# archive is copied in, as at a first boot with archives in the image) and run with runc.
"$HERE/test-image.sh" "$WORK/busybox.tar" >/dev/null
n="${NODES[0]}"
start="$(date +%s.%N)"
run "$n" mkdir -p /usr/local/share/g8s/images
run "$n" sh -c 'cat >/usr/local/share/g8s/images/g8s-smoke-busybox.tar' <"$WORK/busybox.tar"
run "$n" systemctl restart g8s-import-images.service
images="$(run "$n" ctr -n k8s.io images ls -q)"
grep -qx 'g8s.local/test/busybox:1' <<<"$images" || fail "$n: image not imported (images: $images)"
out="$(run "$n" ctr -n k8s.io run --rm g8s.local/test/busybox:1 g8s-smoke /bin/busybox echo hello-from-runc)" ||
  fail "$n: containerd/runc could not run the test image"
[ "$out" = hello-from-runc ] || fail "$n: the container said '$out'"
log "$n: image imported and run by containerd/runc in $(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }') s"

# kubelet: started by systemd with the kubeadm drop-in; must stay up and try the API server.
if run "$n" test -x /usr/local/bin/kubelet; then
  for _ in $(seq 120); do
    if run "$n" sh -c 'journalctl -u kubelet --no-pager | grep -qE "Attempting to register node|Unable to register node|connection refused"'; then break; fi
    sleep 1
  done
  run "$n" systemctl is-active -q kubelet || fail "$n: kubelet is not running: $(run "$n" journalctl -u kubelet --no-pager | tail -n 20)"
  run "$n" sh -c 'journalctl -u kubelet --no-pager | grep -E "Attempting to register node|connection refused" | tail -n 2'
  if run "$n" sh -c 'journalctl -u kubelet --no-pager | grep -iE "cgroup" | grep -iE "error|fail"'; then
    fail "$n: kubelet reports cgroup errors (above)"
  fi
  log "$n: kubelet running, in its API-server connect loop, no cgroup errors"
else
  log "$n: no kubelet in the image yet (bash tools/build.sh node-image after the kubelet build)"
fi

if [ "$SUBSTRATE" = nspawn ]; then
  run n1 ping -c 2 -W 2 "$(node_ip n2)" >/dev/null || fail "n1 cannot ping n2"
  run n2 systemd-run --unit=g8s-smoke-tcp socat TCP-LISTEN:7777,reuseaddr,fork SYSTEM:'echo pong' >/dev/null
  sleep 1
  reply="$(run n1 socat -T 5 - "TCP:$(node_ip n2):7777" </dev/null)"
  [ "$reply" = pong ] || fail "n1 -> n2:7777 answered '$reply'"
  log "n1 -> n2: ping and TCP 7777 ok"
fi

for n in "${NODES[@]}"; do
  if [ "$SUBSTRATE" = nspawn ]; then
    mem="$(grep '/memory/' "$WORK/$n/cgroups")/memory.stat"
    # anonymous (rss), file pages mapped by processes (binaries, libraries), all page cache.
    awk -v n="$n" '$1 == "total_rss" { r = $2 } $1 == "total_mapped_file" { m = $2 } $1 == "total_cache" { c = $2 }
      END { printf "[smoke] %s: memory rss %d MiB + mapped files %d MiB (page cache %d MiB)\n", n, r / 1048576, m / 1048576, c / 1048576 }' "$mem"
  else
    "$HERE/qemu-node.sh" status --state-dir "$WORK/$n"
  fi
done
log "all checks passed"
