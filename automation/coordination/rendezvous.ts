/**
 * Rendezvous (highest random weight) hashing: each stack goes to the replica whose hash of
 * (replica, stack) is highest. Every replica computes the same owner from the same set of live
 * replicas, with no table to agree on, and a replica joining or leaving moves only the stacks it
 * takes or held (about 1/n of them), never the others.
 */
import { createHash } from "node:crypto";

/** The weight of `replica` for `stack`: the first 48 bits of sha256(replica NUL stack). */
export function weight(replica: string, stack: string): number {
  return createHash("sha256").update(replica).update("\0").update(stack).digest().readUIntBE(0, 6);
}

/** The owner of `stack` among `replicas` (undefined when there is none); ties go to the smaller id. */
export function ownerOf(stack: string, replicas: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const replica of replicas) {
    const w = weight(replica, stack);
    if (w > bestWeight || (w === bestWeight && best !== undefined && replica < best)) {
      best = replica;
      bestWeight = w;
    }
  }
  return best;
}
