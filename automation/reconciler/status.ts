/**
 * Stack status persisted in the state directory, so it survives a restart. Written atomically
 * (temporary file + rename): a crash leaves the old file or the new one, never half of one.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type { StackStatus } from "./types";

export const STATUS_FILE = "status.json";
const FORMAT_VERSION = 1;

export interface StatusStore {
  load(): Promise<Map<string, StackStatus>>;
  save(statuses: readonly StackStatus[]): Promise<void>;
}

export class FileStatusStore implements StatusStore {
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly stateDir: string) {}

  get file(): string {
    return path.join(this.stateDir, STATUS_FILE);
  }

  async load(): Promise<Map<string, StackStatus>> {
    let text: string;
    try {
      text = await fs.readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return new Map();
      throw err;
    }
    try {
      const doc = JSON.parse(text) as { version?: number; stacks?: StackStatus[] };
      if (doc.version !== FORMAT_VERSION || !Array.isArray(doc.stacks)) return new Map();
      return new Map(doc.stacks.map((s) => [s.name, s]));
    } catch {
      // A corrupt status file costs history, not correctness: start afresh.
      return new Map();
    }
  }

  /** Saves are serialised: the last call's content wins. */
  save(statuses: readonly StackStatus[]): Promise<void> {
    const body = JSON.stringify({ version: FORMAT_VERSION, stacks: statuses }, null, 1);
    this.writing = this.writing.then(async () => {
      await fs.mkdir(this.stateDir, { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await fs.writeFile(tmp, body);
      await fs.rename(tmp, this.file);
    });
    return this.writing;
  }
}

export class MemoryStatusStore implements StatusStore {
  saved: StackStatus[] = [];
  saves = 0;
  async load(): Promise<Map<string, StackStatus>> {
    return new Map(this.saved.map((s) => [s.name, s]));
  }
  async save(statuses: readonly StackStatus[]): Promise<void> {
    this.saves++;
    this.saved = structuredClone([...statuses]);
  }
}
