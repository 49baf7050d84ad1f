#!/usr/bin/env bash
# Builds g8s's toolchain from pinned Go modules into <repo>/.tools (ignored by git):
#
#   pulumi             .tools/bin/pulumi, pulumi-language-nodejs   (tools/pulumi/build.sh)
#   etcd               .tools/bin/etcd                             (tools/etcd)
#   kubernetes         .tools/bin/kube-apiserver, kube-controller-manager, kube-scheduler
#   kwok               .tools/bin/kwok + .tools/share/kwok/stages/ (tools/kwok)
#   pulumi-kubernetes  .tools/bin/pulumi-resource-kubernetes       (tools/pulumi-kubernetes)
#   node-image         .tools/share/node-image/ (rootfs, disk, kernel) (tools/node-image/build.sh;
#                      root and debootstrap; takes the kubelet & co. above when they are built)
#
# and writes .tools/versions.json (what is built, which version, where).
#
# Usage: bash tools/build.sh [TOOL...]      (no TOOL: all of them; `npm run toolchain`)
#        bash tools/build.sh --list
# A tool is rebuilt only when one of its outputs is missing or its inputs changed: the
# sha256 of its go.mod, go.sum and our Go sources, this script and the Go version, kept
# in .tools/stamps/<tool>. FORCE=1 rebuilds anyway. Tools are compiled one after the
# other, never two at once (a compile peaks at ~4.6 GB), and a lock on .tools/ keeps two
# runs of this script from overlapping.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
TOOLS_OUT="$REPO/.tools"
BIN="$TOOLS_OUT/bin"
SHARE="$TOOLS_OUT/share"
STAMPS="$TOOLS_OUT/stamps"
# node-image last: it copies binaries and image archives that earlier tools build.
ALL_TOOLS=(pulumi etcd kubernetes kwok pulumi-kubernetes node-image)

T0="$(date +%s)"
log() { printf '[toolchain %s +%ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - T0))" "$*"; }
die() { printf '[toolchain %s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

# --- arguments ----------------------------------------------------------------
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${ALL_TOOLS[@]}"; exit 0; fi
if [ "$#" -eq 0 ]; then set -- "${ALL_TOOLS[@]}"; fi
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

# sha256 of everything a tool's build depends on: its folder's go.mod, go.sum, *.go,
# PLUGIN_VERSION; this script; the Go version and target.
input_hash() { # <tool dir>
  {
    echo "go=$GO_VERSION target=$GOOS_ARCH cgo=$CGO_ENABLED"
    (cd "$1" && find . -maxdepth 1 -type f \( -name go.mod -o -name go.sum -o -name '*.go' -o -name PLUGIN_VERSION \) |
      LC_ALL=C sort | while read -r f; do
      echo "== $f"
      cat "$f"
    done)
    echo "== build.sh"
    cat "$HERE/build.sh"
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
  hash="$(input_hash "$dir")"
  if up_to_date etcd "$hash" "$BIN/etcd"; then
    log "etcd $v: up to date"
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
  hash="$(input_hash "$dir")"
  if up_to_date kubernetes "$hash" "${outs[@]}"; then
    log "kubernetes $v: up to date"
    return
  fi
  log "kubernetes $v: downloading modules"
  (cd "$dir" && "$GO" mod download)
  # What upstream's hack/lib/version.sh stamps; `kubectl version` and the API's
  # /version need them. Commit and date are the release tag's, so builds are reproducible.
  local commit date major minor ldflags="-s -w" pkg
  commit="$(mod_origin k8s.io/kubernetes "$dir" Hash)"
  date="$(mod_origin k8s.io/kubernetes "$dir" Time)"
  major="${v#v}" && major="${major%%.*}"
  minor="${v#v*.}" && minor="${minor%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitCommit=${commit:-unknown} -X $pkg.gitTreeState=clean"
    ldflags+=" -X $pkg.buildDate=${date:-1970-01-01T00:00:00Z}"
  done
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
  hash="$(input_hash "$dir")"
  if up_to_date kwok "$hash" "$BIN/kwok" "$stages/pod/general/pod-ready.yaml"; then
    log "kwok $v: up to date"
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
  hash="$(input_hash "$dir")"
  if up_to_date pulumi-kubernetes "$hash" "$BIN/pulumi-resource-kubernetes"; then
    log "pulumi-kubernetes $v: up to date"
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

build_node-image() {
  # The node image keeps its own script, input hash and stamp (tools/node-image/README.md).
  local start
  start="$(date +%s)"
  bash "$HERE/node-image/build.sh" | sed -u 's/^/  /'
  log "node-image: done in $(($(date +%s) - start)) s"
}

# --- versions.json ----------------------------------------------------------------
# Every tool whose outputs are in place and whose stamp matches its inputs, so
# TypeScript code can read what is there (and the plugin version to install).
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
        built etcd "$(input_hash "$HERE/etcd")" "$BIN/etcd" || continue
        v="$(mod_version go.etcd.io/etcd/server/v3 "$HERE/etcd/go.mod")"
        entry="{ \"version\": \"${v#v}\", \"bin\": [\"bin/etcd\"] }"
        ;;
      kubernetes)
        built kubernetes "$(input_hash "$HERE/kubernetes")" "$BIN/kube-apiserver" || continue
        v="$(mod_version k8s.io/kubernetes "$HERE/kubernetes/go.mod")"
        entry="{ \"version\": \"${v#v}\", \"bin\": [\"bin/kube-apiserver\", \"bin/kube-controller-manager\", \"bin/kube-scheduler\"] }"
        ;;
      kwok)
        built kwok "$(input_hash "$HERE/kwok")" "$BIN/kwok" || continue
        v="$(mod_version sigs.k8s.io/kwok "$HERE/kwok/go.mod")"
        entry="{ \"version\": \"${v#v}\", \"bin\": [\"bin/kwok\"], \"stages\": \"share/kwok/stages\" }"
        ;;
      pulumi-kubernetes)
        built pulumi-kubernetes "$(input_hash "$HERE/pulumi-kubernetes")" "$BIN/pulumi-resource-kubernetes" || continue
        v="$(tr -d '[:space:]' <"$HERE/pulumi-kubernetes/PLUGIN_VERSION")"
        entry="{ \"version\": \"$v\", \"bin\": [\"bin/pulumi-resource-kubernetes\"], \"plugin\": { \"kind\": \"resource\", \"name\": \"kubernetes\", \"version\": \"$v\" } }"
        ;;
      node-image)
        bash "$HERE/node-image/build.sh" --check >/dev/null 2>&1 || continue
        v="$(sed -n 's/^NODE_IMAGE_KERNEL=//p' "$SHARE/node-image/image.env")"
        entry="{ \"version\": \"debian-bookworm\", \"kernel\": \"$v\", \"rootfs\": \"share/node-image/rootfs\", \"disk\": \"share/node-image/disk.qcow2\", \"vmlinuz\": \"share/node-image/vmlinuz\", \"initrd\": \"share/node-image/initrd.img\" }"
        ;;
      esac
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
  "build_$t"
done
write_versions
log "done: $* ($(($(date +%s) - T0)) s); versions in $TOOLS_OUT/versions.json"
