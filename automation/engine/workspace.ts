/**
 * The engine's private workspace: g8s never lets Pulumi write the stack files it follows.
 *
 * Pulumi writes into a stack's config file (`encryptionsalt:` when a passphrase-protected stack
 * is created, the secrets-provider state after a fallback), so running the engine on the
 * project's `stacks/` would leave a reconciled checkout dirty. Instead every engine run uses a
 * directory the reconciler owns (`<state>/workspace`): a `Pulumi.yaml` that is the project's own
 * with `main` pointing back at the project (the program runs from there, unchanged) and
 * `stackConfigDir: stacks`, and a copy of each stack file synced from the project before every
 * operation. The copy keeps what Pulumi wrote there (the salt, an encrypted data key) as long as
 * the project's file does not set its own secrets provider state.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { parse as parseYaml, parseDocument, stringify } from "yaml";

/** Stack-file keys that hold the secrets provider's state, written by Pulumi. */
export const SECRETS_STATE_KEYS = ["secretsprovider", "encryptedkey", "encryptionsalt"] as const;

/** Folder of the stack files inside the private workspace. */
const STACKS_DIR = "stacks";

/**
 * The workspace's Pulumi.yaml: the project's, with `main` made absolute (the program and its
 * node_modules stay in the project) and the stack files read from the workspace's own folder.
 */
export function workspaceProjectFile(projectText: string, projectDir: string, projectFile: string): string {
  const doc: unknown = parseYaml(projectText);
  if (
    doc === null ||
    typeof doc !== "object" ||
    Array.isArray(doc) ||
    typeof (doc as { name?: unknown }).name !== "string"
  )
    throw new Error(`${projectFile}: must be a Pulumi project file with a name`);
  const project = doc as Record<string, unknown>;
  const main = typeof project.main === "string" ? path.resolve(projectDir, project.main) : path.resolve(projectDir);
  return stringify({ ...project, main, stackConfigDir: STACKS_DIR });
}

function secretsState(text: string | undefined): Partial<Record<(typeof SECRETS_STATE_KEYS)[number], unknown>> {
  if (text === undefined) return {};
  const doc: unknown = parseYaml(text);
  if (doc === null || typeof doc !== "object") return {};
  const state: Partial<Record<(typeof SECRETS_STATE_KEYS)[number], unknown>> = {};
  for (const key of SECRETS_STATE_KEYS) {
    const value = (doc as Record<string, unknown>)[key];
    if (value !== undefined && value !== null) state[key] = value;
  }
  return state;
}

/**
 * The engine's copy of a stack file: the project's text, plus each piece of secrets provider
 * state the engine wrote into the previous copy that the project's file does not set itself (a
 * file with its own salt or key wins, and a different `secretsprovider` drops the old state).
 */
export function engineStackFile(sourceText: string, previousCopy: string | undefined): string {
  const source = secretsState(sourceText);
  const previous = secretsState(previousCopy);
  const sameProvider = (source.secretsprovider ?? "") === (previous.secretsprovider ?? "");
  if (!sameProvider || Object.keys(previous).length === 0) return sourceText;
  const doc = parseDocument(sourceText);
  for (const key of SECRETS_STATE_KEYS) {
    if (previous[key] !== undefined && source[key] === undefined) doc.set(key, previous[key]);
  }
  return doc.toString();
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Writes `text` unless the file already holds it, through a rename (a reader never sees half). */
async function writeIfChanged(file: string, text: string): Promise<void> {
  if ((await readIfExists(file)) === text) return;
  const tmp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  await fs.writeFile(tmp, text, { mode: 0o600 });
  await fs.rename(tmp, file);
}

export class EngineWorkspace {
  /**
   * @param projectDir the Pulumi project (its `Pulumi.yaml`, program and `stacks/`), only read.
   * @param dir the private workspace; created on first use.
   */
  constructor(
    readonly projectDir: string,
    readonly dir: string,
  ) {}

  /** Brings the workspace's Pulumi.yaml and the stack's file up to date with the project. */
  async sync(stack?: string): Promise<void> {
    await fs.mkdir(path.join(this.dir, STACKS_DIR), { recursive: true, mode: 0o700 });
    const projectFile = path.join(this.projectDir, "Pulumi.yaml");
    const projectText = await fs.readFile(projectFile, "utf8");
    await writeIfChanged(
      path.join(this.dir, "Pulumi.yaml"),
      workspaceProjectFile(projectText, this.projectDir, projectFile),
    );
    if (stack === undefined) return;
    const name = `Pulumi.${stack}.yaml`;
    const source = await readIfExists(path.join(this.projectDir, STACKS_DIR, name));
    // A stack without a file (an orphan) keeps its last copy: its salt still decrypts its state.
    if (source === undefined) return;
    const copy = path.join(this.dir, STACKS_DIR, name);
    await writeIfChanged(copy, engineStackFile(source, await readIfExists(copy)));
  }
}
