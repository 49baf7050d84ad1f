/** `g8s daemon`: reconcile every stack on its schedule until SIGTERM/SIGINT. */
import { buildReconciler, buildServer } from "../main";
import { ToolchainError } from "../engine";
import { EXIT, writeLine, type CliIo } from "./io";
import { parseCommandLine, settingsFrom, SETTINGS_HELP } from "./settingsFlags";

export const DAEMON_USAGE = `usage: g8s daemon [settings]

Reconciles every stack of the project on its interval, serves /healthz, /readyz, /metrics and
/api/stacks on <host>:<port>, and stops cleanly on SIGTERM or SIGINT (running operations are
aborted and waited for up to the shutdown grace).

${SETTINGS_HELP}`;

export async function runDaemon(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandLine(argv, { help: { type: "boolean", short: "h" } });
  if (values.help) {
    writeLine(io.stdout, DAEMON_USAGE);
    return EXIT.ok;
  }
  const settings = settingsFrom(values, io);
  let reconciler;
  try {
    reconciler = await buildReconciler(settings, { env: io.env });
  } catch (err) {
    if (err instanceof ToolchainError) {
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
      },
      "g8s daemon listening",
    );
    await scheduler.start();
    logger.info({ stacks: scheduler.list().length }, "first discovery done: ready");
    const signal = await stopRequested;
    logger.info({ signal, graceMs: settings.shutdownGraceMs }, "shutting down");
    await scheduler.stop(settings.shutdownGraceMs);
    await server.close();
    logger.info({}, "stopped");
    return EXIT.ok;
  } finally {
    unsubscribe();
  }
}
