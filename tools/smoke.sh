#!/usr/bin/env bash
# Proves that what tools/build.sh put into .tools/ runs:
#   1. every binary of bin/ answers --version with the version of .tools/versions.json
#      (the node images have their own check: tools/images/check.sh);
#   2. the Kubernetes provider plugin installs into a throw-away PULUMI_HOME and
#      `pulumi plugin ls` lists it, at the version the pinned @pulumi/kubernetes asks for;
#   3. a host control plane starts on 127.0.0.1 (free ports, a temp dir, mutual TLS with
#      certificates from openssl): etcd, kube-apiserver until /readyz is ok, then
#      kube-controller-manager and kube-scheduler until their /healthz are ok, and kwok
#      until a fake node it manages is Ready. Every process is stopped by its PID.
#
# Usage: bash tools/smoke.sh        (after `npm run toolchain`; `npm run toolchain:smoke`)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
BIN="$REPO/.tools/bin"
VERSIONS="$REPO/.tools/versions.json"
T0="$(date +%s)"
log() { printf '[smoke %s +%ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - T0))" "$*"; }
die() {
  printf '[smoke %s] FAILED: %s\n' "$(date +%H:%M:%S)" "$*" >&2
  exit 1
}
[ -f "$VERSIONS" ] || die "$VERSIONS is missing: run 'npm run toolchain' first"
version_of() { node -e 'const v = require(process.argv[1]).tools[process.argv[2]]; if (!v) process.exit(1); console.log(v.version)' "$VERSIONS" "$1" ||
  die "$1 is not built (not in $VERSIONS): run 'npm run toolchain'"; }

# --- 1. versions ---------------------------------------------------------------------
ETCD_V="$(version_of etcd)"
KUBE_V="$(version_of kubernetes)"
KWOK_V="$(version_of kwok)"
PLUGIN_V="$(version_of pulumi-kubernetes)"
PULUMI_V="$(version_of pulumi)"
check_version() { # <expected substring> <command...>
  local out # all of it first: `cmd | head` can fail under pipefail (SIGPIPE)
  out="$("${@:2}" 2>&1)" || die "${*:2} failed: $out"
  case "$out" in
  *"$1"*) log "${*:2}: ${out%%$'\n'*}" ;;
  *) die "${*:2} printed '$out', expected '$1'" ;;
  esac
}
check_version "etcd Version: $ETCD_V" "$BIN/etcd" --version
for b in kube-apiserver kube-controller-manager kube-scheduler; do
  check_version "Kubernetes v$KUBE_V" "$BIN/$b" --version
done
NODE_V="$(version_of kubernetes-node)"
for b in kubelet kube-proxy; do
  check_version "Kubernetes v$NODE_V" "$BIN/$b" --version
done
check_version "v$NODE_V" "$BIN/kubeadm" version -o short
check_version "Client Version: v$NODE_V" "$BIN/kubectl" version --client
check_version "crictl version v$(version_of crictl)" "$BIN/crictl" --version
check_version "kwok version v$KWOK_V" "$BIN/kwok" --version
check_version "$PLUGIN_V" "$BIN/pulumi-resource-kubernetes" --version
PULUMI_SKIP_UPDATE_CHECK=true check_version "v$PULUMI_V" "$BIN/pulumi" version

