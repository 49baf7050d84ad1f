/** The cluster's bootstrap token: derived deterministically from a secret seed, or passed in. */
import { createHmac } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { BOOTSTRAP_TOKEN_RE } from "./constants";

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

/** A secret Output of the token derived from a secret seed (e.g. the service-account private key). */
export function bootstrapTokenOf(seed: pulumi.Input<string>, clusterId: string): pulumi.Output<string> {
  return pulumi.secret(pulumi.output(seed).apply((s) => bootstrapToken(s, clusterId)));
}
