/** Command-line flags for every reconciler setting, shared by `daemon` and `reconcile`. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import {
  ENV_NAMES,
  flagName,
  loadSettings,
  SettingsError,
  type RawSettings,
  type SettingName,
  type Settings,
} from "../config";
import { PROJECT_ROOT } from "../engine";
import { UsageError, type CliIo } from "./io";

type Options = NonNullable<ParseArgsConfig["options"]>;

export const SETTINGS_HELP = `settings (flag, environment variable, or a key of the --config YAML file):
${(Object.keys(ENV_NAMES) as SettingName[])
  .filter((k) => k !== "passphrase" && k !== "apiToken")
  .map((k) => `  ${flagName(k).padEnd(28)} ${ENV_NAMES[k]}`)
  .join("\n")}
  (the passphrase and API token come from the environment or files, never from flags)`;

/** Flags for every setting except secrets, which must not appear in a process list. */
export function settingsOptions(): Options {
  const options: Options = { config: { type: "string" } };
  for (const key of Object.keys(ENV_NAMES) as SettingName[]) {
    if (key === "passphrase" || key === "apiToken") continue;
    const boolean = key === "clearPendingOperations" || key === "offline";
    options[flagName(key).slice(2)] = { type: boolean ? "boolean" : "string" };
  }
  return options;
}

export function parseCommandLine(argv: string[], extra: Options) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: { ...settingsOptions(), ...extra } });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Settings from the parsed flags, the environment and --config; bad values become a usage error. */
export function settingsFrom(values: Record<string, unknown>, io: CliIo): Settings {
  const flags: RawSettings = {};
  for (const key of Object.keys(ENV_NAMES) as SettingName[]) {
    const value = values[flagName(key).slice(2)];
    if (value !== undefined) flags[key] = value;
  }
  try {
    return loadSettings({
      flags,
      env: io.env,
      file: values.config as string | undefined,
      cwd: io.cwd,
      defaultProjectDir: PROJECT_ROOT,
    });
  } catch (err) {
    if (err instanceof SettingsError) throw new UsageError(`invalid settings:\n  ${err.problems.join("\n  ")}`);
    throw err;
  }
}
