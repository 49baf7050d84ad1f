/**
 * Daemon memory: resident set size of the daemon process alone (not its children) with 100
 * stacks discovered, against the same daemon with none, in the same run.
 */
import { readFileSync } from "node:fs";
import { createSandbox, writeFixtureStack } from "../test/integration/harness";
import { startDaemon, waitFor } from "../test/integration/daemon";
import { ratio, report } from "./common";

const COUNT = Number(process.env.RSS_STACKS ?? 100);

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  return kb / 1024;
}

async function measure(stacks: number): Promise<number> {
  const sandbox = await createSandbox("g8s-bench-rss");
  try {
    // mode off: discovered, parsed, tracked and served, but no engine runs that would add children.
    for (let i = 0; i < stacks; i++)
      writeFixtureStack(sandbox, `r${i}`, { a: "x" }, { "g8s:reconcile": { mode: "off" } });
    const daemon = await startDaemon(sandbox, ["--log-level", "info"]); // info: startDaemon waits for "listening"
    await waitFor("discovery", async () => ((await daemon.stacks()).length === stacks ? true : undefined), 120_000);
    await new Promise((resolve) => setTimeout(resolve, 3000)); // a few discovery cycles
    await daemon.stacks();
    await daemon.metrics();
    const rss = rssMiB(daemon.proc.pid as number);
    await daemon.stop();
    return rss;
  } finally {
    sandbox.dispose();
  }
}

async function main(): Promise<void> {
  const empty = await measure(0);
  const full = await measure(COUNT);
  report(`Daemon RSS (the daemon process only)`, [
    ["0 stacks", `${empty.toFixed(1)} MiB`],
    [
      `${COUNT} stacks`,
      `${full.toFixed(1)} MiB (${ratio(full, empty)} the empty daemon, +${(((full - empty) / COUNT) * 1024).toFixed(0)} KiB per stack)`,
    ],
  ]);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exitCode = 1;
});
