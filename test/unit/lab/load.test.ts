import * as assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";
import { LabError, loadLabStack } from "../../../automation/lab/lab";
import { kvmSpec } from "../spec/helpers";

describe("g8s lab: the stack file it accepts", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "g8s-lab-load-"));
    mkdirSync(path.join(dir, "stacks"));
    writeFileSync(path.join(dir, "Pulumi.yaml"), "name: g8s\nruntime: nodejs\n");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (change: (raw: Record<string, unknown>) => void, folder = "stacks"): string => {
    const raw = kvmSpec();
    raw.kubernetes = { version: "1.34.12", cni: "flannel", packages: "image" };
    raw.pki = { backend: "local" };
    change(raw);
    const file = path.join(dir, folder, `Pulumi.${String(raw.id)}.yaml`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, stringify({ config: { "g8s:cluster": raw } }));
    return file;
  };
  const refused = (file: string, message: RegExp) =>
    assert.throws(
      () => loadLabStack(file),
      (err: unknown) => err instanceof LabError && message.test(err.message),
    );

  it("takes a KVM stack whose nodes need nothing from the network, and puts the lab beside the project", () => {
    const loaded = loadLabStack(write(() => {}));
    assert.equal(loaded.spec.id, "edge7");
    assert.equal(loaded.labDir, path.join(dir, ".g8s", "lab", "edge7"));
  });

  it("names the field and the fix for anything it cannot boot", () => {
    refused(
      write((raw) => (raw.kubernetes = { version: "1.34.12" })),
      /kubernetes\.packages is 'apt'.*set kubernetes\.packages: image/,
    );
    refused(
      write((raw) => (raw.pki = { backend: "tls" })),
      /pki\.backend is 'tls'.*set pki\.backend: local/,
    );
    refused(
      write(() => {}, "elsewhere"),
      /must be in the stacks\/ folder of a g8s project/,
    );
    refused(path.join(dir, "stacks", "Pulumi.none.yaml"), /no such file/);
  });
});
