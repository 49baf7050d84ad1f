/**
 * The URN of every resource the example stacks create, and the provider each custom resource
 * uses, pinned in test/fixtures/urns/<stack>.txt. A URN is a resource's identity in the state:
 * a changed name, type or parent replaces live infrastructure (an etcd volume, a subnet, a VM's
 * StatefulSet), and another provider resource replaces everything it manages. When a name must
 * change, keep the old URN with `aliases`, which this list does not see (it shows the new URN),
 * so review the alias together with the change of this file.
 *
 * Regenerate after an intended change: `G8S_UPDATE_URNS=1 npx mocha test/unit/urns.test.ts`.
 */
import * as assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { settle, type MockRecorder, type RecordedResource } from "./mocks";
import { mocksFor } from "./stacks";

const ROOT = path.resolve(__dirname, "../..");
const FIXTURES = path.join(ROOT, "test/fixtures/urns");

/**
 * The engine's URN of every recorded resource, `urn:pulumi:<stack>::g8s::<type chain>::<name>`.
 * The mock monitor qualifies a type by its parent's type only, so the chain (every ancestor's
 * type, `$`-joined, as the engine writes it) is rebuilt from the recorded parents.
 */
function engineUrns(stack: string, recorder: MockRecorder): Map<string, string> {
  const keyOf = (mockUrn: string) => {
    const [, , qualifiedType, ...name] = mockUrn.split("::");
    return `${qualifiedType.split("$").pop()}::${name.join("::")}`;
  };
  const byKey = new Map<string, RecordedResource>(recorder.resources.map((r) => [`${r.type}::${r.name}`, r]));
  const chain = (r: RecordedResource): string => {
    if (r.parent === undefined || r.parent === "") return r.type;
    const parent = byKey.get(keyOf(r.parent));
    if (parent === undefined) throw new Error(`${r.type} ${r.name}: parent ${r.parent} was not recorded`);
    return `${chain(parent)}$${r.type}`;
  };
  return new Map(
    recorder.resources.map(
      (r) => [`${r.type}::${r.name}`, `urn:pulumi:${stack}::g8s::${chain(r)}::${r.name}`] as const,
    ),
  );
}

/** One line per resource, sorted: its URN, and for a custom resource the URN of its provider. */
function identities(stack: string, recorder: MockRecorder): string[] {
  const urns = engineUrns(stack, recorder);
  const urnOf = (mockUrn: string) => {
    const [, , qualifiedType, ...name] = mockUrn.split("::");
    return urns.get(`${qualifiedType.split("$").pop()}::${name.join("::")}`) ?? `unrecorded ${mockUrn}`;
  };
  return recorder.resources
    .map((r) => {
      const urn = urns.get(`${r.type}::${r.name}`) ?? "";
      if (!r.custom || r.type.startsWith("pulumi:providers:")) return urn;
      // A provider reference is `<provider URN>::<provider id>`.
      const provider = r.provider ? urnOf(r.provider.split("::").slice(0, -1).join("::")) : "default";
      return `${urn} provider=${provider}`;
    })
    .sort();
}

describe("GuestCluster's resource identities (a changed URN replaces live infrastructure)", () => {
  for (const stack of ["eu1prod", "edge7"]) {
    it(`keeps every URN and provider of stacks/Pulumi.${stack}.yaml`, async () => {
      const recorder = mocksFor(stack);
      const { GuestCluster, parseStackFile } = await import("../../components");
      const source = `stacks/Pulumi.${stack}.yaml`;
      const { cluster: spec } = parseStackFile(readFileSync(path.join(ROOT, source), "utf8"), source);
      new GuestCluster(spec.id, { spec, now: new Date("2026-11-25T12:00:00Z") });
      await settle();
      const actual = identities(stack, recorder);
      const file = path.join(FIXTURES, `${stack}.txt`);
      if (process.env.G8S_UPDATE_URNS === "1") writeFileSync(file, `${actual.join("\n")}\n`);
      const pinned = readFileSync(file, "utf8").split("\n").filter(Boolean);
      const gone = pinned.filter((u) => !actual.includes(u));
      const added = actual.filter((u) => !pinned.includes(u));
      assert.deepEqual(
        { gone, added },
        { gone: [], added: [] },
        `${stack}: resources would be replaced (gone: deleted, added: created); keep the old names with ` +
          `aliases, or, if a replacement is intended, regenerate ${path.relative(ROOT, file)}`,
      );
      assert.equal(actual.length, pinned.length, `${stack}: a resource is registered twice`);
    });
  }
});
