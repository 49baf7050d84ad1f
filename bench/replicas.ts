/**
 * Passes per minute with 1 and with 3 replicas (`g8s daemon --coordination kubernetes`, Leases
 * on the local host cluster) over the same fixture stacks on one PostgreSQL backend (Debian's,
 * started on loopback), each replica at the same concurrency, every stack due every 10 s (more
 * than one replica can run): the baseline is the single replica, measured in the same run.
 *
 * On this one machine the replicas share its cores, so the ratio measures what coordination
 * costs and how far more workers help here, not the scale-out replicas on several nodes give.
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { endProcessesUnder, passesOf, startDaemon, waitFor, type DaemonProcess } from "../test/integration/daemon";
import { createSandbox, hostDown, hostUp, writeFixtureStack } from "../test/integration/harness";
import { startPostgres } from "../test/integration/postgres";
import { ratio, report } from "./common";

const KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";
const STACKS = Array.from({ length: Number(process.env.REPLICAS_BENCH_STACKS ?? 18) }, (_, i) => `p${i}`);
const WINDOW_MS = Number(process.env.REPLICAS_BENCH_WINDOW_S ?? 120) * 1000;
const CONCURRENCY = 2;

async function main(): Promise<void> {
  const sandbox = await createSandbox("g8s-bench-replicas");
  const hostDir = path.join(sandbox.root, "host");
  const postgres = await startPostgres();
  const daemons: DaemonProcess[] = [];
  try {
    const kubeconfig = hostUp(hostDir);
    const ns = spawnSync(KUBECTL, ["--kubeconfig", kubeconfig, "create", "namespace", "g8s-system"], {
      encoding: "utf8",
    });
    if (ns.status !== 0) throw new Error(`create namespace: ${ns.stderr}`);
    for (const stack of STACKS)
      writeFixtureStack(sandbox, stack, { a: stack }, { "g8s:reconcile": { mode: "detect", interval: "10s" } });

    const measure = async (label: string, replicas: number) => {
      const started: Array<[string, DaemonProcess]> = [];
      for (let i = 0; i < replicas; i++) {
        const replica = `${label}-${i}`;
        const daemon = await startDaemon(
          sandbox,
          [
            ...["--coordination", "kubernetes", "--replica-id", replica, "--lease-duration", "6s"],
            ...["--state-dir", path.join(sandbox.root, `state-${replica}`), "--backend-url", postgres.url],
            ...["--concurrency", String(CONCURRENCY), "--shutdown-grace", "5s", "--offline"],
          ],
          { env: { KUBECONFIG: kubeconfig } },
        );
        daemons.push(daemon);
        started.push([replica, daemon]);
      }
      const passes = () => started.flatMap(([replica, d]) => passesOf(replica, d));
      // Warm: every stack passed once since the last replica started (the stacks exist, views settled).
      const warmFrom = Date.now();
      await waitFor(
        "a pass of every stack",
        async () => (STACKS.every((s) => passes().some((p) => p.stack === s && p.start > warmFrom)) ? true : undefined),
        600_000,
      );
      const from = Date.now();
      await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
      const to = Date.now();
      const inWindow = passes().filter((p) => p.end > from && p.end <= to);
      // The stacks were never applied (mode detect): a pass finds them drifted, every time.
      const bad = inWindow.filter((p) => p.outcome !== "drifted" && p.outcome !== "in-sync");
      for (const [, d] of started) await d.stop();
      if (bad.length > 0) throw new Error(`${label}: ${bad.length} passes failed or busy: ${JSON.stringify(bad[0])}`);
      const perMinute = (inWindow.length * 60_000) / (to - from);
      const byReplica = started.map(([r]) => inWindow.filter((p) => p.replica === r).length);
      process.stdout.write(
        `  ${label}: ${inWindow.length} passes in ${((to - from) / 1000).toFixed(0)} s (per replica ${byReplica.join(", ")})\n`,
      );
      return perMinute;
    };

    const one = await measure("one", 1);
    const three = await measure("three", 3);
    report(
      `Passes per minute over ${STACKS.length} stacks due every 10 s, mode detect, concurrency ${CONCURRENCY} per replica, ${WINDOW_MS / 1000} s window`,
      [
        ["1 replica (baseline)", one.toFixed(1)],
        ["3 replicas", three.toFixed(1)],
        ["3 replicas / 1 replica", ratio(three, one)],
      ],
    );
  } finally {
    for (const d of daemons) await d.stop().catch(() => undefined);
    endProcessesUnder(sandbox.root);
    hostDown(hostDir);
    await postgres.stop();
    sandbox.dispose();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exitCode = 1;
});
