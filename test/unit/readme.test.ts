/** The README's ClusterSpec reference stays in sync with the schema. */
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import {
  FIELD_DOCS,
  REFERENCE_END,
  REFERENCE_START,
  renderSpecReference,
  specFields,
} from "../../components/spec/reference";

/** A Markdown table's cells, free of the padding Prettier adds. */
function cells(table: string): string[][] {
  return table
    .trim()
    .split("\n")
    .map((line) =>
      line
        .split(/(?<!\\)\|/)
        .map((c) => c.trim().replace(/^-+$/, "---"))
        .filter((_, i, all) => i > 0 && i < all.length - 1),
    );
}

const PROJECT_ROOT = path.resolve(__dirname, "../..");
const README = readFileSync(path.join(PROJECT_ROOT, "README.md"), "utf8");

describe("README.md", () => {
  it("documents every schema field", () => {
    const undocumented = specFields()
      .map((f) => f.path)
      .filter((p) => !(p in FIELD_DOCS));
    assert.deepEqual(undocumented, [], "add these paths to FIELD_DOCS in components/spec/reference.ts");
  });

  it("documents no field the schema lacks", () => {
    const paths = new Set(specFields().map((f) => f.path));
    assert.deepEqual(
      Object.keys(FIELD_DOCS).filter((p) => !paths.has(p)),
      [],
    );
  });

  it("carries the current generated reference (run npm run docs)", () => {
    const start = README.indexOf(REFERENCE_START);
    const end = README.indexOf(REFERENCE_END);
    assert.ok(start >= 0 && end > start, "README.md lacks the spec-reference markers");
    assert.deepEqual(cells(README.slice(start + REFERENCE_START.length, end)), cells(renderSpecReference()));
  });

  it("starts with the two commands: the main job and the tests", () => {
    assert.match(README, /## Quick start[^#]*```sh\nnpm start[^\n]*\nnpm test[^\n]*\n```/);
  });

  it("the test command provisions what it needs, and CI runs exactly it", () => {
    const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    assert.match(pkg.scripts.test, /^bash scripts\/provision\.sh --tests && /);
    assert.match(pkg.scripts.start, /^bash scripts\/start\.sh$/);
    assert.match(readFileSync(path.join(PROJECT_ROOT, ".ci/run"), "utf8"), /^npm test$/m);
  });
});
