#!/usr/bin/env bash
# What `npm start` and `npm test` need on a fresh machine, installed only when missing:
# npm packages (npm ci when node_modules is older than package-lock.json), the toolchain built
# from pinned Go modules (npm run toolchain: only what is missing or whose inputs changed) and,
# with --tests, Debian's cloud-init (its schema validator checks the rendered node bootstrap).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
say() { printf '[provision %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund >&2
fi

npm run --silent toolchain >&2

if [ "${1:-}" = "--tests" ] && ! command -v cloud-init >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian's cloud-init (validator of the rendered bootstrap)"
    { apt-get update && apt-get install -y --no-install-recommends cloud-init; } >&2
  else
    say "cloud-init is missing: install it (sudo apt-get install cloud-init); the bootstrap tests need its validator"
    exit 1
  fi
fi
