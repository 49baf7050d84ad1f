#!/usr/bin/env node
"use strict";
// The g8s command line. TypeScript sources run through tsx, so `npx g8s` works right after `npm ci`.
require("tsx/cjs");
const { main } = require("../automation/cli/main.ts");
main(process.argv.slice(2), {
  cwd: process.cwd(),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`g8s: internal error: ${err && err.stack ? err.stack : String(err)}\n`);
    process.exitCode = 70;
  },
);
