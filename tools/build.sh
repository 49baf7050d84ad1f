#!/usr/bin/env bash
# Builds g8s's toolchain from pinned Go modules into <repo>/.tools (ignored by git):
#
#   pulumi             .tools/bin/pulumi, pulumi-language-nodejs   (tools/pulumi/build.sh)
#   etcd               .tools/bin/etcd                             (tools/etcd)
#   kubernetes         .tools/bin/kube-apiserver, kube-controller-manager, kube-scheduler
#   kubernetes-node    .tools/bin/kubelet, kubeadm, kubectl, kube-proxy (tools/kubernetes)
#   kubernetes-next    .tools/share/kubernetes-next/<version>/: the next minor's control plane,
#                      kube-proxy, kubelet and kubeadm, which clusters upgrade to (tools/kubernetes-next)
#   crictl             .tools/bin/crictl                           (tools/cri-tools)
#   kwok               .tools/bin/kwok + .tools/share/kwok/stages/ (tools/kwok)
#   helm               .tools/bin/helm                             (tools/helm: renders charts/g8s)
#   pulumi-kubernetes  .tools/bin/pulumi-resource-kubernetes       (tools/pulumi-kubernetes)
#   pause              .tools/share/node-bin/pause                 (pause.c of k8s.io/kubernetes)
#   coredns            .tools/share/node-bin/coredns               (tools/coredns)
#   flannel            .tools/share/node-bin/flanneld, install-conf (tools/flannel)
#   cni-plugins        .tools/share/cni/bin/bridge, host-local, loopback, portmap (tools/cni-plugins)
#   flannel-cni        .tools/share/cni/bin/flannel                (tools/flannel-cni, g8s's own)
#   kvm-device-plugin  .tools/share/kvm-device-plugin/: the binary, its image archive + images.json
#                      (tools/kvm-device-plugin, g8s's own; packed by tools/images)
#   node-images        .tools/share/node-images/*.tar + images.json (tools/images)
#   node-image         .tools/share/node-image/ (rootfs, disk, kernel) (tools/node-image/build.sh;
#                      root and debootstrap; takes the kubelet & co. above when they are built)
#   qemu-node          .tools/share/qemu-node/qemu-node.tar: g8s/qemu-node, the KVM platform's
#                      QEMU pod image with the node image's disk (tools/qemu-node/build.sh)
#
# and writes .tools/versions.json (what is built, which version, where).
#
# Usage: bash tools/build.sh [TOOL...]      (no TOOL: all of them; `npm run toolchain`)
#        bash tools/build.sh --list
# A tool is rebuilt only when one of its outputs is missing or its inputs changed: the
# sha256 of its folder's go.mod, go.sum, our Go sources and lists, its own build_<tool>
# function and the shared part of this script, and the Go version, kept in
# .tools/stamps/<tool>. FORCE=1 rebuilds anyway. Tools are compiled one after the other,
# never two at once (a compile peaks at ~4.6 GB), and a lock on .tools/ keeps two runs of
# this script from overlapping.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
TOOLS_OUT="$REPO/.tools"
BIN="$TOOLS_OUT/bin"
SHARE="$TOOLS_OUT/share"
STAMPS="$TOOLS_OUT/stamps"
# node-image after the tools whose binaries and image archives it copies; qemu-node last: it
# packs the node image's disk.
ALL_TOOLS=(pulumi etcd kubernetes kubernetes-node kubernetes-next crictl kwok helm s3 pulumi-kubernetes pause coredns flannel cni-plugins flannel-cni kvm-device-plugin node-images node-image qemu-node)
NODE_BIN="$SHARE/node-bin"
CNI_BIN="$SHARE/cni/bin"
NODE_IMAGES="$SHARE/node-images"
NEXT_OUT="$SHARE/kubernetes-next"

T0="$(date +%s)"
log() { printf '[toolchain %s +%ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - T0))" "$*"; }
die() { printf '[toolchain %s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

# --- arguments ----------------------------------------------------------------
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${ALL_TOOLS[@]}"; exit 0; fi
# Without arguments: every tool but qemu-node, which nothing in npm test or g8s lab uses (the lab
# runs its VM nodes with the host's QEMU); a host cluster with a real node needs it: name it.
if [ "$#" -eq 0 ]; then
  for t in "${ALL_TOOLS[@]}"; do [ "$t" = qemu-node ] || set -- "$@" "$t"; done
fi
for t in "$@"; do
  case " ${ALL_TOOLS[*]} " in
  *" $t "*) ;;
  *) die "unknown tool '$t' (known: ${ALL_TOOLS[*]})" ;;
  esac
done

# --- Go -------------------------------------------------------------------------
GO="$(command -v go || true)"
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
[ -n "$GO" ] || die "the Go toolchain is required (go >= 1.26.6): not on PATH and not at /usr/local/go/bin/go"
export PATH="$(dirname "$GO"):$PATH"
# Hermetic module mode: exactly what go.mod/go.sum pin, never edited, never a
# downloaded toolchain; no VCS stamping (the sources come from the module cache).
export GOFLAGS="-mod=readonly -buildvcs=false"
export GOTOOLCHAIN=local
export CGO_ENABLED="${CGO_ENABLED:-0}"
GO_VERSION="$("$GO" env GOVERSION)"
GOOS_ARCH="$("$GO" env GOOS)/$("$GO" env GOARCH)"

mkdir -p "$BIN" "$SHARE" "$STAMPS"
exec 9>"$TOOLS_OUT/.toolchain.lock"
if ! flock -n 9; then
  log "another toolchain build holds $TOOLS_OUT/.toolchain.lock: waiting for it"
  flock 9
fi

# --- helpers --------------------------------------------------------------------
# Version that go.mod $2 requires for module $1.
mod_version() {
  awk -v m="$1" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$2"
}

# Field $3 ("Time" or "Hash") of the module-proxy record of module $1 (run in module dir
# $2): the release's commit time and commit hash, for version stamps. Empty if unknown.
mod_origin() {
  local info
  info="$(cd "$2" && "$GO" mod download -json "$1" | awk -F'"' '$2 == "Info" { print $4 }')"
  [ -n "$info" ] && [ -f "$info" ] || return 0
  case "$3" in
  Time) sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info" ;;
  Hash) sed -n 's/.*"Hash":"\([0-9a-f]*\)".*/\1/p' "$info" ;;
  esac
}

# sha256 of everything tool $1's build depends on: the go.mod, go.sum, *.go, *.list and
# PLUGIN_VERSION of folder $2; its build_<tool> function and the shared code of this
# script (from "--- Go" to "--- tools": Go settings and helpers, not the list of tools),
# so adding a tool or changing one tool's steps rebuilds that tool only; the Go version
# and target; and any further inputs given as arguments $3....
input_hash() { # <tool> <tool dir> [extra input...]
  local tool="$1" dir="$2"
  shift 2
  {
    echo "go=$GO_VERSION target=$GOOS_ARCH cgo=$CGO_ENABLED"
    (cd "$dir" && find . -maxdepth 1 -type f \( -name go.mod -o -name go.sum -o -name '*.go' \
      -o -name '*.list' -o -name PLUGIN_VERSION \) | LC_ALL=C sort | while read -r f; do
      echo "== $f"
      cat "$f"
    done)
    echo "== build.sh"
    sed -n '/^# --- Go ---/,/^# --- tools ---/p' "$HERE/build.sh"
    declare -f "build_$tool"
    printf '== extra\n%s\n' "$@"
  } | sha256sum | cut -d' ' -f1
}

