import * as assert from "node:assert/strict";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { driftFromEvents, previewResourcesFromEvents } from "../../../automation/engine";

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

  it("keeps changes with their property names and drops same/refresh/read steps and providers", () => {
    const drift = driftFromEvents([
      pre("refresh", "urn:pulumi:s::p::t:index:R::a"),
      pre("same", "urn:pulumi:s::p::t:index:R::b"),
      pre("update", "urn:pulumi:s::p::t:index:R::a", ["content", "mode"]),
      pre("create", "urn:pulumi:s::p::t:index:R::c"),
      pre("read", "urn:pulumi:s::p::t:index:R::d"),
      pre("update", "urn:pulumi:s::p::pulumi:providers:pulumi-nodejs::default", ["g8s:reconcile"]),
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

describe("preview resources from engine events", () => {
  const step = (op: string, name: string, state?: object): EngineEvent =>
    ({
      sequence: 1,
      timestamp: 0,
      resourcePreEvent: {
        metadata: { op, urn: `urn:pulumi:s::p::t::${name}`, type: "t", provider: "", new: state },
      },
    }) as unknown as EngineEvent;

  it("keeps every resource the update leaves (new inputs, protect, provider) and drops deletions", () => {
    const resources = previewResourcesFromEvents([
      step("same", "kept", {
        inputs: { a: 1 },
        protect: true,
        provider: "urn:pulumi:s::p::pulumi:providers:aws::p::id",
        parent: "",
      }),
      step("update", "changed", { inputs: { a: 2 } }),
      step("delete", "gone", { inputs: { a: 3 } }),
      step("refresh", "refreshed", { inputs: { a: 4 } }),
    ]);
    assert.deepEqual(resources, [
      {
        urn: "urn:pulumi:s::p::t::kept",
        type: "t",
        name: "kept",
        props: { a: 1 },
        protect: true,
        provider: "urn:pulumi:s::p::pulumi:providers:aws::p::id",
        parent: undefined,
      },
      {
        urn: "urn:pulumi:s::p::t::changed",
        type: "t",
        name: "changed",
        props: { a: 2 },
        protect: false,
        provider: undefined,
        parent: undefined,
      },
    ]);
  });
});
