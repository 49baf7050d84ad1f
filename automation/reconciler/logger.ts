/**
 * The reconciler's logger: pino JSON lines with secrets redacted structurally. Structured fields
 * are censored by path (`REDACT_PATHS`); free text (engine errors, CLI output) goes through
 * `redactText` before it is logged or stored, and the `err` serializer applies it to every
 * logged error's message and stack. `redactText` knows secrets by their shape (PEM blocks,
 * bearer and Vault tokens, `name=value` with a secret's name, a URL's password) and the known
 * secrets by value, but only as whole tokens: a passphrase `pp` is not cut out of "stopped".
 * A known secret shorter than MIN_REDACTABLE_SECRET is not searched for at all (it would mark
 * ordinary words, and so show where it occurs); the logger warns about it once.
 */
import pino from "pino";

export const DEFAULT_LOG_LEVEL = "info";
export const DEFAULT_LOGGER_NAME = "g8s-reconciler";
export const REDACTED = "[redacted]";

/**
 * Field paths censored in every log line. A leading `*.` covers one level of nesting, so each
 * secret is listed both at the top level and one level down (`{ stack: { token } }`).
 * Every value under `env` is censored, not a list of known names: an environment map may hold
 * any credential (a backend URL with a password, a cloud key) and its keys alone are what
 * a reader needs.
 */
export const REDACT_PATHS: readonly string[] = [
  "passphrase",
  "*.passphrase",
  "password",
  "*.password",
  "token",
  "*.token",
  "apiToken",
  "*.apiToken",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "headers.cookie",
  "*.headers.cookie",
  "privateKey",
  "*.privateKey",
  "kubeconfig",
  "*.kubeconfig",
  "secretAccessKey",
  "*.secretAccessKey",
  "PULUMI_CONFIG_PASSPHRASE",
  "PULUMI_ACCESS_TOKEN",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "VAULT_TOKEN",
  "env.*",
  "*.env.*",
];

export interface LoggerOptions {
  /** pino level; default `info`. */
  readonly level?: string;
  /** Where lines go; default stdout. Tests pass an in-memory stream. */
  readonly destination?: pino.DestinationStream;
  /** The `name` field of every line; default `g8s-reconciler`. */
  readonly name?: string;
  /** Known secret values (the passphrase, the API token) scrubbed from messages and errors. */
  readonly secrets?: readonly string[];
}

/**
 * Known secrets shorter than this are not searched for in free text: even as whole tokens they
 * match ordinary words (`true`, `1234`, `test`), and every such mark would tell a reader the
 * passphrase. Named fields and `PULUMI_CONFIG_PASSPHRASE=…` still hide them.
 */
export const MIN_REDACTABLE_SECRET = 8;

export function createLogger(options: LoggerOptions = {}): pino.Logger {
  const scrub = (text: string) => redactText(text, options.secrets);
  const pinoOptions: pino.LoggerOptions = {
    level: options.level ?? DEFAULT_LOG_LEVEL,
    base: { name: options.name ?? DEFAULT_LOGGER_NAME, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // "level":"info" rather than 30: readable without pino-pretty, and what log stores index.
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    // Engine errors quote CLI output, and their extra fields (an Automation API CommandError's
    // stdout and stderr, a `cause`) are serialized too: every string in them is scrubbed.
    serializers: { err: (err: Error) => scrubStrings(pino.stdSerializers.err(err), scrub, 0) },
    hooks: {
      // The message and each string interpolation argument are scrubbed (one by one: a template's
      // `Bearer %s` with a bare token argument is not caught). pino also copies an error's raw
      // message into `msg` when none is given (`log.error(err)`, `log.error({ err })`), past the
      // serializer, so such calls get the scrubbed message as an explicit one.
      logMethod(args, method) {
        const scrubbed: unknown[] = args.map((arg) => (typeof arg === "string" ? scrub(arg) : arg));
        const first: unknown = args[0];
        const err = first instanceof Error ? first : (first as { err?: unknown } | null)?.err;
        if (args.length === 1 && err instanceof Error) scrubbed.push(scrub(err.message));
        method.apply(this, scrubbed as Parameters<pino.LogFn>);
      },
    },
  };
  const logger = options.destination ? pino(pinoOptions, options.destination) : pino(pinoOptions);
  if ((options.secrets ?? []).some((s) => s.length > 0 && s.length < MIN_REDACTABLE_SECRET)) {
    logger.warn(
      { minLength: MIN_REDACTABLE_SECRET },
      `a known secret (the passphrase) is shorter than ${MIN_REDACTABLE_SECRET} characters: it is not searched for in free text, ` +
        "only hidden where it is named (PULUMI_CONFIG_PASSPHRASE=…, passphrase fields); use a longer passphrase",
    );
  }
  return logger;
}

function scrubStrings<T>(value: T, scrub: (text: string) => string, depth: number): T {
  if (typeof value === "string") return scrub(value) as T;
  if (value === null || typeof value !== "object" || depth > 5) return value;
  if (Array.isArray(value)) return value.map((v: unknown) => scrubStrings(v, scrub, depth + 1)) as T;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubStrings(v, scrub, depth + 1)])) as T;
}

