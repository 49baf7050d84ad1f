import * as assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import {
  compareVersions,
  defaultBackendUrl,
  engineEnvironment,
  findPulumi,
  MIN_PULUMI_VERSION,
  ToolchainError,
} from "../../../automation/engine";

/** A fake `pulumi` that prints a version, in <dir>/<sub>/bin. */
function fakePulumi(dir: string, sub: string, version: string): string {
  const bin = path.join(dir, sub, "bin");
  mkdirSync(bin, { recursive: true });
  const file = path.join(bin, "pulumi");
  writeFileSync(file, `#!/bin/sh\necho v${version}\n`);
  chmodSync(file, 0o755);
  return file;
}

describe("engine toolchain", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), "g8s-toolchain-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("prefers the explicit override", async () => {
    const override = fakePulumi(dir, "custom", "3.260.0");
    const tools = path.dirname(fakePulumi(dir, "tools", "3.250.0"));
    const cli = await findPulumi({ env: { G8S_PULUMI: override, PATH: "" }, toolsBin: tools });
    assert.deepEqual(
      { source: cli.source, version: cli.version, root: cli.root },
      { source: "override", version: "3.260.0", root: path.join(dir, "custom") },
    );
  });

  it("uses the toolchain build before PATH", async () => {
    const tools = path.dirname(fakePulumi(dir, "tools", "3.250.0"));
    const onPath = path.dirname(fakePulumi(dir, "usr", "3.255.0"));
    const cli = await findPulumi({ env: { PATH: onPath }, toolsBin: tools });
    assert.equal(cli.source, "toolchain");
    assert.equal(cli.binDir, tools);
  });

  it("falls back to pulumi on PATH", async () => {
    const onPath = path.dirname(fakePulumi(dir, "usr", "3.255.0"));
    const cli = await findPulumi({ env: { PATH: `/nonexistent:${onPath}` }, toolsBin: path.join(dir, "none") });
    assert.equal(cli.source, "path");
    assert.equal(cli.version, "3.255.0");
  });

  it("names npm run toolchain when there is no CLI", async () => {
    await assert.rejects(
      findPulumi({ env: { PATH: "/nonexistent" }, toolsBin: path.join(dir, "none") }),
      (err: Error) => err instanceof ToolchainError && /run 'npm run toolchain'/.test(err.message),
    );
  });

  it("names the required version when the CLI is too old", async () => {
    const old = fakePulumi(dir, "old", "3.100.0");
    await assert.rejects(
      findPulumi({ env: { G8S_PULUMI: old }, toolsBin: path.join(dir, "none") }),
      (err: Error) =>
        err instanceof ToolchainError &&
        err.message ===
          `${old} is pulumi 3.100.0, too old: g8s needs ${MIN_PULUMI_VERSION} or later (run 'npm run toolchain' or upgrade pulumi)`,
    );
  });

  it("rejects an override that is not executable", async () => {
    await assert.rejects(
      findPulumi({ env: { G8S_PULUMI: path.join(dir, "missing") } }),
      /G8S_PULUMI=.* is not an executable file/,
    );
  });

  it("compares versions numerically", () => {
    assert.equal(compareVersions("3.248.0", "3.99.9"), 1);
    assert.equal(compareVersions("v3.248.0", "3.248.0"), 0);
    assert.equal(compareVersions("3.248.0-alpha.1", "3.249.0"), -1);
  });
});

describe("engine environment", () => {
  it("is hermetic: own PULUMI_HOME, file backend, no update check or plugin download", () => {
    const env = engineEnvironment({
      stateDir: "/var/lib/g8s",
      passphrase: "p",
      pathPrepend: ["/opt/g8s/.tools/bin"],
      base: { PATH: "/usr/bin", HOME: "/root", PULUMI_CONFIG_PASSPHRASE_FILE: "/elsewhere" },
    });
    assert.equal(env.PULUMI_HOME, "/var/lib/g8s/pulumi-home");
    assert.equal(env.PULUMI_BACKEND_URL, "file:///var/lib/g8s/backend");
    assert.equal(env.PULUMI_SKIP_UPDATE_CHECK, "true");
    assert.equal(env.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION, "true");
    assert.equal(env.PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER, "true", "stack files carry no salt");
    assert.equal(env.PULUMI_CONFIG_PASSPHRASE, "p");
    assert.equal(env.PULUMI_CONFIG_PASSPHRASE_FILE, undefined, "one passphrase source, not two");
    assert.equal(env.PATH, "/opt/g8s/.tools/bin:/usr/bin");
    assert.equal(env.HOME, "/root");
  });

  it("keeps any backend URL it is given", () => {
    const env = engineEnvironment({
      stateDir: "/s",
      backendUrl: "s3://bucket/g8s",
      passphraseFile: "/run/secrets/pp",
      pathPrepend: [],
      base: {},
    });
    assert.equal(env.PULUMI_BACKEND_URL, "s3://bucket/g8s");
    assert.equal(env.PULUMI_CONFIG_PASSPHRASE_FILE, "/run/secrets/pp");
    assert.equal(defaultBackendUrl("/a b"), "file:///a%20b/backend");
  });
});