# built <tool> <hash> <output path>...: the stamp matches and every output exists.
built() {
  local tool="$1" hash="$2"
  shift 2
  [ -f "$STAMPS/$tool" ] && [ "$(cat "$STAMPS/$tool")" = "$hash" ] || return 1
  local f
  for f in "$@"; do [ -e "$f" ] || return 1; done
}
# up_to_date: built, and no FORCE=1.
up_to_date() { [ "${FORCE:-0}" != "1" ] && built "$@"; }

# Runs a compile and logs its wall time, CPU time and peak RSS (with GNU time, if present).
timed() { # <label> <command...>
  local label="$1" start stats
  shift
  start="$(date +%s)"
  stats="$(mktemp)"
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f '%U %S %M' -o "$stats" "$@" || { rm -f "$stats"; return 1; }
  else
    "$@" || { rm -f "$stats"; return 1; }
  fi
  local user="" sys="" rss="" cpu=""
  read -r user sys rss < <(tail -n1 "$stats") || true
  rm -f "$stats"
  [ -z "$rss" ] || cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%d", u + s }')"
  log "$label: $(($(date +%s) - start)) s${cpu:+ ($cpu s CPU), peak RSS $((rss / 1024)) MiB}"
}

size_of() { du -h "$1" | cut -f1; }

# version_ok <expected line> <command...>: the command's output has that exact line.
# (Output captured first: `cmd | grep -q` can fail under pipefail when grep exits early.)
version_ok() {
  local want="$1" out
  shift
  out="$("$@" 2>&1)" || die "$* failed: $out"
  grep -qxF -- "$want" <<<"$out" || die "$* does not report '$want': $out"
}

# go build into a temporary folder next to the outputs, then move into place, so a
# failed or interrupted build never leaves a half-written binary in .tools/bin.
STAGING=""
cleanup() { [ -z "$STAGING" ] || rm -rf "$STAGING"; }
trap cleanup EXIT
new_staging() {
  cleanup
  STAGING="$(mktemp -d "$BIN/.build.XXXXXX")"
}

# What upstream's hack/lib/version.sh stamps; `kubectl version` and the API's /version
# need them. Commit and date are the release tag's, so builds are reproducible.
kube_ldflags() { # <module dir> <version>
  local dir="$1" v="$2" commit date major minor ldflags="-s -w" pkg
  commit="$(mod_origin k8s.io/kubernetes "$dir" Hash)"
  date="$(mod_origin k8s.io/kubernetes "$dir" Time)"
  major="${v#v}" && major="${major%%.*}"
  minor="${v#v*.}" && minor="${minor%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitCommit=${commit:-unknown} -X $pkg.gitTreeState=clean"
    ldflags+=" -X $pkg.buildDate=${date:-1970-01-01T00:00:00Z}"
  done
  echo "$ldflags"
}

# go_tools <tool> <version> <module dir> <out dir> <ldflags> <name=package>...: compiles
# each package to <out dir>/<name> (staged, then moved into place), with the build tags
# of $GO_BUILD_TAGS if set.
go_tools() {
  local tool="$1" v="$2" dir="$3" out="$4" ldflags="$5" spec
  shift 5
  (cd "$dir" && "$GO" mod download)
  new_staging
  for spec in "$@"; do
    (cd "$dir" && timed "$tool $v: compiled ${spec%%=*}" "$GO" build -trimpath ${GO_BUILD_TAGS:+-tags "$GO_BUILD_TAGS"} \
      -o "$STAGING/${spec%%=*}" -ldflags "$ldflags" "${spec#*=}")
  done
  mkdir -p "$out"
  for spec in "$@"; do mv -f "$STAGING/${spec%%=*}" "$out/${spec%%=*}"; done
}

# --- tools ------------------------------------------------------------------------
# Each build_<tool> builds its outputs when they are missing or out of date.

build_pulumi() {
  # The Pulumi CLI keeps its own script and stamp (tools/pulumi/README.md).
  local start
  start="$(date +%s)"
  bash "$HERE/pulumi/build.sh" | sed 's/^/  /'
  log "pulumi: done in $(($(date +%s) - start)) s"
}

build_etcd() {
  local dir="$HERE/etcd" hash v sha
  v="$(mod_version go.etcd.io/etcd/server/v3 "$dir/go.mod")"
  hash="$(input_hash etcd "$dir")"
  if up_to_date etcd "$hash" "$BIN/etcd"; then
    log "etcd $v: cached"
    return
  fi
  log "etcd $v: downloading modules"
  (cd "$dir" && "$GO" mod download)
  # The proxy records no commit for etcd's tags: "unknown" unless it ever does.
  sha="$(mod_origin go.etcd.io/etcd/server/v3 "$dir" Hash)"
  sha="${sha:0:9}"
  new_staging
  log "etcd $v: compiling"
  (cd "$dir" && timed "etcd $v: compiled" "$GO" build -trimpath -o "$STAGING/etcd" \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${sha:-unknown}" .)
  mv -f "$STAGING/etcd" "$BIN/etcd"
  version_ok "etcd Version: ${v#v}" "$BIN/etcd" --version
  echo "$hash" >"$STAMPS/etcd"
  log "etcd $v: $(size_of "$BIN/etcd") in $BIN/etcd"
}

KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)
build_kubernetes() {
  local dir="$HERE/kubernetes" hash v outs=() b
  v="$(mod_version k8s.io/kubernetes "$dir/go.mod")"
  for b in "${KUBE_BINARIES[@]}"; do outs+=("$BIN/$b"); done
  hash="$(input_hash kubernetes "$dir")"
  if up_to_date kubernetes "$hash" "${outs[@]}"; then
    log "kubernetes $v: cached"
    return
  fi
  log "kubernetes $v: downloading modules"
  (cd "$dir" && "$GO" mod download)
  local ldflags
  ldflags="$(kube_ldflags "$dir" "$v")"
  new_staging
  for b in "${KUBE_BINARIES[@]}"; do
    log "kubernetes $v: compiling $b"
    (cd "$dir" && timed "kubernetes $v: compiled $b" "$GO" build -trimpath -o "$STAGING/$b" \
      -ldflags "$ldflags" "k8s.io/kubernetes/cmd/$b")
  done
  for b in "${KUBE_BINARIES[@]}"; do
    mv -f "$STAGING/$b" "$BIN/$b"
    version_ok "Kubernetes $v" "$BIN/$b" --version
  done
  echo "$hash" >"$STAMPS/kubernetes"
  for b in "${KUBE_BINARIES[@]}"; do log "kubernetes $v: $(size_of "$BIN/$b") in $BIN/$b"; done
}