/** A value as it may appear after `key=` or `key: `: quoted (spaces allowed) or up to whitespace. */
const VALUE = String.raw`(?:"[^"\n]*"|'[^'\n]*'|[^\s"',;]+)`;

/**
 * A bounded name prefix (`VAULT_`, `refresh-`): unbounded, a long base64url run would make the
 * match quadratic.
 */
const PREFIX = "[A-Za-z0-9_-]{0,40}";

/** Names whose value is a secret in `name=value` / `name: value` text (matched ignoring case). */
const SECRET_KEYS = [
  "client-key-data",
  `${PREFIX}token`,
  `${PREFIX}passphrase`,
  `${PREFIX}password`,
  "aws_secret_access_key",
].join("|");

/**
 * Free-text patterns, applied in order. Each keeps the label (`token: `, `Bearer `) so a reader
 * still sees what was there. An unquoted value is taken up to whitespace, so a passphrase with
 * spaces is only partly caught here: pass the real secrets to `redactText` to be sure.
 */
const TEXT_PATTERNS: readonly { readonly pattern: RegExp; readonly replace: string }[] = [
  // A PEM private key block; a block cut off by truncated output runs to the end of the text.
  {
    pattern: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g,
    replace: "[redacted private key]",
  },
  { pattern: /\bBearer\s+[A-Za-z0-9\-._~+/]+=*/g, replace: `Bearer ${REDACTED}` },
  // key=value and key: value forms: kubeconfig `client-key-data:` and `token:` (also `id-token`,
  // `refresh-token`), env assignments (PULUMI_CONFIG_PASSPHRASE=, VAULT_TOKEN=, AWS_SESSION_TOKEN=),
  // the AWS credentials file (`aws_secret_access_key = …`), and JSON (`"token": "…"`).
  // `\b` before and `["']?\s*[=:]` after the name leave PULUMI_CONFIG_PASSPHRASE_FILE=/path alone.
  {
    pattern: new RegExp(String.raw`\b((?:${SECRET_KEYS})["']?\s*[=:]\s*)${VALUE}`, "gi"),
    replace: `$1${REDACTED}`,
  },
  // Vault tokens: hvs./hvb./hvr. (Vault >= 1.10) and the legacy s. + 24 characters.
  { pattern: /\bhv[sbr]\.[A-Za-z0-9_-]{20,}/g, replace: REDACTED },
  { pattern: /\bs\.[A-Za-z0-9]{24}\b/g, replace: REDACTED },
  // The password in a URL's userinfo, e.g. a postgres:// backend URL.
  { pattern: /\b([a-z][a-z0-9+.-]{0,30}:\/\/[^\s:/@]{0,256}:)[^\s/@]{1,256}@/gi, replace: `$1${REDACTED}@` },
];

/** A known secret where it stands as a whole token: no letter, digit or `_` right before or after. */
function wholeToken(secret: string): RegExp {
  return new RegExp(String.raw`(?<![A-Za-z0-9_])${secret.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![A-Za-z0-9_])`, "g");
}

/**
 * Scrubs secrets from free text before it is logged or stored: first every known secret of at
 * least MIN_REDACTABLE_SECRET characters where it stands as a whole token (the passphrase, the
 * API token; longest first so one containing another goes whole), then the patterns above.
 */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = text;
  const known = secrets.filter((s) => s.length >= MIN_REDACTABLE_SECRET).sort((a, b) => b.length - a.length);
  for (const secret of known) out = out.replace(wholeToken(secret), REDACTED);
  for (const { pattern, replace } of TEXT_PATTERNS) {
    out = out.replace(pattern, replace);
  }
  return out;
}
