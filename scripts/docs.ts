/** Rewrites the generated ClusterSpec reference in README.md (`npm run docs`). */
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { REFERENCE_END, REFERENCE_START, renderSpecReference } from "../components/spec/reference";

const readme = path.resolve(__dirname, "../README.md");
const text = readFileSync(readme, "utf8");
const start = text.indexOf(REFERENCE_START);
const end = text.indexOf(REFERENCE_END);
if (start < 0 || end < start) {
  process.stderr.write(`README.md lacks the markers ${REFERENCE_START} … ${REFERENCE_END}\n`);
  process.exit(1);
}
const updated = `${text.slice(0, start + REFERENCE_START.length)}\n${renderSpecReference()}\n${text.slice(end)}`;
writeFileSync(readme, updated);
process.stdout.write(updated === text ? "README.md is up to date\n" : "README.md: spec reference rewritten\n");
