#!/usr/bin/env bash
# Builds the pinned Pulumi CLI (`pulumi`) and Node.js language host
# (`pulumi-language-nodejs`) from Go modules into <repo>/.tools/bin, and links
# the dynamic-provider plugin script from node_modules next to them.
#
# Usage: bash tools/pulumi/build.sh   (or: npm run toolchain)
# Rebuilds only when the binaries are missing or the inputs changed (go.mod,
# go.sum, this script, the Go version). FORCE=1 forces a rebuild.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
HOST_DIR="$HERE/nodejs-host"
OUT="$REPO/.tools/bin"
STAMP="$OUT/.stamp"

log() { printf '[toolchain %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[toolchain %s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

# --- Go ---------------------------------------------------------------------
GO="$(command -v go || true)"
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then
  GO=/usr/local/go/bin/go
fi
[ -n "$GO" ] || die "the Go toolchain is required (go >= 1.26.6): not on PATH and not at /usr/local/go/bin/go"

# --- pinned versions: read from the go.mod files (the single source) ---------
# Prints the version required for module $1 in go.mod file $2.
mod_version() {
  awk -v m="$1" '
    $1 == m { print $2; exit }
    $1 == "require" && $2 == m { print $3; exit }
  ' "$2"
}
PULUMI_VERSION="$(mod_version github.com/pulumi/pulumi/pkg/v3 "$HERE/go.mod")"
HOST_VERSION="$(mod_version github.com/pulumi/pulumi/sdk/v3 "$HOST_DIR/go.mod")"
[ -n "$PULUMI_VERSION" ] || die "cannot read the github.com/pulumi/pulumi/pkg/v3 version from $HERE/go.mod"
[ -n "$HOST_VERSION" ] || die "cannot read the github.com/pulumi/pulumi/sdk/v3 version from $HOST_DIR/go.mod"

GO_VERSION="$("$GO" env GOVERSION)"
INPUT_HASH="$(
  {
    echo "pulumi=$PULUMI_VERSION host=$HOST_VERSION go=$GO_VERSION"
    cat "$HERE/go.mod" "$HERE/go.sum" "$HOST_DIR/go.mod" "$HOST_DIR/go.sum" "$HERE/build.sh"
  } | sha256sum | cut -d' ' -f1
)"

# --- build (only when needed) ------------------------------------------------
up_to_date() {
  [ "${FORCE:-0}" != "1" ] &&
    [ -x "$OUT/pulumi" ] && [ -x "$OUT/pulumi-language-nodejs" ] &&
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$INPUT_HASH" ]
}

if up_to_date; then
  log "pulumi $PULUMI_VERSION already built in $OUT (up to date)"
else
  log "building pulumi $PULUMI_VERSION + pulumi-language-nodejs (from sdk $HOST_VERSION) with $GO_VERSION into $OUT"
  log "a cold build (empty Go caches) downloads ~330 MB of Go modules (1.8 GB unpacked) and takes ~7 minutes on 2 cores"
  mkdir -p "$OUT"
  rm -f "$STAMP"
  # Hermetic module mode: resolve exactly what go.mod/go.sum pin, never edit them.
  export GOFLAGS="-mod=readonly -buildvcs=false"
  export CGO_ENABLED="${CGO_ENABLED:-0}"
  TMP_OUT="$(mktemp -d "$OUT/.build.XXXXXX")"
  trap 'rm -rf "$TMP_OUT"' EXIT

  log "step 1/4: downloading Go modules for the CLI"
  (cd "$HERE" && "$GO" mod download) || die "go mod download failed in $HERE"
  log "step 2/4: compiling pulumi (the slow step)"
  (cd "$HERE" && "$GO" build -trimpath \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
      -o "$TMP_OUT/" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) || die "building pulumi failed"
  log "step 3/4: downloading modules and compiling pulumi-language-nodejs"
  (cd "$HOST_DIR" && "$GO" mod download && "$GO" build -trimpath \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$HOST_VERSION" \
      -o "$TMP_OUT/" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs) ||
    die "building pulumi-language-nodejs failed"
  log "step 4/4: installing into $OUT"
  mv -f "$TMP_OUT/pulumi" "$TMP_OUT/pulumi-language-nodejs" "$OUT/"
  got="$(PULUMI_SKIP_UPDATE_CHECK=true "$OUT/pulumi" version)"
  [ "$got" = "$PULUMI_VERSION" ] || die "built pulumi reports version '$got', expected '$PULUMI_VERSION'"
  echo "$INPUT_HASH" >"$STAMP"
  log "built: $(du -h "$OUT/pulumi" | cut -f1) pulumi, $(du -h "$OUT/pulumi-language-nodejs" | cut -f1) pulumi-language-nodejs"
fi

# --- plugin scripts shipped in npm packages -----------------------------------
# The engine looks for these "bundled" plugins next to the pulumi binary.
# Always (re)checked, so running this after `npm ci` fixes a missing link.
link_script() { # <package dir under node_modules> <script name>
  local src="$REPO/node_modules/$1/$2"
  if [ -f "$src" ]; then
    ln -sfn "$src" "$OUT/$2"
    log "linked $OUT/$2 -> node_modules/$1/$2"
  elif [ -L "$OUT/$2" ] && [ ! -e "$OUT/$2" ]; then
    rm -f "$OUT/$2" # dangling link from an older node_modules
  fi
}
if [ -d "$REPO/node_modules/@pulumi/pulumi" ]; then
  link_script @pulumi/pulumi pulumi-resource-pulumi-nodejs
  link_script @pulumi/pulumi pulumi-analyzer-policy
  link_script @pulumi/policy pulumi-analyzer-policy
else
  log "WARNING: $REPO/node_modules/@pulumi/pulumi is missing: run 'npm ci' first, then this script again," \
    "to link pulumi-resource-pulumi-nodejs (needed by dynamic providers)"
fi

log "done: pulumi $PULUMI_VERSION in $OUT (add it to PATH)"
