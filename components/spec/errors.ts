/** One problem found in a stack file: where (a config path) and what to do. */
export interface SpecIssue {
  /** Config path inside `g8s:cluster`, formatted like `nodePools[1].max`; "" for the whole value. */
  readonly path: string;
  readonly message: string;
}

/** Formats a path like `["nodePools", 1, "max"]` as `nodePools[1].max`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const part of path) {
    const key = String(part);
    if (typeof part === "number") out += `[${part}]`;
    else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) out += `[${JSON.stringify(key)}]`;
    else out += out === "" ? key : `.${key}`;
  }
  return out;
}

/** Formats one issue as the single line `g8s validate` prints. */
export function formatIssue(issue: SpecIssue, source?: string): string {
  const where = [source, issue.path].filter((s) => s !== undefined && s !== "").join(": ");
  return where === "" ? issue.message : `${where}: ${issue.message}`;
}

/** Thrown by `parseClusterSpec` when the spec is invalid; carries every problem found. */
export class ClusterSpecError extends Error {
  public readonly issues: readonly SpecIssue[];
  public readonly source?: string;

  constructor(issues: readonly SpecIssue[], source?: string) {
    const lines = issues.map((i) => formatIssue(i, source));
    super(
      issues.length === 1
        ? `invalid cluster spec: ${lines[0]}`
        : `invalid cluster spec (${issues.length} problems):\n  ${lines.join("\n  ")}`,
    );
    this.name = "ClusterSpecError";
    this.issues = issues;
    this.source = source;
  }

  /** One line per issue, `source: path: message`. */
  lines(): string[] {
    return this.issues.map((i) => formatIssue(i, this.source));
  }
}
