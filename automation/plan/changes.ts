/**
 * Which stacks a change touches: a changed stack file touches its stack; a change to the
 * program (components/, index.ts, package*.json, Pulumi.yaml, policy/, tsconfig.json, any
 * .ts file at the project root) touches every stack; anything else (docs, tests, Markdown
 * anywhere) none.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { stackNameOf } from "../../components/spec";

export type FileStatus = "added" | "modified" | "removed";

export interface FileChange {
  /** Path relative to the project directory. */
  readonly path: string;
  readonly status: FileStatus;
}

export interface TouchedStack {
  readonly stack: string;
  /** Why: its file was added/modified/removed, or the program changed (`program`). */
  readonly reason: FileStatus | "program";
}

const PROGRAM_PATTERNS: readonly RegExp[] = [
  /^components\//,
  /^policy\//,
  /^package(-lock)?\.json$/,
  /^Pulumi\.ya?ml$/,
  /^tsconfig\.json$/,
  /^[^/]+\.ts$/,
];

export function isProgramFile(path: string): boolean {
  return !path.endsWith(".md") && PROGRAM_PATTERNS.some((re) => re.test(path));
}

function stackOf(path: string): string | undefined {
  return path.startsWith("stacks/") && !path.slice(7).includes("/") ? stackNameOf(path) : undefined;
}

/**
 * The touched stacks, sorted by name. `currentStacks` are the stack files present now (they all
 * count when the program changed; removed stacks are reported from the change itself).
 */
export function touchedStacks(changes: readonly FileChange[], currentStacks: readonly string[]): TouchedStack[] {
  const touched = new Map<string, TouchedStack>();
  const programChanged = changes.some((c) => isProgramFile(c.path));
  if (programChanged) for (const stack of currentStacks) touched.set(stack, { stack, reason: "program" });
  for (const change of changes) {
    const stack = stackOf(change.path);
    if (stack !== undefined) touched.set(stack, { stack, reason: change.status });
  }
  return [...touched.values()].sort((a, b) => a.stack.localeCompare(b.stack));
}

const run = promisify(execFile);

/** Runs git in the project directory; the error carries git's own message. */
export async function git(projectDir: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run("git", ["-C", projectDir, ...args], { maxBuffer: 32 << 20 });
    return stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`git ${args.join(" ")}: ${stderr || (err as Error).message}`, { cause: err });
  }
}

/** `git diff --name-status` output as changes. */
export function parseNameStatus(diff: string): FileChange[] {
  const changes: FileChange[] = [];
  for (const line of diff.split("\n")) {
    const [code, path] = line.split("\t");
    if (!code || !path) continue;
    changes.push({ path, status: code.startsWith("A") ? "added" : code.startsWith("D") ? "removed" : "modified" });
  }
  return changes;
}

/**
 * Files changed between the merge base of `base` and HEAD and the working tree (so uncommitted
 * edits and new stack files count too), relative to the project directory.
 */
export async function changedFiles(projectDir: string, base: string): Promise<FileChange[]> {
  const mergeBase = (await git(projectDir, ["merge-base", base, "HEAD"])).trim();
  const diff = await git(projectDir, ["diff", "--name-status", "--no-renames", "--relative", mergeBase]);
  const changes = new Map(parseNameStatus(diff).map((c) => [c.path, c]));
  const untracked = await git(projectDir, ["ls-files", "--others", "--exclude-standard"]);
  for (const path of untracked.split("\n").filter(Boolean)) changes.set(path, { path, status: "added" });
  return [...changes.values()].sort((a, b) => a.path.localeCompare(b.path));
}
