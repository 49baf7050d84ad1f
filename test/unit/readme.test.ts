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

const README = readFileSync(path.resolve(__dirname, "../../README.md"), "utf8");

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

  it("shows the test command", () => {
    assert.match(README, /npm ci\s*\nnpm test/);
  });
});
