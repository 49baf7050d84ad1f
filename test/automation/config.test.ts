import * as assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { loadSettings, SettingsError, type SettingsSources } from "../../automation/config";

describe("daemon settings", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), "g8s-settings-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const sources = (over: Partial<SettingsSources> = {}): SettingsSources => ({
    flags: {},
    env: {},
    cwd: dir,
    defaultProjectDir: "/opt/g8s",
    ...over,
  });

  const problems = (over: Partial<SettingsSources>): readonly string[] => {
    try {
      loadSettings(sources(over));
    } catch (err) {
      assert.ok(err instanceof SettingsError, String(err));
      return err.problems;
    }
    return assert.fail("accepted");
  };

  it("has defaults for everything", () => {
    const s = loadSettings(sources());
    assert.equal(s.projectDir, "/opt/g8s");
    assert.equal(s.stateDir, "/opt/g8s/.g8s");
    assert.equal(s.concurrency, 2);
    assert.equal(s.backoffBaseMs, 10_000);
    assert.equal(s.backoffMaxMs, 3_600_000);
    assert.equal(s.stallAfter, 5);
    assert.equal(s.host, "127.0.0.1");
    assert.equal(s.port, 9464);
    assert.equal(s.defaultMode, "correct");
    assert.equal(s.apiToken, undefined);
  });

  it("takes flags over environment over the file", () => {
    const file = path.join(dir, "g8s.yaml");
    writeFileSync(file, "concurrency: 3\nport: 1000\nstallAfter: 7\n");
    const s = loadSettings(
      sources({ file, env: { G8S_CONCURRENCY: "4", G8S_PORT: "2000" }, flags: { concurrency: "6" } }),
    );
    assert.deepEqual([s.concurrency, s.port, s.stallAfter], [6, 2000, 7]);
  });

  it("names where a bad value came from", () => {
    const file = path.join(dir, "g8s.yaml");
    writeFileSync(file, "jitter: 3\nconcurency: 2\n");
    assert.deepEqual(problems({ file, env: { G8S_CONCURRENCY: "0" }, flags: { defaultInterval: "soon" } }), [
      "G8S_CONCURRENCY: must be ≥ 1 (got number 0)",
      "--default-interval: must be a duration like 10s, 5m or 1h (got 'soon')",
      `${file}: jitter: must be ≤ 1 (got number 3)`,
      `${file}: concurency: unknown setting: did you mean 'concurrency'?`,
    ]);
  });

  it("shares the stacks only when told to, as a replica named after the host unless named", () => {
    const alone = loadSettings(sources());
    assert.deepEqual([alone.coordination, alone.leaseNamespace, alone.leaseDurationMs], ["none", "g8s-system", 15_000]);
    const replica = loadSettings(
      sources({
        env: { G8S_COORDINATION: "kubernetes", G8S_REPLICA_ID: "g8s-7d9f-abcde" },
        flags: { leaseDuration: "30s" },
      }),
    );
    assert.deepEqual(
      [replica.coordination, replica.replicaId, replica.leaseDurationMs],
      ["kubernetes", "g8s-7d9f-abcde", 30_000],
    );
    assert.deepEqual(
      problems({ flags: { coordination: "etcd", replicaId: "Pod_1", leaseNamespace: "G8S", leaseDuration: "1s" } }),
      [
        "--coordination: must be one of none, kubernetes (got 'etcd')",
        "--replica-id: must be 1 to 57 lowercase letters, digits and '-', starting and ending with a letter or digit",
        "--lease-namespace: must be a Kubernetes namespace name",
        "--lease-duration: must be between 3s and 600s (got 1s)",
      ],
    );
  });

  it("checks stack files as g8s cluster specs unless told the project's stacks are something else", () => {
    assert.equal(loadSettings(sources()).specChecks, true);
    assert.equal(loadSettings(sources({ env: { G8S_SPEC_CHECKS: "false" } })).specChecks, false);
    assert.equal(
      loadSettings(sources({ flags: { specChecks: "0" }, env: { G8S_SPEC_CHECKS: "true" } })).specChecks,
      false,
    );
    assert.deepEqual(problems({ env: { G8S_SPEC_CHECKS: "maybe" } }), [
      "G8S_SPEC_CHECKS: must be true or false (got 'maybe')",
    ]);
  });

  it("rejects a backoff cap below its base", () => {
    assert.deepEqual(problems({ flags: { backoffBase: "60s", backoffMax: "30s" } }), [
      "--backoff-max: must be ≥ backoffBase (60s)",
    ]);
  });

  it("reads the API token from a file and insists on a real token", () => {
    const file = path.join(dir, "token");
    writeFileSync(file, "0123456789abcdef0123\n");
    assert.equal(loadSettings(sources({ env: { G8S_API_TOKEN_FILE: file } })).apiToken, "0123456789abcdef0123");
    assert.deepEqual(problems({ env: { G8S_API_TOKEN: "short" } }), [
      "G8S_API_TOKEN: must be at least 16 characters long",
    ]);
  });

  it("rejects a settings file that is not a mapping", () => {
    const file = path.join(dir, "g8s.yaml");
    writeFileSync(file, "- a\n- b\n");
    assert.deepEqual(problems({ file }), [`${file}: must be a YAML mapping of setting: value`]);
  });
});
