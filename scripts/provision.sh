#!/usr/bin/env bash
# What `npm start` and `npm test` need on a fresh machine, installed only when missing:
# npm packages (npm ci when node_modules is older than package-lock.json), the compiled daemon
# and CLI (npm run build: skipped while dist/ matches the sources), the toolchain built
# from pinned Go modules and the node image (npm run toolchain: only what is missing or whose
# inputs changed; debootstrap and qemu-utils are installed first when missing) and,
# with --tests, Debian's cloud-init (its schema validator checks the rendered node bootstrap),
# prometheus (promtool tests the alert rules), faketime and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
say() { printf '[provision %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund >&2
fi

# The node image (tools/node-image) is built with debootstrap, mkfs.ext4 and qemu-img; its
# nodes boot under systemd-nspawn (g8s lab, test:lab).
if ! command -v debootstrap >/dev/null || ! command -v qemu-img >/dev/null || ! command -v systemd-nspawn >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    say "installing debootstrap, qemu-utils and systemd-container (the node image and its lab)"
    { apt-get update && apt-get install -y --no-install-recommends debootstrap e2fsprogs qemu-utils systemd-container; } >&2
  else
    say "missing: sudo apt-get install debootstrap e2fsprogs qemu-utils systemd-container (the node image and its lab)"
    exit 1
  fi
fi

# The daemon and CLI compiled to dist/ (bin/g8s.js runs them while they match the sources).
npm run --silent build >&2

npm run --silent toolchain >&2

# promtool tests the alert rules in monitoring/; libfaketime shifts the clock a renewal test's
# daemon sees.
if [ "${1:-}" = "--tests" ] && { ! command -v promtool >/dev/null || [ ! -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ]; }; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian's prometheus (promtool) and faketime (alert rule and renewal tests)"
    { apt-get update && apt-get install -y --no-install-recommends prometheus faketime; } >&2
  else
    say "missing: sudo apt-get install prometheus faketime (alert rule and renewal tests)"
    exit 1
  fi
fi

# PostgreSQL: the replicas test (test/scale) starts its own server on loopback as the shared
# backend. Only the binaries are wanted: a cluster the package creates and starts is stopped.
if [ "${1:-}" = "--tests" ] && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian's PostgreSQL (the shared backend of the replicas test)"
    { apt-get update && apt-get install -y --no-install-recommends postgresql; } >&2
    if command -v pg_lsclusters >/dev/null; then
      pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _ status _; do
        [ "$status" = online ] && pg_ctlcluster "$version" "$cluster" stop >&2 || true
      done
    fi
  else
    say "missing: sudo apt-get install postgresql (the replicas test's shared backend)"
    exit 1
  fi
fi

# Chromium: the status page's test loads it in Debian's headless browser (playwright-core).
if [ "${1:-}" = "--tests" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian's Chromium (the status page's browser test)"
    { apt-get update && apt-get install -y --no-install-recommends chromium; } >&2
  else
    say "missing: sudo apt-get install chromium (the status page's browser test)"
    exit 1
  fi
fi

if [ "${1:-}" = "--tests" ] && ! command -v cloud-init >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian's cloud-init (validator of the rendered bootstrap)"
    { apt-get update && apt-get install -y --no-install-recommends cloud-init; } >&2
  else
    say "cloud-init is missing: install it (sudo apt-get install cloud-init); the bootstrap tests need its validator"
    exit 1
  fi
fi