build_kwok() {
  local dir="$HERE/kwok" hash v src stages="$SHARE/kwok/stages"
  v="$(mod_version sigs.k8s.io/kwok "$dir/go.mod")"
  hash="$(input_hash kwok "$dir")"
  if up_to_date kwok "$hash" "$BIN/kwok" "$stages/pod/general/pod-ready.yaml"; then
    log "kwok $v: cached"
    return
  fi
  log "kwok $v: downloading modules"
  (cd "$dir" && "$GO" mod download)
  new_staging
  log "kwok $v: compiling"
  (cd "$dir" && timed "kwok $v: compiled" "$GO" build -trimpath -o "$STAGING/kwok" \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$v" sigs.k8s.io/kwok/cmd/kwok)
  # kwok only simulates what its Stage objects describe; the module ships the stock
  # ones under kustomize/stage/. Keep each Stage document, in its folder
  # (node/fast/node-initialize.yaml, pod/general/pod-ready.yaml, ...).
  src="$(cd "$dir" && "$GO" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage"
  [ -d "$src" ] || die "kwok $v: no stage folder at $src"
  mkdir -p "$STAGING/stages"
  (cd "$src" && find . -name '*.yaml' -not -path '*/testdata/*' -print0 | LC_ALL=C sort -z |
    while IFS= read -r -d '' f; do
      if grep -q '^kind: Stage$' "$f"; then
        mkdir -p "$STAGING/stages/$(dirname "$f")"
        cp "$f" "$STAGING/stages/$f"
      fi
    done)
  chmod -R u+w "$STAGING/stages"
  mv -f "$STAGING/kwok" "$BIN/kwok"
  rm -rf "$stages"
  mkdir -p "$(dirname "$stages")"
  mv "$STAGING/stages" "$stages"
  version_ok "kwok version $v $GO_VERSION ($GOOS_ARCH)" "$BIN/kwok" --version
  echo "$hash" >"$STAMPS/kwok"
  log "kwok $v: $(size_of "$BIN/kwok") in $BIN/kwok, $(find "$stages" -name '*.yaml' | wc -l) stages in $stages"
}

build_pulumi-kubernetes() {
  local dir="$HERE/pulumi-kubernetes" hash mod v pin sdk src gen
  mod="github.com/pulumi/pulumi-kubernetes/provider/v4"
  v="$(tr -d '[:space:]' <"$dir/PLUGIN_VERSION")"
  # The plugin version must be the one the pinned @pulumi/kubernetes SDK asks for.
  pin="$(sed -n 's/^ *"@pulumi\/kubernetes": *"\([^"]*\)".*/\1/p' "$REPO/package.json")"
  [ "$pin" = "$v" ] || die "pulumi-kubernetes: package.json pins @pulumi/kubernetes '$pin' but" \
    "tools/pulumi-kubernetes/PLUGIN_VERSION is '$v'; they must name the same release (tools/README.md)"
  sdk="$REPO/node_modules/@pulumi/kubernetes/package.json"
  if [ -f "$sdk" ] && ! grep -q "\"version\": \"$v\"" "$sdk"; then
    log "WARNING: node_modules/@pulumi/kubernetes is not $v: run 'npm ci'"
  fi
  hash="$(input_hash pulumi-kubernetes "$dir")"
  if up_to_date pulumi-kubernetes "$hash" "$BIN/pulumi-resource-kubernetes"; then
    log "pulumi-kubernetes $v: cached"
    return
  fi
  log "pulumi-kubernetes $v: downloading modules ($mod $(mod_version "$mod" "$dir/go.mod"))"
  (cd "$dir" && "$GO" mod download)
  command -v node >/dev/null || die "pulumi-kubernetes: node is needed to stamp the schema version"
  # The module's schema and Terraform mapping, embedded by main.go from generated/
  # (ignored by git, removed again after the build): the schema gets "version": v.
  src="$(cd "$dir" && "$GO" list -m -f '{{.Dir}}' "$mod")/cmd/pulumi-resource-kubernetes"
  gen="$dir/generated"
  rm -rf "$gen"
  mkdir -p "$gen"
  node -e '
    const fs = require("fs");
    const [src, gen, version] = process.argv.slice(1);
    const schema = JSON.parse(fs.readFileSync(src + "/schema.json", "utf8"));
    schema.version = version;
    fs.writeFileSync(gen + "/schema.json", JSON.stringify(schema));
    const mapping = JSON.parse(fs.readFileSync(src + "/terraform-mapping.json", "utf8"));
    fs.writeFileSync(gen + "/terraform-mapping.json", JSON.stringify(mapping));
  ' "$src" "$gen" "$v"
  new_staging
  log "pulumi-kubernetes $v: compiling pulumi-resource-kubernetes (the slow one)"
  (cd "$dir" && timed "pulumi-kubernetes $v: compiled" "$GO" build -trimpath \
    -o "$STAGING/pulumi-resource-kubernetes" \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$v" .) ||
    { rm -rf "$gen"; die "building pulumi-resource-kubernetes failed"; }
  rm -rf "$gen"
  mv -f "$STAGING/pulumi-resource-kubernetes" "$BIN/pulumi-resource-kubernetes"
  version_ok "$v" "$BIN/pulumi-resource-kubernetes" --version
  echo "$hash" >"$STAMPS/pulumi-kubernetes"
  log "pulumi-kubernetes $v: $(size_of "$BIN/pulumi-resource-kubernetes") in $BIN/pulumi-resource-kubernetes" \
    "(install: pulumi plugin install resource kubernetes $v --file <it>)"
}

NODE_BINARIES=(kubelet kubeadm kubectl kube-proxy)
build_kubernetes-node() {
  local dir="$HERE/kubernetes" hash v outs=() b ldflags
  v="$(mod_version k8s.io/kubernetes "$dir/go.mod")"
  for b in "${NODE_BINARIES[@]}"; do outs+=("$BIN/$b"); done
  hash="$(input_hash kubernetes-node "$dir")"
  if up_to_date kubernetes-node "$hash" "${outs[@]}"; then
    log "kubernetes-node $v: cached"
    return
  fi
  (cd "$dir" && "$GO" mod download)
  ldflags="$(kube_ldflags "$dir" "$v")"
  new_staging
  for b in "${NODE_BINARIES[@]}"; do
    (cd "$dir" && timed "kubernetes-node $v: compiled $b" "$GO" build -trimpath -o "$STAGING/$b" \
      -ldflags "$ldflags" "k8s.io/kubernetes/cmd/$b")
  done
  for b in "${NODE_BINARIES[@]}"; do mv -f "$STAGING/$b" "$BIN/$b"; done
  version_ok "Kubernetes $v" "$BIN/kubelet" --version
  version_ok "Kubernetes $v" "$BIN/kube-proxy" --version
  version_ok "$v" "$BIN/kubeadm" version -o short
  version_ok "Client Version: $v" "$BIN/kubectl" version --client
  echo "$hash" >"$STAMPS/kubernetes-node"
  for b in "${NODE_BINARIES[@]}"; do log "kubernetes-node $v: $(size_of "$BIN/$b") in $BIN/$b"; done
}

# The next minor version, which a cluster of the version above upgrades to (`kubeadm upgrade`):
# everything a node of that version runs, in one folder named by the version.
NEXT_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm)
next_version() { mod_version k8s.io/kubernetes "$HERE/kubernetes-next/go.mod"; }
build_kubernetes-next() {
  local dir="$HERE/kubernetes-next" hash v outs=() b ldflags out
  v="$(next_version)"
  out="$NEXT_OUT/$v"
  for b in "${NEXT_BINARIES[@]}"; do outs+=("$out/$b"); done
  hash="$(input_hash kubernetes-next "$dir")"
  if up_to_date kubernetes-next "$hash" "${outs[@]}"; then
    log "kubernetes-next $v: cached"
    return
  fi
  (cd "$dir" && "$GO" mod download)
  ldflags="$(kube_ldflags "$dir" "$v")"
  new_staging
  for b in "${NEXT_BINARIES[@]}"; do
    (cd "$dir" && timed "kubernetes-next $v: compiled $b" "$GO" build -trimpath -o "$STAGING/$b" \
      -ldflags "$ldflags" "k8s.io/kubernetes/cmd/$b")
  done
  # One version at a time: an older next's folder goes.
  rm -rf "$NEXT_OUT"
  mkdir -p "$out"
  for b in "${NEXT_BINARIES[@]}"; do mv -f "$STAGING/$b" "$out/$b"; done
  version_ok "Kubernetes $v" "$out/kubelet" --version
  version_ok "$v" "$out/kubeadm" version -o short
  echo "$hash" >"$STAMPS/kubernetes-next"
  log "kubernetes-next $v: $(du -sh "$out" | cut -f1) in $out"
}

build_crictl() {
  local dir="$HERE/cri-tools" hash v
  v="$(mod_version sigs.k8s.io/cri-tools "$dir/go.mod")"
  hash="$(input_hash crictl "$dir")"
  if up_to_date crictl "$hash" "$BIN/crictl"; then
    log "crictl $v: cached"
    return
  fi
  go_tools crictl "$v" "$dir" "$BIN" "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$v" \
    crictl=sigs.k8s.io/cri-tools/cmd/crictl
  version_ok "crictl version $v" "$BIN/crictl" --version
  echo "$hash" >"$STAMPS/crictl"
  log "crictl $v: $(size_of "$BIN/crictl") in $BIN/crictl"
}

# Helm renders and lints the reconciler's chart (charts/g8s) in the tests.
build_helm() {
  local dir="$HERE/helm" hash v kv
  v="$(mod_version helm.sh/helm/v3 "$dir/go.mod")"
  hash="$(input_hash helm "$dir")"
  if up_to_date helm "$hash" "$BIN/helm"; then
    log "helm $v: cached"
    return
  fi
  # The Kubernetes version charts see without a cluster: its client-go's (v0.37 -> 1.37), as
  # helm's own Makefile stamps it; unstamped it says 1.20.
  kv="$(mod_version k8s.io/client-go "$dir/go.mod" | sed 's/^v0\.\([0-9]*\)\..*/\1/')"
  go_tools helm "$v" "$dir" "$BIN" "-s -w -X helm.sh/helm/v3/internal/version.version=$v \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kv \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kv" \
    helm=helm.sh/helm/v3/cmd/helm
  version_ok "$v" "$BIN/helm" version --template '{{.Version}}'
  echo "$hash" >"$STAMPS/helm"
  log "helm $v: $(size_of "$BIN/helm") in $BIN/helm"
}

# g8s-s3: the in-memory S3 store the tests of the s3:// backend run on loopback (tools/s3).
build_s3() {
  local dir="$HERE/s3" hash v
  v="$(mod_version github.com/johannesboyne/gofakes3 "$dir/go.mod")"
  hash="$(input_hash s3 "$dir")"
  if up_to_date s3 "$hash" "$BIN/g8s-s3"; then
    log "s3 (gofakes3 $v): cached"
    return
  fi
  go_tools s3 "$v" "$dir" "$BIN" "-s -w" g8s-s3=.
  if "$BIN/g8s-s3" --listen 0.0.0.0:0 2>/dev/null; then die "s3: g8s-s3 listened beyond loopback"; fi
  echo "$hash" >"$STAMPS/s3"
  log "s3 (gofakes3 $v): $(size_of "$BIN/g8s-s3") in $BIN/g8s-s3"
}

# The pause container's binary: pause.c of the pinned k8s.io/kubernetes module
# (build/pause/linux/), compiled as upstream's build/pause/Makefile does (gcc -Os -static).
build_pause() {
  local dir="$HERE/kubernetes" hash src tag
  command -v gcc >/dev/null || die "pause: gcc is needed to compile pause.c (apt-get install gcc libc6-dev)"
  hash="$(pause_hash)"
  (cd "$dir" && "$GO" mod download k8s.io/kubernetes)
  src="$(cd "$dir" && "$GO" list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause"
  tag="$(pause_tag "$src")"
  if up_to_date pause "$hash" "$NODE_BIN/pause"; then
    log "pause $tag: cached"
    return
  fi
  new_staging
  timed "pause $tag: compiled" gcc -Os -Wall -Werror -static "-DVERSION=v$tag" \
    -o "$STAGING/pause" "$src/linux/pause.c"
  strip "$STAGING/pause"
  mkdir -p "$NODE_BIN"
  mv -f "$STAGING/pause" "$NODE_BIN/pause"
  version_ok "pause.c v$tag" "$NODE_BIN/pause" -v
  echo "$hash" >"$STAMPS/pause"
  log "pause $tag: $(size_of "$NODE_BIN/pause") in $NODE_BIN/pause"
}
# pause's inputs: the k8s.io/kubernetes module (go.sum), the compiler and the static libc.
pause_hash() { input_hash pause "$HERE/kubernetes" "$(cc_version)"; }
# The C compiler and the libc that static binaries link.
cc_version() {
  command -v gcc >/dev/null || { echo "no gcc" && return; }
  echo "$(gcc --version | head -n1); $(ldd --version | head -n1)"
}
# The pause image tag upstream's Makefile in folder $1 builds (TAG ?= 3.10.1).
pause_tag() { sed -n 's/^TAG ?= *\([0-9.]*\)$/\1/p' "$1/Makefile"; }

build_coredns() {
  local dir="$HERE/coredns" hash v commit
  v="$(mod_version github.com/coredns/coredns "$dir/go.mod")"
  hash="$(input_hash coredns "$dir")"
  if up_to_date coredns "$hash" "$NODE_BIN/coredns"; then
    log "coredns $v: cached"
    return
  fi
  commit="$(mod_origin github.com/coredns/coredns "$dir" Hash)"
  go_tools coredns "$v" "$dir" "$NODE_BIN" \
    "-s -w -X github.com/coredns/coredns/coremain.GitCommit=${commit:0:7}" \
    coredns=github.com/coredns/coredns
  version_ok "CoreDNS-${v#v}" "$NODE_BIN/coredns" -version
  echo "$hash" >"$STAMPS/coredns"
  log "coredns $v: $(size_of "$NODE_BIN/coredns") in $NODE_BIN/coredns"
}

# flanneld, and flannel's install-conf (copies a file atomically: the flannel image's
# init step that puts the CNI plugins onto the node). flanneld links every backend, and
# on amd64 the UDP one is C (cgo): built as upstream's Makefile does, with cgo and
# linked statically; pure-Go name and user lookups (netgo, osusergo) keep glibc's NSS
# out of the static binary.
flannel_hash() { input_hash flannel "$HERE/flannel" "$(cc_version)"; }
build_flannel() {
  local dir="$HERE/flannel" hash v
  v="$(mod_version github.com/flannel-io/flannel "$dir/go.mod")"
  command -v gcc >/dev/null || die "flannel: gcc is needed for flanneld's UDP backend (apt-get install gcc libc6-dev)"
  hash="$(flannel_hash)"
  if up_to_date flannel "$hash" "$NODE_BIN/flanneld" "$NODE_BIN/install-conf"; then
    log "flannel $v: cached"
    return
  fi
  CGO_ENABLED=1 GO_BUILD_TAGS=netgo,osusergo go_tools flannel "$v" "$dir" "$NODE_BIN" \
    "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$v -extldflags=-static" \
    flanneld=github.com/flannel-io/flannel install-conf=github.com/flannel-io/flannel/cmd/install_conf
  version_ok "$v" "$NODE_BIN/flanneld" --version
  echo "$hash" >"$STAMPS/flannel"
  log "flannel $v: $(size_of "$NODE_BIN/flanneld") in $NODE_BIN/flanneld"
}

CNI_PLUGINS=(bridge=plugins/main/bridge host-local=plugins/ipam/host-local
  loopback=plugins/main/loopback portmap=plugins/meta/portmap)
build_cni-plugins() {
  local dir="$HERE/cni-plugins" hash v mod=github.com/containernetworking/plugins outs=() specs=() p
  v="$(mod_version "$mod" "$dir/go.mod")"
  for p in "${CNI_PLUGINS[@]}"; do
    outs+=("$CNI_BIN/${p%%=*}")
    specs+=("${p%%=*}=$mod/${p#*=}")
  done
  hash="$(input_hash cni-plugins "$dir")"
  if up_to_date cni-plugins "$hash" "${outs[@]}"; then
    log "cni-plugins $v: cached"
    return
  fi
  go_tools cni-plugins "$v" "$dir" "$CNI_BIN" \
    "-s -w -X $mod/pkg/utils/buildversion.BuildVersion=$v" "${specs[@]}"
  for p in "${CNI_PLUGINS[@]}"; do
    version_ok "CNI ${p%%=*} plugin $v" env -u CNI_COMMAND "$CNI_BIN/${p%%=*}"
  done
  echo "$hash" >"$STAMPS/cni-plugins"
  log "cni-plugins $v: $(du -ch "${outs[@]}" | tail -n1 | cut -f1) in $CNI_BIN"
}

# g8s's own flannel CNI plugin (tools/flannel-cni): tested, then built.
build_flannel-cni() {
  local dir="$HERE/flannel-cni" hash
  hash="$(input_hash flannel-cni "$dir")"
  if up_to_date flannel-cni "$hash" "$CNI_BIN/flannel"; then
    log "flannel-cni (g8s): cached"
    return
  fi
  (cd "$dir" && "$GO" mod download)
  local out
  out="$(cd "$dir" && "$GO" test -count=1 ./... 2>&1)" ||
    die "flannel-cni: go test failed (cd tools/flannel-cni && go test ./...): $out"
  log "flannel-cni (g8s): tests passed"
  go_tools flannel-cni "(g8s)" "$dir" "$CNI_BIN" "-s -w" flannel=.
  version_ok "$FLANNEL_CNI_ABOUT" env -u CNI_COMMAND "$CNI_BIN/flannel"
  echo "$hash" >"$STAMPS/flannel-cni"
  log "flannel-cni (g8s): $(size_of "$CNI_BIN/flannel") in $CNI_BIN/flannel"
}
FLANNEL_CNI_ABOUT="g8s flannel CNI plugin: bridge + host-local for this node's flannel subnet"

# g8s's KVM device plugin (tools/kvm-device-plugin): tested, built, and packed by tools/images
# into an image of that one static binary, g8s.local/kvm-device-plugin:<input hash, 12>, as a
# docker-archive with its images.json, for the host cluster's real node (automation/host).
KVM_DP_OUT="$SHARE/kvm-device-plugin"
KVM_DP_ABOUT="g8s kvm-device-plugin: devices.kubevirt.io/kvm and devices.kubevirt.io/tun"
build_kvm-device-plugin() {
  local dir="$HERE/kvm-device-plugin" hash out created
  hash="$(input_hash kvm-device-plugin "$dir" "$(cat "$HERE/images/"{go.mod,go.sum,*.go})")"
  if up_to_date kvm-device-plugin "$hash" "$KVM_DP_OUT/kvm-device-plugin" "$KVM_DP_OUT/images.json"; then
    log "kvm-device-plugin (g8s): cached"
    return
  fi
  (cd "$dir" && "$GO" mod download)
  out="$(cd "$dir" && "$GO" test -count=1 ./... 2>&1)" ||
    die "kvm-device-plugin: go test failed (cd tools/kvm-device-plugin && go test ./...): $out"
  log "kvm-device-plugin (g8s): tests passed"
  rm -rf "$KVM_DP_OUT.build"
  go_tools kvm-device-plugin "(g8s)" "$dir" "$KVM_DP_OUT.build" "-s -w" kvm-device-plugin=.
  version_ok "$KVM_DP_ABOUT" "$KVM_DP_OUT.build/kvm-device-plugin" -version
  (cd "$HERE/images" && "$GO" mod download)
  (cd "$HERE/images" && "$GO" build -trimpath -o "$STAGING/images" .)
  created="$(mod_origin k8s.io/kubelet "$dir" Time)"
  mkdir -p "$STAGING/out"
  mv "$KVM_DP_OUT.build/kvm-device-plugin" "$STAGING/out/kvm-device-plugin"
  rmdir "$KVM_DP_OUT.build"
  cat >"$STAGING/spec.json" <<SPEC
{
  "created": "${created:-1970-01-01T00:00:00Z}",
  "layers": { "plugin": { "files": [{ "path": "/kvm-device-plugin", "src": "$STAGING/out/kvm-device-plugin" }] } },
  "images": [{ "ref": "g8s.local/kvm-device-plugin:${hash:0:12}", "file": "kvm-device-plugin.tar",
    "layers": ["plugin"], "entrypoint": ["/kvm-device-plugin"] }]
}
SPEC
  timed "kvm-device-plugin (g8s): packed its image" "$STAGING/images" -spec "$STAGING/spec.json" -out "$STAGING/out"
  rm -rf "$KVM_DP_OUT"
  mv "$STAGING/out" "$KVM_DP_OUT"
  echo "$hash" >"$STAMPS/kvm-device-plugin"
  log "kvm-device-plugin (g8s): $(du -sh "$KVM_DP_OUT" | cut -f1) in $KVM_DP_OUT (image g8s.local/kvm-device-plugin:${hash:0:12})"
}

# --- node images ---------------------------------------------------------------------
# The images kubeadm deploys, and flannel's, packed by tools/images (go-containerregistry)
# into .tools/share/node-images/<name>.tar (docker-archive, which `ctr -n k8s.io images
# import` takes) with images.json (refs, files, sha256 and image digests).
IMAGE_INPUTS=(kubernetes kubernetes-node kubernetes-next etcd pause coredns flannel cni-plugins flannel-cni)
FLANNEL_IMAGE=g8s.local/flannel
IMAGE_PATH="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The input hash of a tool that node-images packs.
tool_hash() {
  case "$1" in
  pause) pause_hash ;;
  flannel) flannel_hash ;;
  kubernetes-node) input_hash kubernetes-node "$HERE/kubernetes" ;;
  crictl) input_hash crictl "$HERE/cri-tools" ;;
  *) input_hash "$1" "$HERE/$1" ;;
  esac
}

