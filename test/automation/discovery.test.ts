import * as assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { ProjectStackSource } from "../../automation/reconciler/discovery";

describe("stack discovery", () => {
  let dir: string;
  let backend: string[];
  let source: ProjectStackSource;
  const write = (name: string, text: string) => writeFileSync(path.join(dir, "stacks", name), text);

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "g8s-discovery-"));
    mkdirSync(path.join(dir, "stacks"));
    writeFileSync(path.join(dir, "Pulumi.yaml"), "name: store\nruntime: nodejs\nstackConfigDir: stacks\n");
    backend = [];
    source = new ProjectStackSource({
      projectDir: dir,
      listBackendStacks: async () => backend,
      reconcileDefaults: { mode: "detect", interval: "2m" },
      specChecks: false,
    });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("reads each stack file's reconcile settings, filling gaps from the daemon's defaults", async () => {
    write("Pulumi.a.yaml", "config:\n  store:dir: /x\n  g8s:reconcile: { mode: correct }\n");
    write("Pulumi.b.yaml", "config:\n  store:dir: /y\n  g8s:reconcile: { interval: 30s }\n  g8s:decommission: b\n");
    write("notes.txt", "not a stack");
    const found = await source.discover();
    assert.deepEqual(
      found.map((s) => [s.name, s.settings]),
      [
        ["a", { mode: "correct", intervalSeconds: 120, decommission: false }],
        ["b", { mode: "detect", intervalSeconds: 30, decommission: true }],
      ],
    );
  });

  it("reports a broken file as invalid with its located problems", async () => {
    write("Pulumi.a.yaml", "config:\n  g8s:reconcile: { mode: fix }\n");
    const [a] = await source.discover();
    assert.equal(a.settings, undefined);
    assert.equal(a.error, "stacks/Pulumi.a.yaml: g8s:reconcile.mode: must be one of correct, detect, off (got 'fix')");
  });

  it("reports backend stacks without a file as orphans", async () => {
    write("Pulumi.a.yaml", "config: {}\n");
    backend = ["a", "gone"];
    const found = await source.discover({ includeBackend: true });
    assert.deepEqual(
      found.map((s) => [s.name, s.file !== undefined, s.inBackend]),
      [
        ["a", true, true],
        ["gone", false, true],
      ],
    );
  });

  it("sees only the selected stacks, files and backend alike (--stacks)", async () => {
    write("Pulumi.a.yaml", "config: {}\n");
    write("Pulumi.b.yaml", "config: {}\n");
    backend = ["a", "b", "gone", "other"];
    const only = new ProjectStackSource({
      projectDir: dir,
      listBackendStacks: async () => backend,
      reconcileDefaults: {},
      specChecks: false,
      only: ["b", "gone"],
    });
    const found = await only.discover({ includeBackend: true });
    assert.deepEqual(
      found.map((s) => [s.name, s.file !== undefined]),
      [
        ["b", true],
        ["gone", false],
      ],
    );
  });

  it("notices a changed file by its hash", async () => {
    write("Pulumi.a.yaml", "config: {}\n");
    const [before] = await source.discover();
    write("Pulumi.a.yaml", "config:\n  g8s:reconcile: { mode: off }\n");
    const [after] = await source.discover();
    assert.notEqual(before.fileHash, after.fileHash);
    assert.equal(after.settings?.mode, "off");
  });

  it("validates the whole cluster spec with spec checks, whatever the project is called", async () => {
    source = new ProjectStackSource({ projectDir: dir, reconcileDefaults: {}, specChecks: true });
    write("Pulumi.c1.yaml", "config:\n  g8s:cluster: { id: c1, provider: aws }\n");
    const [c1] = await source.discover();
    assert.equal(
      c1.error,
      [
        "stacks/Pulumi.c1.yaml: aws: is required with provider aws: set at least aws.region",
        "stacks/Pulumi.c1.yaml: baseDomain: is required",
        "stacks/Pulumi.c1.yaml: nodePools: is required",
      ].join("\n"),
    );
  });

  it("gives the daemon's etcd watch each valid cluster's backup interval, none when backups are off", async () => {
    source = new ProjectStackSource({ projectDir: dir, reconcileDefaults: {}, specChecks: true });
    const edge8 = readFileSync(path.join(__dirname, "../../stacks/Pulumi.edge8.yaml"), "utf8");
    write("Pulumi.edge8.yaml", edge8);
    const off = parse(edge8) as { config: { "g8s:cluster": Record<string, unknown> } };
    off.config["g8s:cluster"] = { ...off.config["g8s:cluster"], id: "edge9", etcd: { backup: { enabled: false } } };
    write("Pulumi.edge9.yaml", stringify(off));
    const [e8, e9] = await source.discover();
    assert.equal(e8.error, undefined);
    assert.equal(e8.etcdBackupSeconds, 6 * 3600, "the default interval, 6h");
    assert.equal(e9.error, undefined);
    assert.equal(e9.etcdBackupSeconds, undefined);
  });

  it("says how to turn spec checks off when a stack file has no cluster spec", async () => {
    source = new ProjectStackSource({ projectDir: dir, reconcileDefaults: {}, specChecks: true });
    write("Pulumi.a.yaml", "config:\n  store:dir: /x\n");
    const [a] = await source.discover();
    assert.equal(
      a.error,
      "stacks/Pulumi.a.yaml: g8s:cluster: is missing: every g8s stack file describes one cluster " +
        "(a project whose stacks are not g8s clusters: set --spec-checks false)",
    );
  });

  it("reads only the g8s: keys and gives no policy configuration without spec checks, even in a project named g8s", async () => {
    writeFileSync(path.join(dir, "Pulumi.yaml"), "name: g8s\nruntime: nodejs\n");
    write("Pulumi.c1.yaml", "config:\n  g8s:cluster: { id: c1, provider: aws }\n");
    const [c1] = await source.discover();
    assert.equal(c1.error, undefined);
    assert.equal(c1.policyConfig, undefined);
  });
});
