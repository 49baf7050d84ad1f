import * as assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { PROJECT_ROOT, type PulumiCli } from "../../../automation/engine";
import {
  ensurePlugins,
  isInstalled,
  missingPluginError,
  requiredPlugins,
  toolchainPlugins,
} from "../../../automation/engine/plugins";

/** A project whose package-lock pins @pulumi/kubernetes 4.25.0 and @pulumi/tls 5.6.1 (plus non-resource packages). */
function project(dir: string): string {
  const root = path.join(dir, "project");
  const pkg = (name: string, version: string, pulumi?: object) => {
    const d = path.join(root, "node_modules", name);
    mkdirSync(d, { recursive: true });
    writeFileSync(path.join(d, "package.json"), JSON.stringify({ name, version, pulumi }));
  };
  pkg("@pulumi/kubernetes", "4.25.0", { resource: true, name: "kubernetes", version: "4.25.0" });
  pkg("@pulumi/tls", "5.6.1", { resource: true, name: "tls", version: "5.6.1" });
  pkg("@pulumi/pulumi", "3.248.0", { comment: "deployment-time only" });
  pkg("@pulumi/policy", "1.21.0");
  const packages = {
    "": { name: "p" },
    "node_modules/@pulumi/kubernetes": { version: "4.25.0" },
    "node_modules/@pulumi/kubernetes/node_modules/glob": { version: "12.0.0" },
    "node_modules/@pulumi/tls": { version: "5.6.1" },
    "node_modules/@pulumi/pulumi": { version: "3.248.0" },
    "node_modules/@pulumi/policy": { version: "1.21.0" },
  };
  writeFileSync(path.join(root, "package-lock.json"), JSON.stringify({ lockfileVersion: 3, packages }));
  return root;
}

/** A toolchain folder with a built kubernetes plugin of `version`. */
function toolchain(dir: string, version: string): string {
  const tools = path.join(dir, "tools");
  mkdirSync(path.join(tools, "bin"), { recursive: true });
  const bin = path.join(tools, "bin", "pulumi-resource-kubernetes");
  writeFileSync(bin, "#!/bin/sh\nexit 0\n");
  chmodSync(bin, 0o755);
  const versions = {
    tools: {
      "pulumi-kubernetes": { version, bin: ["bin/pulumi-resource-kubernetes"] },
      pulumi: { version: "3.274.1", bin: ["bin/pulumi", "bin/pulumi-resource-pulumi-nodejs"] },
    },
  };
  writeFileSync(path.join(tools, "versions.json"), JSON.stringify(versions));
  return tools;
}

/**
 * A stand-in `pulumi` for `plugin install` that never touches the network: with --file it
 * installs the file like the real CLI; without, it "downloads" only when FAKE_ONLINE=1, else
 * fails with the real CLI's kind of message. Every call is logged.
 */
function fakeCli(dir: string): PulumiCli {
  const bin = path.join(dir, "cli", "bin");
  mkdirSync(bin, { recursive: true });
  const binary = path.join(bin, "pulumi");
  writeFileSync(
    binary,
    `#!/bin/sh
echo "$@" >> "${dir}/calls.log"
name=$4; version=$5
target="$PULUMI_HOME/plugins/resource-$name-v$version"
if [ "$6" = "--file" ]; then mkdir -p "$target" && cp "$7" "$target/pulumi-resource-$name"; exit $?; fi
if [ "$FAKE_ONLINE" = "1" ]; then mkdir -p "$target" && echo plugin > "$target/pulumi-resource-$name"; exit 0; fi
echo "warning: Error downloading plugin: dial tcp: lookup get.pulumi.com: no such host" >&2
echo "error: [resource plugin $name-$version] downloading from : failed to download plugin: $name-$version: failed all 5 attempts" >&2
exit 255
`,
  );
  chmodSync(binary, 0o755);
  return { binary, binDir: bin, root: path.dirname(bin), version: "3.274.1", source: "override" };
}