node_images_hash() {
  local t stamps=()
  for t in "${IMAGE_INPUTS[@]}"; do stamps+=("$t=$(cat "$STAMPS/$t" 2>/dev/null || true)"); done
  # The helpers below shape the images too.
  input_hash node-images "$HERE/images" "${stamps[@]}" \
    "$(declare -f debian_rootfs json_list node_image_refs node_images_spec etcd_image_tag next_version)"
}

# The etcd image's tag: the toolchain's etcd version, "-0" as registry.k8s.io/etcd's tags.
etcd_image_tag() { echo "$(mod_version go.etcd.io/etcd/server/v3 "$HERE/etcd/go.mod" | sed 's/^v//')-0"; }

# debian_rootfs <dir>: the packages of tools/images/debian.list (cached in .tools/cache/debs,
# checked against their pinned sha256), unpacked, with iptables pointing at its nf_tables
# variant as Debian's alternatives do by default.
debian_rootfs() {
  local root="$1" cache="$TOOLS_OUT/cache/debs" pkg ver sum deb tmp n
  mkdir -p "$cache" "$root"
  while read -r pkg ver sum; do
    case "$pkg" in '' | '#'*) continue ;; esac
    deb="$cache/${pkg}_${ver//:/%3a}.deb"
    if [ ! -f "$deb" ] || [ "$(sha256sum <"$deb" | cut -d' ' -f1)" != "$sum" ]; then
      tmp="$(mktemp -d "$cache/.download.XXXXXX")"
      (cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download "$pkg=$ver" >/dev/null 2>&1) || {
        rm -rf "$tmp"
        die "node-images: 'apt-get download $pkg=$ver' failed: is it still served (apt-cache policy $pkg)? Pin the served version and its sha256 in tools/images/debian.list"
      }
      mv "$tmp"/*.deb "$deb"
      rm -rf "$tmp"
      [ "$(sha256sum <"$deb" | cut -d' ' -f1)" = "$sum" ] ||
        die "node-images: $deb does not have the sha256 that tools/images/debian.list pins ($sum)"
    fi
    dpkg-deb -x "$deb" "$root"
  done <"$HERE/images/debian.list"
  for n in iptables ip6tables; do
    ln -sfn "$n-nft" "$root/usr/sbin/$n"
    ln -sfn "$n-nft-save" "$root/usr/sbin/$n-save"
    ln -sfn "$n-nft-restore" "$root/usr/sbin/$n-restore"
  done
  rm -rf "$root/usr/share/man" "$root/usr/share/info"
}

# json_list <item>...: ["item", ...] (items without quotes or backslashes).
json_list() {
  local sep="" out="[" i
  for i in "$@"; do
    out+="$sep\"$i\""
    sep=", "
  done
  echo "$out]"
}

# node_image_refs <kubernetes version> <kubeadm>: the images that kubeadm deploys, one a line,
# each checked against what the toolchain builds; etcd's is the toolchain's etcd. For the next
# version only its own four images: etcd's and CoreDNS's tags are pinned in g8s's kubeadm
# configuration (an upgrade keeps them) and its pause must be the same.
node_image_refs() {
  local v="$1" kubeadm="$2" ref want next=0
  [ "$kubeadm" = "$BIN/kubeadm" ] || next=1
  while read -r ref; do
    case "$ref" in
    registry.k8s.io/kube-apiserver:"$v" | registry.k8s.io/kube-controller-manager:"$v" | \
      registry.k8s.io/kube-scheduler:"$v" | registry.k8s.io/kube-proxy:"$v") echo "$ref" ;;
    registry.k8s.io/coredns/coredns:*)
      [ "$next" = 1 ] && continue
      want="$(mod_version github.com/coredns/coredns "$HERE/coredns/go.mod")"
      [ "${ref##*:}" = "$want" ] || die "node-images: kubeadm $v deploys $ref but tools/coredns pins $want"
      echo "$ref"
      ;;
    registry.k8s.io/pause:*)
      want="$("$NODE_BIN/pause" -v | sed -n 's/^pause.c v//p')"
      [ "${ref##*:}" = "$want" ] || die "node-images: kubeadm $v deploys $ref but pause.c is $want"
      [ "$next" = 1 ] || echo "$ref"
      ;;
    registry.k8s.io/etcd:*) [ "$next" = 1 ] || echo "registry.k8s.io/etcd:$(etcd_image_tag)" ;;
    *) die "node-images: kubeadm $v deploys $ref, which the toolchain does not build" ;;
    esac
  done < <("$kubeadm" config images list --kubernetes-version "$v")
}

# node_images_spec <debian root fs> <ref>...: tools/images' spec (JSON) on stdout.
node_images_spec() {
  local debian="$1" created t sep="" ref name layers entry user own file
  shift
  created="$(mod_origin k8s.io/kubernetes "$HERE/kubernetes" Time)"
  cat <<SPEC
{
  "created": "${created:-1970-01-01T00:00:00Z}",
  "layers": {
    "debian": { "dir": "$debian" },
    "base": { "files": [
      { "path": "/etc/passwd", "content": "root:x:0:0:root:/root:/sbin/nologin\\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\\n" },
      { "path": "/etc/group", "content": "root:x:0:\\nnogroup:x:65534:\\n" },
      { "path": "/etc/nsswitch.conf", "content": "hosts: files dns\\n" },
      { "path": "/tmp", "mode": "1777" }
    ] },
SPEC
  for t in kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd; do
    echo "    \"$t\": { \"files\": [{ \"path\": \"/usr/local/bin/$t\", \"src\": \"$BIN/$t\" }] },"
  done
  for t in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    echo "    \"$t-next\": { \"files\": [{ \"path\": \"/usr/local/bin/$t\", \"src\": \"$NEXT_OUT/$(next_version)/$t\" }] },"
  done
  echo "    \"coredns\": { \"files\": [{ \"path\": \"/coredns\", \"src\": \"$NODE_BIN/coredns\" }] },"
  echo "    \"pause\": { \"files\": [{ \"path\": \"/pause\", \"src\": \"$NODE_BIN/pause\" }] },"
  echo "    \"flannel\": { \"files\": ["
  echo "      { \"path\": \"/opt/bin/flanneld\", \"src\": \"$NODE_BIN/flanneld\" },"
  echo "      { \"path\": \"/opt/bin/install-conf\", \"src\": \"$NODE_BIN/install-conf\" },"
  for t in "${CNI_PLUGINS[@]%%=*}"; do
    echo "      { \"path\": \"/opt/cni/bin/$t\", \"src\": \"$CNI_BIN/$t\" },"
  done
  echo "      { \"path\": \"/opt/cni/bin/flannel\", \"src\": \"$CNI_BIN/flannel\" }"
  echo "    ] }"
  echo "  },"
  echo "  \"images\": ["
  for ref in "$@"; do
    name="${ref%:*}" && name="${name##*/}"
    user="" own="$name" file="$name"
    # The next version's images: their own binaries, their version in the file name.
    [ "${ref##*:}" != "$(next_version)" ] || own="$name-next" file="$name-${ref##*:}"
    case "$name" in
    kube-proxy) layers="\"debian\", \"base\", \"$own\"" entry="/usr/local/bin/$name" ;;
    kube-* | etcd) layers="\"base\", \"$own\"" entry="/usr/local/bin/$name" ;;
    coredns) layers='"base", "coredns"' entry=/coredns ;;
    # As upstream's pause image: nothing but /pause, run as 65535.
    pause) layers='"pause"' entry=/pause user=', "user": "65535:65535"' ;;
    flannel) layers='"debian", "base", "flannel"' entry=/opt/bin/flanneld ;;
    *) die "node-images: no layers for image $ref" ;;
    esac
    printf '%s    { "ref": "%s", "file": "%s.tar", "layers": [%s], "entrypoint": %s, "env": %s%s }' \
      "$sep" "$ref" "$file" "$layers" "$(json_list "$entry")" "$(json_list "$IMAGE_PATH")" "$user"
    sep=$',\n'
  done
  printf '\n  ]\n}\n'
}

