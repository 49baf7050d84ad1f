#!/usr/bin/env -S node --max-semi-space-size=2
"use strict";
// The g8s command line, run as `g8s …` or `npx g8s …`. The shebang caps V8's young generation
// (semi-spaces of 2 MiB, not 16): the daemon with 500 stacks keeps about 145 MiB resident instead
// of 168 (bench/rss.ts). Flags given to node are not inherited by the processes it starts: the
// Pulumi CLI and the programs it runs keep Node.js's defaults.
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
