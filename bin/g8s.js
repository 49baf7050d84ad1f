#!/usr/bin/env -S node --max-semi-space-size=1 --optimize-for-size
"use strict";
// The g8s command line, run as `g8s …` or `npx g8s …`. The shebang trades some CPU for memory:
// a 1 MiB young generation and V8's memory-saving heap sizing keep the long-lived, I/O-bound
// daemon flat at about 135 MiB RSS with 500 stacks scraped every second, where it otherwise
// climbs past 250 MiB between full collections (bench/rss.ts, test/integration/footprint.test.ts).
// It runs the compiled daemon and CLI (dist/, `npm run build`) when they are a build of the
// sources beside them, else the TypeScript sources through tsx, so `npx g8s` works right after
// `npm ci` and never runs a stale build.
const path = require("node:path");
const { COMPILED_MAIN, runtimeFor } = require("./sources");

const root = path.resolve(__dirname, "..");
const runtime = runtimeFor(root);
let main;
if (runtime === "compiled") {
  ({ main } = require(path.join(root, COMPILED_MAIN)));
} else {
  require("tsx/cjs");
  ({ main } = require("../automation/cli/main.ts"));
}

/** SIGTERM/SIGINT go to the running command (the daemon stops cleanly); returns the unsubscribe. */
function onSignal(handler) {
  const listener = (signal) => handler(signal);
  process.on("SIGTERM", listener);
  process.on("SIGINT", listener);
  return () => {
    process.off("SIGTERM", listener);
    process.off("SIGINT", listener);
  };
}

main(process.argv.slice(2), {
  cwd: process.cwd(),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  onSignal,
  runtime,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`g8s: internal error: ${err && err.stack ? err.stack : String(err)}\n`);
    process.exitCode = 70;
  },
);