build_node-images() {
  local dir="$HERE/images" hash v t refs=() next=() out
  v="$(mod_version k8s.io/kubernetes "$HERE/kubernetes/go.mod")"
  for t in "${IMAGE_INPUTS[@]}"; do
    built "$t" "$(tool_hash "$t")" ||
      die "node-images: $t is missing or out of date: build it first (bash tools/build.sh $t node-images)"
  done
  hash="$(node_images_hash)"
  if up_to_date node-images "$hash" "$NODE_IMAGES/images.json"; then
    log "node-images $v: cached"
    return
  fi
  (cd "$dir" && "$GO" mod download)
  out="$(cd "$dir" && "$GO" test -count=1 ./... 2>&1)" ||
    die "node-images: go test failed (cd tools/images && go test ./...): $out"
  new_staging
  (cd "$dir" && "$GO" build -trimpath -o "$STAGING/images" .)
  debian_rootfs "$STAGING/debian"
  mapfile -t refs < <(node_image_refs "$v" "$BIN/kubeadm")
  [ "${#refs[@]}" = 7 ] || die "node-images: expected the 7 images kubeadm $v deploys, got: ${refs[*]}"
  mapfile -t next < <(node_image_refs "$(next_version)" "$NEXT_OUT/$(next_version)/kubeadm")
  [ "${#next[@]}" = 4 ] || die "node-images: expected the 4 own images kubeadm $(next_version) deploys, got: ${next[*]}"
  refs+=("${next[@]}")
  refs+=("$FLANNEL_IMAGE:$(mod_version github.com/flannel-io/flannel "$HERE/flannel/go.mod")")
  node_images_spec "$STAGING/debian" "${refs[@]}" >"$STAGING/spec.json"
  mkdir -p "$STAGING/out"
  timed "node-images $v: packed ${#refs[@]} images" "$STAGING/images" -spec "$STAGING/spec.json" -out "$STAGING/out"
  rm -rf "$NODE_IMAGES"
  mkdir -p "$(dirname "$NODE_IMAGES")"
  mv "$STAGING/out" "$NODE_IMAGES"
  echo "$hash" >"$STAMPS/node-images"
  log "node-images $v: $(du -sh "$NODE_IMAGES" | cut -f1) in $NODE_IMAGES (etcd image: registry.k8s.io/etcd:$(etcd_image_tag))"
}

