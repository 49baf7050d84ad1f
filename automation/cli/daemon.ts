/** `g8s daemon`: reconcile every stack on its schedule until SIGTERM/SIGINT. */
import type { Settings } from "../config";
import { buildReconciler, buildServer, type Reconciler } from "../compose";
import { GitFollower } from "../plan/follow";
import { ToolchainError } from "../engine";
import { KubeconfigError } from "../coordination/kubeClient";
import { EXIT, writeLine, type CliIo } from "./io";
import { parseCommandLine, settingsFrom, SETTINGS_HELP } from "./settingsFlags";

export const DAEMON_USAGE = `usage: g8s daemon [settings]

Reconciles every stack of the project on its interval, serves /healthz, /readyz, /metrics and
/api/stacks on <host>:<port>, and stops cleanly on SIGTERM or SIGINT (running operations are
aborted and waited for up to the shutdown grace).

${SETTINGS_HELP}`;

/** Polls the branch on the configured interval; returns the stop function. */
function followBranch(settings: Settings, reconciler: Reconciler): () => void {
  const { scheduler, logger } = reconciler;
  const follower = new GitFollower(
    settings.projectDir,
    settings.gitRemote,
    settings.gitBranch as string,
    {
      refresh: () => scheduler.refresh(),
      requestRun: (s) => scheduler.requestRun(s),
      stackNames: () => scheduler.list().map((s) => s.name),
    },
    logger,
  );
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = () => {
    follower
      .poll()
      .catch((err: Error) => logger.warn({ err: err.message }, "git fetch failed: retrying"))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, settings.gitPollIntervalMs);
      });
  };
  logger.info({ remote: settings.gitRemote, branch: settings.gitBranch }, "following git branch");
  tick();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}

export async function runDaemon(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandLine(argv, { help: { type: "boolean", short: "h" } });
  if (values.help) {
    writeLine(io.stdout, DAEMON_USAGE);
    return EXIT.ok;
  }
  const settings = settingsFrom(values, io);
  let reconciler;
  try {
    reconciler = await buildReconciler(settings, { env: io.env, coordinate: true });
  } catch (err) {
    if (err instanceof ToolchainError || err instanceof KubeconfigError) {
      writeLine(io.stderr, `g8s daemon: ${err.message}`);
      return EXIT.problems;
    }
    throw err;
  }
  const { logger, scheduler } = reconciler;
  const server = buildServer(reconciler);
  let resolveStop: (signal: string) => void = () => undefined;
  const stopRequested = new Promise<string>((resolve) => (resolveStop = resolve));
  const unsubscribe = io.onSignal?.((signal) => resolveStop(signal)) ?? (() => undefined);
  try {
    const { port } = await server.listen(settings.port, settings.host);
    if (!settings.apiToken) logger.warn({}, "no API token (G8S_API_TOKEN(_FILE)): POST routes answer 403");
    logger.info(
      {
        host: settings.host,
        port,
        projectDir: settings.projectDir,
        stateDir: settings.stateDir,
        concurrency: settings.concurrency,
        runtime: io.runtime ?? "sources",
        ...(reconciler.coordinator ? { replica: reconciler.coordinator.replica } : {}),
      },
      "g8s daemon listening",
    );
    // The first renew-and-list before the first discovery: nothing runs before the lease is held.
    await reconciler.coordinator?.start();
    await reconciler.shared?.view.start();
    await scheduler.start();
    logger.info({ stacks: scheduler.list().length }, "first discovery done: ready");
    await reconciler.hostWatch?.start();
    reconciler.etcdWatch?.start();
    const stopFollowing = settings.gitBranch ? followBranch(settings, reconciler) : () => undefined;
    const signal = await stopRequested;
    logger.info({ signal, graceMs: settings.shutdownGraceMs }, "shutting down");
    stopFollowing();
    reconciler.changes?.stop();
    await reconciler.hostWatch?.stop();
    await reconciler.etcdWatch?.stop();
    await scheduler.stop(settings.shutdownGraceMs);
    reconciler.shared?.view.stop();
    await reconciler.shared?.store.flush();
    // Deleting the lease hands this replica's stacks to the others at once.
    await reconciler.coordinator?.stop();
    await server.close();
    logger.info({}, "stopped");
    return EXIT.ok;
  } finally {
    unsubscribe();
  }
}
