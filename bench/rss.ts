/**
 * Daemon memory: resident set size of the daemon process alone (not its children), as users run
 * it (bin/g8s.js through its shebang, with its V8 flags; compiled: dist/, after `npm run
 * build`) against two baselines: the TypeScript sources through tsx, and the compiled daemon with
 * Node.js's default V8 flags. Each with no stack, with 100 and with RSS_STACKS (500) discovered,
 * in one run.
 */
import { residentBytes } from "../automation/os/processes";
import { createSandbox, writeFixtureStack } from "../test/integration/harness";
import { startDaemon, waitFor } from "../test/integration/daemon";
import { ratio, report } from "./common";

const COUNT = Number(process.env.RSS_STACKS ?? 500);
const MIDDLE = Math.min(100, COUNT);
/** The target of the scale-out issue: a daemon that fits a small pod. */
const TARGET_MIB = 150;

/** The daemon's RSS in MiB, through the project's own /proc reader. */
function rssMiB(pid: number): number {
  return (residentBytes(pid) ?? NaN) / 1024 / 1024;
}

type Runtime = "compiled" | "sources";
type Variant = Runtime | "compiled, Node.js defaults";

async function measure(variant: Variant, stacks: number): Promise<number> {
  const runtime: Runtime = variant === "sources" ? "sources" : "compiled";
  const sandbox = await createSandbox("g8s-bench-rss");
  try {
    // mode off: discovered, parsed, tracked and served, but no engine runs that would add children.
    for (let i = 0; i < stacks; i++)
      writeFixtureStack(sandbox, `r${i}`, { a: "x" }, { "g8s:reconcile": { mode: "off" } });
    const env: Record<string, string> = runtime === "sources" ? { G8S_RUNTIME: "sources" } : {};
    const daemon = await startDaemon(sandbox, ["--log-level", "info"], {
      env,
      ...(variant === "compiled, Node.js defaults" ? { nodeFlags: [] } : {}),
    }); // info: startDaemon waits for "listening"
    try {
      const ran = daemon.logs.find((l) => l.msg === "g8s daemon listening")?.runtime;
      if (ran !== runtime) throw new Error(`asked for the ${runtime} daemon, got ${String(ran)}: run npm run build`);
      await waitFor("discovery", async () => ((await daemon.stacks()).length === stacks ? true : undefined), 300_000);
      await new Promise((resolve) => setTimeout(resolve, 3000)); // a few discovery cycles
      await daemon.stacks();
      await daemon.metrics();
      return rssMiB(daemon.proc.pid as number);
    } finally {
      await daemon.stop();
    }
  } finally {
    sandbox.dispose();
  }
}

async function main(): Promise<void> {
  const rows: Array<[string, string]> = [];
  const figures: Record<string, number> = {};
  const variants = ["sources", "compiled, Node.js defaults", "compiled"] as const;
  for (const runtime of variants) {
    figures[`${runtime} 0`] = await measure(runtime, 0);
    figures[`${runtime} ${MIDDLE}`] = await measure(runtime, MIDDLE);
    figures[`${runtime} ${COUNT}`] = await measure(runtime, COUNT);
  }
  for (const runtime of variants) {
    const empty = figures[`${runtime} 0`];
    const full = figures[`${runtime} ${COUNT}`];
    rows.push([`${runtime}, 0 stacks`, `${empty.toFixed(1)} MiB`]);
    rows.push([`${runtime}, ${MIDDLE} stacks`, `${figures[`${runtime} ${MIDDLE}`].toFixed(1)} MiB`]);
    rows.push([
      `${runtime}, ${COUNT} stacks`,
      `${full.toFixed(1)} MiB (+${(((full - empty) / COUNT) * 1024).toFixed(0)} KiB per stack)`,
    ]);
  }
  const compiled = figures[`compiled ${COUNT}`];
  rows.push([`compiled / sources at ${COUNT}`, ratio(compiled, figures[`sources ${COUNT}`])]);
  rows.push([
    `compiled / compiled with Node.js defaults at ${COUNT}`,
    ratio(compiled, figures[`compiled, Node.js defaults ${COUNT}`]),
  ]);
  rows.push([`compiled / target (${TARGET_MIB} MiB)`, ratio(compiled, TARGET_MIB)]);
  report("Daemon RSS (the daemon process only)", rows);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exitCode = 1;
});