build_node-image() {
  # The node image keeps its own script, input hash and stamp (tools/node-image/README.md).
  local start
  start="$(date +%s)"
  bash "$HERE/node-image/build.sh" | sed -u 's/^/  /'
  log "node-image: done in $(($(date +%s) - start)) s"
}

build_qemu-node() {
  # Its own script, input hash and stamp as well (tools/qemu-node/README.md).
  local start
  start="$(date +%s)"
  bash "$HERE/qemu-node/build.sh" | sed -u 's/^/  /'
  log "qemu-node: done in $(($(date +%s) - start)) s"
}

# --- versions.json ----------------------------------------------------------------
# The outputs of a node tool, relative to .tools/, one a line.
tool_outputs() {
  case "$1" in
  kubernetes-node) printf 'bin/%s\n' "${NODE_BINARIES[@]}" ;;
  crictl) echo bin/crictl ;;
  pause | coredns) echo "share/node-bin/$1" ;;
  flannel) printf 'share/node-bin/%s\n' flanneld install-conf ;;
  cni-plugins) printf 'share/cni/bin/%s\n' "${CNI_PLUGINS[@]%%=*}" ;;
  flannel-cni) echo share/cni/bin/flannel ;;
  esac
}

# The version of a node tool, for versions.json.
tool_version() {
  local v
  case "$1" in
  kubernetes-node) v="$(mod_version k8s.io/kubernetes "$HERE/kubernetes/go.mod")" ;;
  crictl) v="$(mod_version sigs.k8s.io/cri-tools "$HERE/cri-tools/go.mod")" ;;
  pause) v="$("$NODE_BIN/pause" -v | sed -n 's/^pause.c v//p')" ;;
  coredns) v="$(mod_version github.com/coredns/coredns "$HERE/coredns/go.mod")" ;;
  flannel) v="$(mod_version github.com/flannel-io/flannel "$HERE/flannel/go.mod")" ;;
  cni-plugins) v="$(mod_version github.com/containernetworking/plugins "$HERE/cni-plugins/go.mod")" ;;
  flannel-cni) v=g8s ;; # ours, versioned with the repository
  esac
  echo "${v#v}"
}

