#!/usr/bin/env bash
# npm start: the main job on the embedded default. Installs what is missing (npm packages, the
# toolchain built from pinned Go modules), starts the local host cluster (g8s host up) and runs
# the reconciler daemon over the example KVM stack(s) against it until Ctrl-C.
#
# Environment: G8S_START_STACKS (default edge8), PULUMI_CONFIG_PASSPHRASE(_FILE) and
# G8S_API_TOKEN(_FILE) (generated under .g8s/ when unset), G8S_PORT (default 9464).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
say() { printf '[start %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# 1-2. npm packages and the toolchain (a cold build takes about half an hour on 2 cores).
bash scripts/provision.sh

# 3. Secrets for the local state: generated once, kept in .g8s/ (mode 0600, ignored by git).
mkdir -p .g8s
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  [ -s .g8s/passphrase ] || (umask 077 && head -c 32 /dev/urandom | base64 > .g8s/passphrase)
  export PULUMI_CONFIG_PASSPHRASE_FILE="$PWD/.g8s/passphrase"
fi
if [ -z "${G8S_API_TOKEN:-}" ] && [ -z "${G8S_API_TOKEN_FILE:-}" ]; then
  [ -s .g8s/api-token ] || (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '/+=' > .g8s/api-token)
  export G8S_API_TOKEN_FILE="$PWD/.g8s/api-token"
fi

# 4. The host cluster; its last line is the kubeconfig path.
say "host cluster (g8s host up)"
KUBECONFIG="$(node bin/g8s.js host up | tail -n 1)"
export KUBECONFIG

# 5. The daemon, in the foreground: Ctrl-C (SIGINT) stops it cleanly.
port="${G8S_PORT:-9464}"
stacks="${G8S_START_STACKS:-edge8}"
say "reconciling ${stacks} against the host cluster (kubectl --kubeconfig ${KUBECONFIG} get all -A)"
say "status: http://127.0.0.1:${port}/api/stacks   (npx g8s status; Ctrl-C stops; npx g8s host down stops the host)"
exec bin/g8s.js daemon --stacks "$stacks" --offline --port "$port"