describe("engine plugins", () => {
  let dir: string;
  let home: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "g8s-plugins-"));
    home = path.join(dir, "home");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  /** ensurePlugins on the test project with a stand-in CLI and a toolchain that built kubernetes `version`. */
  const ensure = (version: string, offline: boolean) =>
    ensurePlugins({
      cli: fakeCli(dir),
      env: { PULUMI_HOME: home },
      projectDir: project(dir),
      toolsDir: toolchain(dir, version),
      offline,
    });
  const calls = () =>
    existsSync(path.join(dir, "calls.log")) ? readFileSync(path.join(dir, "calls.log"), "utf8") : "";

  it("reads the resource plugins and their versions from package-lock.json", () => {
    assert.deepEqual(requiredPlugins(project(dir)), [
      { name: "kubernetes", version: "4.25.0", sdk: "@pulumi/kubernetes" },
      { name: "tls", version: "5.6.1", sdk: "@pulumi/tls" },
    ]);
  });

  it("knows this repository's own pins", () => {
    const names = requiredPlugins(PROJECT_ROOT).map((p) => p.name);
    assert.ok(names.includes("kubernetes"), names.join(","));
    const lock = JSON.parse(readFileSync(path.join(PROJECT_ROOT, "package-lock.json"), "utf8"));
    const k8s = requiredPlugins(PROJECT_ROOT).find((p) => p.name === "kubernetes");
    assert.equal(k8s?.version, lock.packages["node_modules/@pulumi/kubernetes"].version);
  });

  it("finds the toolchain's plugin binaries and their versions, but not the dynamic-provider shim", () => {
    const found = toolchainPlugins(toolchain(dir, "v4.25.0"));
    assert.deepEqual([...found.keys()], ["kubernetes"]);
    assert.equal(found.get("kubernetes")?.version, "4.25.0");
  });

  it("leaves a plugin that is present alone", async () => {
    for (const name of ["kubernetes", "tls"]) {
      const version = name === "tls" ? "5.6.1" : "4.25.0";
      mkdirSync(path.join(home, "plugins", `resource-${name}-v${version}`), { recursive: true });
      writeFileSync(path.join(home, "plugins", `resource-${name}-v${version}`, `pulumi-resource-${name}`), "x");
    }
    const reports = await ensure("4.25.0", true);
    assert.deepEqual(
      reports.map((r) => [r.name, r.state]),
      [
        ["kubernetes", "present"],
        ["tls", "present"],
      ],
    );
    assert.equal(calls(), "", "nothing installed");
  });

  it("installs the toolchain's build of the pinned version; offline, reports the other as one line", async () => {
    const reports = await ensure("4.25.0", true);
    assert.deepEqual(
      reports.map((r) => [r.name, r.state]),
      [
        ["kubernetes", "installed-from-toolchain"],
        ["tls", "missing"],
      ],
    );
    assert.ok(isInstalled(home, { name: "kubernetes", version: "4.25.0" }));
    assert.equal(
      reports[1].problem,
      "provider plugin tls 5.6.1 (for @pulumi/tls) is missing: the toolchain does not build it and --offline; " +
        "install it with `pulumi plugin install resource tls 5.6.1` (PULUMI_HOME=<state dir>/pulumi-home) " +
        "or build it with `npm run toolchain` where the toolchain can",
    );
    assert.doesNotMatch(calls(), /resource tls/, "offline: no download tried");
  });

  it("does not install a toolchain build of another version", async () => {
    const reports = await ensure("4.24.0", true);
    assert.equal(reports[0].state, "missing");
    assert.match(reports[0].problem ?? "", /the toolchain built version 4\.24\.0 and --offline/);
    assert.ok(!isInstalled(home, { name: "kubernetes", version: "4.25.0" }));
  });

  it("online, downloads what the toolchain lacks, and reports a failed download in one line", async () => {
    const online = await ensurePlugins({
      cli: fakeCli(dir),
      env: { PULUMI_HOME: home, FAKE_ONLINE: "1" },
      projectDir: project(dir),
      toolsDir: toolchain(dir, "4.25.0"),
      offline: false,
    });
    assert.deepEqual(
      online.map((r) => [r.name, r.state]),
      [
        ["kubernetes", "installed-from-toolchain"],
        ["tls", "downloaded"],
      ],
    );
    rmSync(home, { recursive: true, force: true });
    const failed = await ensurePlugins({
      cli: fakeCli(dir),
      env: { PULUMI_HOME: home },
      projectDir: project(dir),
      toolsDir: path.join(dir, "no-tools"),
      offline: false,
    });
    assert.deepEqual(
      failed.map((r) => r.state),
      ["missing", "missing"],
    );
    assert.equal(
      failed[1].problem,
      "provider plugin tls 5.6.1 (for @pulumi/tls) is missing: the toolchain does not build it and the download " +
        "failed ([resource plugin tls-5.6.1] downloading from : failed to download plugin: tls-5.6.1: failed all 5 attempts); " +
        "install it with `pulumi plugin install resource tls 5.6.1` (PULUMI_HOME=<state dir>/pulumi-home) " +
        "or build it with `npm run toolchain` where the toolchain can",
    );
    assert.ok(!failed.some((r) => (r.problem ?? "").includes("\n")), "one line each");
  });

  it("turns the engine's missing-plugin error into one line", () => {
    const engineOutput =
      "error: failed to load resource plugin\n".repeat(40) +
      "error: no resource plugin 'pulumi-resource-tls' found in the workspace at version v5.6.1 or on your $PATH\n";
    const line = missingPluginError(engineOutput, [{ name: "tls", version: "5.6.1", sdk: "@pulumi/tls" }]);
    assert.match(line ?? "", /^provider plugin tls 5\.6\.1 \(for @pulumi\/tls\) is missing: not installed/);
    assert.equal(missingPluginError("error: something else", []), undefined);
  });
});