write_versions() {
  local out="$TOOLS_OUT/versions.json" tmp first=1 t v entry
  tmp="$(mktemp "$TOOLS_OUT/.versions.XXXXXX")"
  {
    printf '{\n  "go": "%s",\n  "tools": {' "$GO_VERSION"
    for t in "${ALL_TOOLS[@]}"; do
      entry=""
      case "$t" in
      pulumi)
        [ -x "$BIN/pulumi" ] && [ -x "$BIN/pulumi-language-nodejs" ] || continue
        v="$(mod_version github.com/pulumi/pulumi/pkg/v3 "$HERE/pulumi/go.mod")"
        entry="{ \"version\": \"${v#v}\", \"bin\": [\"bin/pulumi\", \"bin/pulumi-language-nodejs\"] }"
        ;;
      etcd)
        built etcd "$(input_hash etcd "$HERE/etcd")" "$BIN/etcd" || continue
        v="$(mod_version go.etcd.io/etcd/server/v3 "$HERE/etcd/go.mod")"
        entry="{ \"version\": \"${v#v}\", \"bin\": [\"bin/etcd\"] }"
        ;;
      kubernetes)
        built kubernetes "$(input_hash kubernetes "$HERE/kubernetes")" "$BIN/kube-apiserver" || continue
        v="$(mod_version k8s.io/kubernetes "$HERE/kubernetes/go.mod")"
        entry="{ \"version\": \"${v#v}\", \"bin\": [\"bin/kube-apiserver\", \"bin/kube-controller-manager\", \"bin/kube-scheduler\"] }"
        ;;
      kubernetes-next)
        v="$(next_version)"
        built kubernetes-next "$(input_hash kubernetes-next "$HERE/kubernetes-next")" "$NEXT_OUT/$v/kubeadm" || continue
        entry="{ \"version\": \"${v#v}\", \"dir\": \"share/kubernetes-next/$v\", \"bin\": $(json_list "${NEXT_BINARIES[@]/#/share/kubernetes-next/$v/}") }"
        ;;
      kwok)
        built kwok "$(input_hash kwok "$HERE/kwok")" "$BIN/kwok" || continue
        v="$(mod_version sigs.k8s.io/kwok "$HERE/kwok/go.mod")"
        entry="{ \"version\": \"${v#v}\", \"bin\": [\"bin/kwok\"], \"stages\": \"share/kwok/stages\" }"
        ;;
      helm)
        built helm "$(input_hash helm "$HERE/helm")" "$BIN/helm" || continue
        v="$(mod_version helm.sh/helm/v3 "$HERE/helm/go.mod")"
        entry="{ \"version\": \"${v#v}\", \"bin\": [\"bin/helm\"] }"
        ;;
      s3)
        built s3 "$(input_hash s3 "$HERE/s3")" "$BIN/g8s-s3" || continue
        v="$(mod_version github.com/johannesboyne/gofakes3 "$HERE/s3/go.mod")"
        entry="{ \"version\": \"${v#v}\", \"bin\": [\"bin/g8s-s3\"] }"
        ;;
      pulumi-kubernetes)
        built pulumi-kubernetes "$(input_hash pulumi-kubernetes "$HERE/pulumi-kubernetes")" "$BIN/pulumi-resource-kubernetes" || continue
        v="$(tr -d '[:space:]' <"$HERE/pulumi-kubernetes/PLUGIN_VERSION")"
        entry="{ \"version\": \"$v\", \"bin\": [\"bin/pulumi-resource-kubernetes\"], \"plugin\": { \"kind\": \"resource\", \"name\": \"kubernetes\", \"version\": \"$v\" } }"
        ;;
      kubernetes-node | crictl | pause | coredns | flannel | cni-plugins | flannel-cni)
        local outs=()
        mapfile -t outs < <(tool_outputs "$t")
        built "$t" "$(tool_hash "$t")" "${outs[@]/#/$TOOLS_OUT/}" || continue
        entry="{ \"version\": \"$(tool_version "$t")\", \"bin\": $(json_list "${outs[@]}") }"
        ;;
      kvm-device-plugin)
        built kvm-device-plugin "$(input_hash kvm-device-plugin "$HERE/kvm-device-plugin" "$(cat "$HERE/images/"{go.mod,go.sum,*.go})")" \
          "$KVM_DP_OUT/kvm-device-plugin" "$KVM_DP_OUT/images.json" || continue
        entry="{ \"version\": \"g8s\", \"bin\": [\"share/kvm-device-plugin/kvm-device-plugin\"], \"manifest\": \"share/kvm-device-plugin/images.json\" }"
        ;;
      node-images)
        built node-images "$(node_images_hash)" "$NODE_IMAGES/images.json" || continue
        v="$(mod_version k8s.io/kubernetes "$HERE/kubernetes/go.mod")"
        entry="{ \"version\": \"${v#v}\", \"dir\": \"share/node-images\", \"manifest\": \"share/node-images/images.json\", \"etcdImageTag\": \"$(etcd_image_tag)\" }"
        ;;
      node-image)
        bash "$HERE/node-image/build.sh" --check >/dev/null 2>&1 || continue
        v="$(sed -n 's/^NODE_IMAGE_KERNEL=//p' "$SHARE/node-image/image.env")"
        entry="{ \"version\": \"debian-bookworm\", \"kernel\": \"$v\", \"rootfs\": \"share/node-image/rootfs\", \"disk\": \"share/node-image/disk.qcow2\", \"vmlinuz\": \"share/node-image/vmlinuz\", \"initrd\": \"share/node-image/initrd.img\" }"
        ;;
      qemu-node)
        bash "$HERE/qemu-node/build.sh" --check >/dev/null 2>&1 || continue
        v="$(sed -n 's/.*"g8s\/qemu-node:\([^"]*\)".*/\1/p' "$SHARE/qemu-node/images.json" | head -n1)"
        entry="{ \"version\": \"$v\", \"archive\": \"share/qemu-node/qemu-node.tar\", \"manifest\": \"share/qemu-node/images.json\" }"
        ;;
      esac
      # A tool without an entry here would write invalid JSON: leave it out.
      [ -n "$entry" ] || continue
      [ "$first" = 1 ] || printf ','
      first=0
      printf '\n    "%s": %s' "$t" "$entry"
    done
    printf '\n  }\n}\n'
  } >"$tmp"
  mv -f "$tmp" "$out"
}

# --- main ---------------------------------------------------------------------------
log "building: $* (with $GO_VERSION, $GOOS_ARCH, CGO_ENABLED=$CGO_ENABLED; outputs in $TOOLS_OUT)"
for t in "$@"; do
  stamp_before="$(stat -c %y "$STAMPS/$t" 2>/dev/null || true)"
  step_start="$(date +%s)"
  "build_$t"
  if [ "$t" != pulumi ] && [ "$(stat -c %y "$STAMPS/$t" 2>/dev/null || true)" != "$stamp_before" ]; then
    log "$t: built in $(($(date +%s) - step_start)) s"
  fi
done
write_versions
log "done: $* ($(($(date +%s) - T0)) s); versions in $TOOLS_OUT/versions.json"