WORK="$(mktemp -d "${TMPDIR:-/tmp}/g8s-smoke.XXXXXX")"
PIDS=()
stop_all() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
  PIDS=()
}
cleanup() {
  stop_all
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so the EXIT trap stops what was started

# --- 2. the provider plugin -----------------------------------------------------------
SDK_V="$(node -e 'console.log(require(process.argv[1]).pulumi.version)' "$REPO/node_modules/@pulumi/kubernetes/package.json")" ||
  die "node_modules/@pulumi/kubernetes is missing: run 'npm ci'"
[ "$SDK_V" = "$PLUGIN_V" ] || die "@pulumi/kubernetes $SDK_V asks for plugin kubernetes $SDK_V, but the built plugin is $PLUGIN_V"
export PULUMI_HOME="$WORK/pulumi-home" PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
"$BIN/pulumi" plugin install resource kubernetes "$PLUGIN_V" --file "$BIN/pulumi-resource-kubernetes" >"$WORK/plugin-install.log" 2>&1 ||
  die "pulumi plugin install failed: $(cat "$WORK/plugin-install.log")"
"$BIN/pulumi" plugin ls >"$WORK/plugin-ls.txt" 2>&1 || die "pulumi plugin ls failed: $(cat "$WORK/plugin-ls.txt")"
grep -Eq "^kubernetes +resource +$PLUGIN_V " "$WORK/plugin-ls.txt" ||
  die "pulumi plugin ls does not list kubernetes $PLUGIN_V: $(cat "$WORK/plugin-ls.txt")"
log "pulumi plugin ls: $(grep -E '^kubernetes ' "$WORK/plugin-ls.txt" | tr -s ' ') (= @pulumi/kubernetes $SDK_V's plugin)"
unset PULUMI_HOME

# --- 3. a control plane on 127.0.0.1 ----------------------------------------------------
# Free TCP ports on 127.0.0.1, chosen by the kernel.
read -r P_ETCD P_PEER P_API P_KCM P_SCHED P_KWOK < <(node -e '
  const net = require("net");
  const ports = []; const servers = [];
  (function next() {
    if (ports.length === 6) { servers.forEach((s) => s.close()); console.log(ports.join(" ")); return; }
    const s = net.createServer().listen(0, "127.0.0.1", () => { ports.push(s.address().port); servers.push(s); next(); });
  })();')

PKI="$WORK/pki"
mkdir -p "$PKI"
# A CA; the API's serving certificate; client certificates for the admin, the
# controller manager, the scheduler and kwok; the service-account key pair.
ossl() { openssl "$@" >>"$WORK/openssl.log" 2>&1 || die "openssl $1 failed: $(tail -n5 "$WORK/openssl.log")"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=g8s-smoke-ca" -keyout "$PKI/ca.key" -out "$PKI/ca.crt"
cert() { # <name> <subject> [<extension lines>]
  printf '%s\n' "basicConstraints=CA:FALSE" "${3:-extendedKeyUsage=clientAuth}" >"$PKI/$1.ext"
  ossl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$PKI/$1.key" -out "$PKI/$1.csr"
  ossl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 1 \
    -extfile "$PKI/$1.ext" -out "$PKI/$1.crt"
}
cert apiserver "/CN=kube-apiserver" "$(printf 'extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc')"
cert admin "/O=system:masters/CN=g8s-smoke-admin"
cert kcm "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kwok "/O=system:masters/CN=kwok"
ossl genrsa -out "$PKI/sa.key" 2048
ossl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
log "certificates made with $(openssl version | cut -d' ' -f1-2)"

kubeconfig() { # <name> -> $WORK/<name>.kubeconfig
  cat >"$WORK/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: smoke
    cluster: { server: "https://127.0.0.1:$P_API", certificate-authority: "$PKI/ca.crt" }
users:
  - name: $1
    user: { client-certificate: "$PKI/$1.crt", client-key: "$PKI/$1.key" }
contexts:
  - name: smoke
    context: { cluster: smoke, user: $1 }
current-context: smoke
EOF
}
for u in admin kcm scheduler kwok; do kubeconfig "$u"; done

start() { # <name> <command...>: runs it in the background, logs to $WORK/<name>.log
  local name="$1"
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  log "$name started (pid $!)"
}
# wait_for <what> <seconds> <command...>: retries the command until it succeeds.
wait_for() {
  local what="$1" deadline=$(($(date +%s) + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
  log "$what"
}
api() { curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@"; }
fail_with_log() { die "$1; last lines of $2.log:
$(tail -n 20 "$WORK/$2.log")"; }

start etcd "$BIN/etcd" --name smoke --data-dir "$WORK/etcd" \
  --listen-client-urls "http://127.0.0.1:$P_ETCD" --advertise-client-urls "http://127.0.0.1:$P_ETCD" \
  --listen-peer-urls "http://127.0.0.1:$P_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$P_PEER" \
  --initial-cluster "smoke=http://127.0.0.1:$P_PEER" --log-level warn
wait_for "etcd healthy on 127.0.0.1:$P_ETCD" 60 sh -c "curl -sf http://127.0.0.1:$P_ETCD/health | grep -q '\"health\":\"true\"'" ||
  fail_with_log "etcd did not become healthy" etcd

start kube-apiserver "$BIN/kube-apiserver" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
  --secure-port "$P_API" --etcd-servers "http://127.0.0.1:$P_ETCD" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" --authorization-mode Node,RBAC --anonymous-auth=false \
  --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$PKI/sa.pub" \
  --service-account-signing-key-file "$PKI/sa.key" --service-cluster-ip-range 10.96.0.0/24
wait_for "kube-apiserver is ready" 120 \
  sh -c "[ \"\$(curl -sf --max-time 5 --cacert '$PKI/ca.crt' --cert '$PKI/admin.crt' --key '$PKI/admin.key' https://127.0.0.1:$P_API/readyz)\" = ok ]" ||
  fail_with_log "kube-apiserver /readyz did not answer ok" kube-apiserver
git_version="$(api "https://127.0.0.1:$P_API/version" | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>console.log(JSON.parse(s).gitVersion))')"
[ "$git_version" = "v$KUBE_V" ] || die "/version says gitVersion '$git_version', expected v$KUBE_V"
log "kube-apiserver /readyz = ok, /version gitVersion = $git_version"

start kube-controller-manager "$BIN/kube-controller-manager" --bind-address 127.0.0.1 --secure-port "$P_KCM" \
  --kubeconfig "$WORK/kcm.kubeconfig" --authentication-kubeconfig "$WORK/kcm.kubeconfig" \
  --authorization-kubeconfig "$WORK/kcm.kubeconfig" --leader-elect=false \
  --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" --use-service-account-credentials \
  --cert-dir "$WORK/kcm-certs"
start kube-scheduler "$BIN/kube-scheduler" --bind-address 127.0.0.1 --secure-port "$P_SCHED" \
  --kubeconfig "$WORK/scheduler.kubeconfig" --authentication-kubeconfig "$WORK/scheduler.kubeconfig" \
  --authorization-kubeconfig "$WORK/scheduler.kubeconfig" --leader-elect=false --cert-dir "$WORK/scheduler-certs"
# /healthz of both is in their always-allowed paths; their serving certificates are self-signed.
wait_for "kube-controller-manager /healthz = ok" 60 sh -c "[ \"\$(curl -skf https://127.0.0.1:$P_KCM/healthz)\" = ok ]" ||
  fail_with_log "kube-controller-manager /healthz did not answer ok" kube-controller-manager
wait_for "kube-scheduler /healthz = ok" 60 sh -c "[ \"\$(curl -skf https://127.0.0.1:$P_SCHED/healthz)\" = ok ]" ||
  fail_with_log "kube-scheduler /healthz did not answer ok" kube-scheduler

# kwok takes every node that carries its annotation and plays kubelet for it, as its
# stage configs say (node-initialize makes a node Ready; heartbeat keeps it so).
start kwok "$BIN/kwok" --kubeconfig "$WORK/kwok.kubeconfig" --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --config "$REPO/.tools/share/kwok/stages/node/fast/node-initialize.yaml" \
  --config "$REPO/.tools/share/kwok/stages/node/heartbeat/node-heartbeat.yaml" \
  --server-address "127.0.0.1:$P_KWOK"
api -X POST -H 'Content-Type: application/json' "https://127.0.0.1:$P_API/api/v1/nodes" -o /dev/null \
  -d '{"apiVersion":"v1","kind":"Node","metadata":{"name":"kwok-smoke-0","annotations":{"kwok.x-k8s.io/node":"fake"},"labels":{"type":"kwok"}},"spec":{"taints":[{"key":"kwok.x-k8s.io/node","value":"fake","effect":"NoSchedule"}]}}' ||
  die "creating the fake node failed"
node_ready() {
  api "https://127.0.0.1:$P_API/api/v1/nodes/kwok-smoke-0" |
    node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>{const c=(JSON.parse(s).status.conditions||[]).find((c)=>c.type==="Ready");process.exit(c&&c.status==="True"?0:1)})'
}
wait_for "kwok made node kwok-smoke-0 Ready" 60 node_ready || fail_with_log "the kwok node did not become Ready" kwok

stop_all
log "all processes stopped by PID; ok ($(($(date +%s) - T0)) s)"
