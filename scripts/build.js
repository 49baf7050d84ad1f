"use strict";
// `npm run build`: compiles the daemon and CLI to dist/ (tsconfig.build.json) and stamps the
// build with the hash of its sources, so bin/g8s.js runs it only while it is current. A build of
// unchanged sources is skipped.
const { spawnSync } = require("node:child_process");
const { existsSync, readFileSync, rmSync } = require("node:fs");
const path = require("node:path");
const { COMPILED_MAIN, STAMP, sourcesHash, writeStamp } = require("../bin/sources");

const root = path.resolve(__dirname, "..");
const hash = sourcesHash(root);
const stampPath = path.join(root, STAMP);
if (
  existsSync(path.join(root, COMPILED_MAIN)) &&
  existsSync(stampPath) &&
  readFileSync(stampPath, "utf8").trim() === hash
) {
  process.stdout.write(`build: dist/ is current (sources ${hash.slice(0, 12)})\n`);
  process.exit(0);
}
// Unstamped while tsc writes: a build cut off half way is never taken for a current one.
rmSync(stampPath, { force: true });
const started = Date.now();
const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
const result = spawnSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.build.json")], { stdio: "inherit" });
if (result.status !== 0) {
  process.stderr.write(`build: tsc failed (exit ${result.status ?? result.signal}): dist/ is not stamped\n`);
  process.exit(1);
}
writeStamp(root, hash);
process.stdout.write(
  `build: dist/ compiled in ${((Date.now() - started) / 1000).toFixed(1)} s (sources ${hash.slice(0, 12)})\n`,
);
