/**
 * Following a git branch (`--git-branch`): poll with `git fetch`; when the branch has new
 * commits, fast-forward the project's checkout and ask for an immediate pass over exactly the
 * stacks those commits touch (the program changing touches all). A checkout that cannot be
 * fast-forwarded (local commits or edits) is left alone and reported: the reconciler never
 * discards work.
 */
import { git, parseNameStatus, touchedStacks } from "./changes";

export interface FollowTarget {
  /** Re-reads the stack files (new or removed files), then runs the named stacks now. */
  refresh(): Promise<void>;
  requestRun(stack: string): { accepted: boolean };
  stackNames(): string[];
}

export interface FollowLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface FollowResult {
  readonly from: string;
  readonly to: string;
  readonly stacks: readonly string[];
}

export class GitFollower {
  constructor(
    private readonly projectDir: string,
    private readonly remote: string,
    private readonly branch: string,
    private readonly target: FollowTarget,
    private readonly log: FollowLog,
  ) {}

  private async git(...args: string[]): Promise<string> {
    return (await git(this.projectDir, args)).trim();
  }

  /** One poll. Resolves with what moved, or undefined when nothing did (or it could not move). */
  async poll(): Promise<FollowResult | undefined> {
    await this.git("fetch", "--quiet", this.remote, this.branch);
    const from = await this.git("rev-parse", "HEAD");
    const to = await this.git("rev-parse", "FETCH_HEAD");
    if (from === to) return undefined;
    try {
      await this.git("merge", "--ff-only", "--quiet", to);
    } catch (err) {
      this.log.warn(
        { from, to, err: (err as Error).message },
        `cannot fast-forward to ${this.remote}/${this.branch}: local commits or edits; not following until resolved`,
      );
      return undefined;
    }
    const changes = parseNameStatus(await this.git("diff", "--name-status", "--no-renames", "--relative", from, to));
    await this.target.refresh();
    const stacks = touchedStacks(changes, this.target.stackNames())
      .filter((t) => t.reason !== "removed")
      .map((t) => t.stack);
    for (const stack of stacks) this.target.requestRun(stack);
    this.log.info({ from, to, stacks }, `followed ${this.remote}/${this.branch}`);
    return { from, to, stacks };
  }
}
