import * as assert from "node:assert/strict";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { driftFromEvents } from "../../../automation/engine";

function pre(op: string, urn: string, diffs?: string[]): EngineEvent {
  return {
    sequence: 1,
    timestamp: 0,
    resourcePreEvent: { metadata: { op, urn, type: urn.split("::")[2], provider: "", diffs } },
  } as unknown as EngineEvent;
}

function preWithState(op: string, urn: string, desired: object, actual: object): EngineEvent {
  return {
    sequence: 1,
    timestamp: 0,
    resourcePreEvent: {
      metadata: { op, urn, type: "t", provider: "", old: { outputs: actual }, new: { inputs: desired } },
    },
  } as unknown as EngineEvent;
}

describe("drift from engine events", () => {
  it("derives changed property names from state when the provider names none, never values", () => {
    const [drift] = driftFromEvents([
      preWithState(
        "update",
        "urn:pulumi:s::p::t::a",
        { __provider: "code", content: "desired", dir: "/d", secret: "s3cr3t" },
        { __provider: "other", content: "hand edit", dir: "/d", secret: "old" },
      ),
    ]);
    assert.deepEqual(drift.keys, ["content", "secret"]);
    assert.doesNotMatch(JSON.stringify(drift), /s3cr3t|hand edit|desired/);
  });

  it("keeps changes with their property names and drops same/refresh/read steps", () => {
    const drift = driftFromEvents([
      pre("refresh", "urn:pulumi:s::p::t:index:R::a"),
      pre("same", "urn:pulumi:s::p::t:index:R::b"),
      pre("update", "urn:pulumi:s::p::t:index:R::a", ["content", "mode"]),
      pre("create", "urn:pulumi:s::p::t:index:R::c"),
      pre("read", "urn:pulumi:s::p::t:index:R::d"),
    ]);
    assert.deepEqual(drift, [
      { urn: "urn:pulumi:s::p::t:index:R::a", type: "t:index:R", name: "a", op: "update", keys: ["content", "mode"] },
      { urn: "urn:pulumi:s::p::t:index:R::c", type: "t:index:R", name: "c", op: "create", keys: [] },
    ]);
  });

  it("reports a replaced resource once, as replace, with every changed property", () => {
    const drift = driftFromEvents([
      pre("create-replacement", "urn:pulumi:s::p::t::x", ["dir"]),
      pre("replace", "urn:pulumi:s::p::t::x", ["dir", "key"]),
      pre("delete-replaced", "urn:pulumi:s::p::t::x"),
    ]);
    assert.deepEqual(
      drift.map((d) => [d.op, d.keys]),
      [["replace", ["dir", "key"]]],
    );
  });
});
