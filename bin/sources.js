"use strict";
// What the compiled daemon and CLI (dist/) are built from, as one hash: bin/g8s.js runs dist/ only
// while it matches the sources beside it, and scripts/build.js stamps it. Plain JavaScript: it
// runs before anything is compiled.
const { createHash } = require("node:crypto");
const { existsSync, readdirSync, readFileSync, writeFileSync } = require("node:fs");
const path = require("node:path");

/** The folders tsconfig.build.json compiles (and what they import from policy/), and its configs. */
const SOURCE_DIRS = ["automation", "components", "policy"];
const SOURCE_FILES = ["tsconfig.json", "tsconfig.build.json"];
/** Written by scripts/build.js after a successful build. */
const STAMP = path.join("dist", ".sources");
/** The CLI's entry in the build. */
const COMPILED_MAIN = path.join("dist", "automation", "cli", "main.js");

function tsFiles(root, dir, out) {
  for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "node_modules") tsFiles(root, rel, out);
    } else if (entry.name.endsWith(".ts")) {
      out.push(rel);
    }
  }
  return out;
}

/** sha256 over every source's path and text, in a fixed order; undefined without sources (an image). */
function sourcesHash(root) {
  if (!existsSync(path.join(root, SOURCE_DIRS[0]))) return undefined;
  const files = [
    ...SOURCE_DIRS.filter((d) => existsSync(path.join(root, d))).flatMap((d) => tsFiles(root, d, [])),
    ...SOURCE_FILES,
  ].sort();
  const hash = createHash("sha256");
  for (const file of files) {
    hash.update(file.split(path.sep).join("/")).update("\0");
    hash.update(readFileSync(path.join(root, file))).update("\0");
  }
  return hash.digest("hex");
}

/**
 * "compiled" when dist/ holds a build of exactly these sources (or there are no sources: an
 * image with dist/ alone), else "sources" (none built, or edited since: tsx runs them).
 * `G8S_RUNTIME=sources` asks for the sources whatever dist/ holds (benchmarks, debugging).
 */
function runtimeFor(root, env = process.env) {
  if (env.G8S_RUNTIME === "sources") return "sources";
  if (!existsSync(path.join(root, COMPILED_MAIN))) return "sources";
  const current = sourcesHash(root);
  if (current === undefined) return "compiled";
  let stamped;
  try {
    stamped = readFileSync(path.join(root, STAMP), "utf8").trim();
  } catch {
    return "sources";
  }
  return stamped === current ? "compiled" : "sources";
}

function writeStamp(root, hash) {
  writeFileSync(path.join(root, STAMP), `${hash}\n`);
}

module.exports = { COMPILED_MAIN, STAMP, runtimeFor, sourcesHash, writeStamp };
