/**
 * The cluster's bootstrap token: derived deterministically from a secret seed of its own (a random
 * secret GuestCluster keeps in the state), and the masters' script that keeps it valid in the
 * cluster with a finite TTL.
 */
import { createHmac } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import {
  BOOTSTRAP_TOKEN_DESCRIPTION,
  BOOTSTRAP_TOKEN_PATH,
  BOOTSTRAP_TOKEN_RE,
  BOOTSTRAP_TOKEN_TTL_HOURS,
  KUBERNETES_DIR,
} from "./constants";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/**
 * `[a-z0-9]{6}.[a-z0-9]{16}` from HMAC-SHA256(seed, "g8s-bootstrap-token/<clusterId>"): the same
 * seed always gives the same token (no drift), different clusters never share one, and the seed
 * cannot be recovered from the token. Rejection sampling keeps the characters uniform.
 */
export function bootstrapToken(seed: string, clusterId: string): string {
  if (seed.length < 16) throw new RangeError("bootstrap token seed must be at least 16 characters of secret material");
  const chars: string[] = [];
  for (let counter = 0; chars.length < 22; counter++) {
    const block = createHmac("sha256", seed).update(`g8s-bootstrap-token/${clusterId}/${counter}`).digest();
    for (const byte of block) {
      if (byte < 252 && chars.length < 22) chars.push(ALPHABET[byte % 36]);
    }
  }
  return `${chars.slice(0, 6).join("")}.${chars.slice(6).join("")}`;
}

/** The problem with a token passed in, or undefined. */
export function checkBootstrapToken(token: string): string | undefined {
  return BOOTSTRAP_TOKEN_RE.test(token)
    ? undefined
    : "bootstrap token must match [a-z0-9]{6}.[a-z0-9]{16} (kubeadm's format); the value is not shown because it is a secret";
}

/**
 * A secret Output of the token derived from a secret seed: a random secret made for it, never a
 * key with another purpose (the service-account key was the seed until this changed: a worker
 * holding the token then held a value derived from the key that signs every service-account token).
 */
export function bootstrapTokenOf(seed: pulumi.Input<string>, clusterId: string): pulumi.Output<string> {
  return pulumi.secret(pulumi.output(seed).apply((s) => bootstrapToken(s, clusterId)));
}

/**
 * `g8s-bootstrap-token` (every master; run by the first master after `kubeadm init` and by every
 * master's secret sync): keeps the delivered token valid in the cluster. Creates it when missing,
 * re-creates it once less than half its TTL remains (`kubeadm token create` refuses an id that
 * exists, so it deletes first; a join in that instant fails and retries), and revokes at once
 * g8s's tokens of any other id (a token of an earlier seed) and tokens without a description: the
 * one `kubeadm init` always makes (24 h, a random value g8s never delivered, which init would
 * print into the cloud-init log but for `--skip-token-print`). Tokens someone made with a
 * description of their own are left alone. Never prints the token.
 */
export const BOOTSTRAP_TOKEN_SCRIPT = [
  "#!/bin/bash",
  "# g8s-bootstrap-token: keep this cluster's bootstrap token valid (TTL, renewal, revocation). Written by g8s.",
  "set -euo pipefail",
  `ttl_hours=${BOOTSTRAP_TOKEN_TTL_HOURS}`,
  "renew_below=$((ttl_hours * 3600 / 2))",
  `description="${BOOTSTRAP_TOKEN_DESCRIPTION}"`,
  `k() { kubectl --kubeconfig ${KUBERNETES_DIR}/admin.conf -n kube-system "$@"; }`,
  `adm() { kubeadm "$@" --kubeconfig ${KUBERNETES_DIR}/admin.conf; }`,
  `token="$(cat ${BOOTSTRAP_TOKEN_PATH})"`,
  'id="${token%%.*}"',
  'ours="$(printf %s "$description" | base64)"',
  "k get secrets --field-selector type=bootstrap.kubernetes.io/token \\",
  `  -o jsonpath='{range .items[*]}{.metadata.name} {.data.description}{"\\n"}{end}' |`,
  "  while read -r name desc; do",
  '    { [ "$desc" = "$ours" ] || [ -z "$desc" ]; } && [ "$name" != "bootstrap-token-$id" ] || continue',
  '    old="${name#bootstrap-token-}"',
  '    if adm token delete "$old" >/dev/null; then',
  '      echo "g8s-bootstrap-token: revoked token $old (not the delivered one)"',
  "    else",
  '      echo "g8s-bootstrap-token: could not revoke token $old" >&2',
  "    fi",
  "  done",
  'expiration="$(k get secret "bootstrap-token-$id" --ignore-not-found -o jsonpath=\'{.data.expiration}\' | base64 -d)"',
  'if [ -n "$expiration" ] && [ $(($(date -d "$expiration" +%s) - $(date +%s))) -gt "$renew_below" ]; then',
  "  exit 0",
  "fi",
  'adm token delete "$id" >/dev/null 2>&1 || true',
  'adm token create "$token" --ttl "${ttl_hours}h" --description "$description" >/dev/null',
  'echo "g8s-bootstrap-token: token $id valid for ${ttl_hours}h"',
  "",
].join("\n");
