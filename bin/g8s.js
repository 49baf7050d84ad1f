#!/usr/bin/env node
"use strict";
// The g8s command line. TypeScript sources run through tsx, so `npx g8s` works right after `npm ci`.
require("tsx/cjs");
const { main } = require("../automation/cli/main.ts");

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
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`g8s: internal error: ${err && err.stack ? err.stack : String(err)}\n`);
    process.exitCode = 70;
  },
);
