import * as assert from "node:assert/strict";
import { ClusterSpecError, parseClusterSpec, type SpecIssue } from "../../../components/spec";

/** A minimal valid AWS spec; tests change one thing at a time. */
export function awsSpec(): Record<string, unknown> {
  return {
    id: "eu1prod",
    provider: "aws",
    baseDomain: "k8s.example.com",
    aws: { region: "eu-central-1" },
    nodePools: [{ name: "general", min: 3, max: 10 }],
    pki: { vault: { address: "https://vault.example.com" } },
  };
}

/** A minimal valid KVM spec. */
export function kvmSpec(): Record<string, unknown> {
  return {
    id: "edge7",
    provider: "kvm",
    baseDomain: "k8s.corp.internal",
    kvm: {},
    nodePools: [{ name: "default", count: 2 }],
    pki: { backend: "tls" },
  };
}

/** Asserts that parsing fails with exactly these issues, in this order. */
export function expectIssues(raw: unknown, expected: SpecIssue[]): void {
  try {
    parseClusterSpec(raw, "stacks/Pulumi.t.yaml");
  } catch (err) {
    assert.ok(err instanceof ClusterSpecError, `expected ClusterSpecError, got ${String(err)}`);
    assert.deepEqual(err.issues, expected);
    assert.equal(err.source, "stacks/Pulumi.t.yaml");
    return;
  }
  assert.fail("expected a ClusterSpecError, but the spec was accepted");
}

export function withChange(
  base: Record<string, unknown>,
  change: (spec: Record<string, any>) => void, // eslint-disable-line @typescript-eslint/no-explicit-any
): Record<string, unknown> {
  const copy = structuredClone(base);
  change(copy);
  return copy;
}
