/** bin/sources.js: bin/g8s.js runs dist/ only while it is a build of the sources beside it. */
import * as assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

// eslint-disable-next-line @typescript-eslint/no-require-imports -- plain CommonJS, run before any build
const sources = require("../../../bin/sources") as {
  runtimeFor(root: string, env?: NodeJS.ProcessEnv): "compiled" | "sources";
  sourcesHash(root: string): string | undefined;
  writeStamp(root: string, hash: string): void;
};

describe("bin/g8s.js: compiled or sources", () => {
  let root: string;
  const write = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  };

  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), "g8s-runtime-"));
    write("automation/cli/main.ts", "export const a = 1;\n");
    write("components/spec/index.ts", "export const b = 2;\n");
    write("tsconfig.json", "{}\n");
    write("tsconfig.build.json", "{}\n");
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const build = () => {
    write("dist/automation/cli/main.js", "exports.a = 1;\n");
    sources.writeStamp(root, sources.sourcesHash(root) as string);
  };

  it("runs the sources while nothing is built", () => assert.equal(sources.runtimeFor(root, {}), "sources"));

  it("runs dist/ when it is stamped with the hash of these sources", () => {
    build();
    assert.equal(sources.runtimeFor(root, {}), "compiled");
  });

  it("runs the sources once one is edited, added or removed after the build: never a stale build", () => {
    build();
    write("components/spec/index.ts", "export const b = 3;\n");
    assert.equal(sources.runtimeFor(root, {}), "sources", "edited");
    build();
    write("automation/cli/extra.ts", "export {};\n");
    assert.equal(sources.runtimeFor(root, {}), "sources", "added");
    build();
    rmSync(path.join(root, "automation/cli/extra.ts"));
    assert.equal(sources.runtimeFor(root, {}), "sources", "removed");
  });

  it("runs dist/ where there are no sources (an image ships dist/ alone), and the sources when asked", () => {
    build();
    rmSync(path.join(root, "automation"), { recursive: true });
    assert.equal(sources.runtimeFor(root, {}), "compiled");
    write("automation/cli/main.ts", "export const a = 1;\n");
    sources.writeStamp(root, sources.sourcesHash(root) as string);
    assert.equal(sources.runtimeFor(root, { G8S_RUNTIME: "sources" }), "sources");
  });

  it("reads no unstamped build as current (a build cut off half way)", () => {
    build();
    rmSync(path.join(root, "dist/.sources"));
    assert.equal(sources.runtimeFor(root, {}), "sources");
  });
});
