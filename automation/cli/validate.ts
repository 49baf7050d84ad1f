/** `g8s validate [files…]`: parse stack files offline, one line per problem. */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { ClusterSpecError, formatIssue, parseStackFile, stackNameOf, type SpecIssue } from "../../components/spec";
import { EXIT, UsageError, writeLine, type CliIo } from "./io";

export const VALIDATE_USAGE = `usage: g8s validate [--json] [--project-dir DIR] [FILE|DIR…]

Checks stack files offline: YAML, the g8s config keys and the cluster spec.
A DIR stands for every *.yaml file in it. Without arguments, every *.yaml file in
<project-dir>/stacks/ (default: the current directory).
Prints one line per problem and exits 1 if there is any, 0 when every file is valid.
  --json             print [{file, stack, valid, issues: [{path, message}]}] instead`;

export interface FileResult {
  readonly file: string;
  readonly stack?: string;
  readonly valid: boolean;
  readonly issues: readonly SpecIssue[];
}

/** Every stack file of a project, sorted. */
export async function listStackFiles(stacksDir: string): Promise<string[]> {
  const entries = await fs.readdir(stacksDir, { withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
    .map((e) => path.join(stacksDir, e.name))
    .sort();
}

export async function validateFile(file: string, display: string): Promise<FileResult> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return { file: display, valid: false, issues: [{ path: "", message: `cannot read the file (${code})` }] };
  }
  try {
    const parsed = parseStackFile(text, display);
    return { file: display, stack: parsed.stack, valid: true, issues: [] };
  } catch (err) {
    if (err instanceof ClusterSpecError) {
      return { file: display, stack: stackNameOf(file), valid: false, issues: err.issues };
    }
    throw err;
  }
}

export async function runValidate(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = (() => {
    try {
      return parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
          json: { type: "boolean" },
          "project-dir": { type: "string" },
          help: { type: "boolean", short: "h" },
        },
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  })();
  if (values.help) {
    writeLine(io.stdout, VALIDATE_USAGE);
    return EXIT.ok;
  }
  const projectDir = path.resolve(io.cwd, values["project-dir"] ?? ".");
  let files: string[] = [];
  for (const arg of positionals) {
    const target = path.resolve(io.cwd, arg);
    const isDir = await fs.stat(target).then(
      (s) => s.isDirectory(),
      () => false,
    );
    files.push(...(isDir ? await listStackFiles(target) : [target]));
  }
  if (positionals.length === 0) {
    const stacksDir = path.join(projectDir, "stacks");
    try {
      files = await listStackFiles(stacksDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      writeLine(io.stdout, `${path.relative(io.cwd, stacksDir) || "."}: cannot list stack files (${code})`);
      return EXIT.problems;
    }
    if (files.length === 0) {
      writeLine(io.stdout, `${path.relative(io.cwd, stacksDir)}: no stack files (Pulumi.<stack>.yaml) to validate`);
      return EXIT.problems;
    }
  }
  const results: FileResult[] = [];
  for (const file of files) results.push(await validateFile(file, path.relative(io.cwd, file) || file));

  if (values.json) {
    writeLine(io.stdout, JSON.stringify(results, null, 2));
  } else {
    for (const r of results) for (const issue of r.issues) writeLine(io.stdout, formatIssue(issue, r.file));
    const invalid = results.filter((r) => !r.valid);
    const problems = invalid.reduce((n, r) => n + r.issues.length, 0);
    writeLine(
      io.stderr,
      invalid.length === 0
        ? `${results.length} stack file(s) valid`
        : `${invalid.length} of ${results.length} stack file(s) invalid, ${problems} problem(s)`,
    );
  }
  return results.every((r) => r.valid) ? EXIT.ok : EXIT.problems;
}
