/**
 * An S3-compatible store for tests: `.tools/bin/g8s-s3` (tools/s3, gofakes3 in memory) started on
 * 127.0.0.1 with one bucket; the Pulumi backend URL for it (gocloud's S3 driver, path-style,
 * plain HTTP), keys read and written over its API, and stop() that ends it by its pid.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { PROJECT_ROOT } from "../../automation/engine";

export interface S3Store {
  /** `s3://state?endpoint=…`: the backend URL. */
  readonly url: string;
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  readonly pid: number;
  /** What the engine needs besides the URL: credentials the store accepts. */
  readonly env: Readonly<Record<string, string>>;
  /** The bucket's keys under a prefix. */
  keys(prefix: string): Promise<string[]>;
  /** Writes a lock on a stack of the project as the Pulumi CLI does, as if taken by `pid` on `hostname`; returns its key. */
  plantLock(project: string, stack: string, owner: { pid: number; hostname: string; at: Date }): Promise<string>;
  stop(): Promise<void>;
}

export interface S3Options {
  /** Default `state`. */
  readonly bucket?: string;
  /** Every request must then be signed (SigV4) with this key pair; `keys` and `plantLock` no longer work. */
  readonly signedBy?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

export async function startS3(options: S3Options = {}): Promise<S3Store> {
  const BUCKET = options.bucket ?? "state";
  const bin = path.join(PROJECT_ROOT, ".tools", "bin", "g8s-s3");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build it with npm run toolchain -- s3`);
  const signing = options.signedBy === undefined ? [] : ["--access-key-id", options.signedBy.accessKeyId];
  const child = spawn(bin, ["--listen", "127.0.0.1:0", "--bucket", BUCKET, ...signing], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, G8S_S3_SECRET_ACCESS_KEY: options.signedBy?.secretAccessKey ?? "" },
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`g8s-s3 did not start: ${stderr}`)), 15_000);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n")[0];
      if (out.includes("\n")) {
        clearTimeout(timer);
        resolve(line.trim());
      }
    });
    child.once("exit", (code) => reject(new Error(`g8s-s3 exited (${code}): ${stderr}`)));
  });
  const objectUrl = (key: string) => `${endpoint}/${BUCKET}/${key.split("/").map(encodeURIComponent).join("/")}`;
  const params = new URLSearchParams({ endpoint, region: "us-east-1", use_path_style: "true", disable_https: "true" });
  return {
    url: `s3://${BUCKET}?${params}`,
    endpoint,
    pid: child.pid as number,
    env: { AWS_ACCESS_KEY_ID: "g8s-test", AWS_SECRET_ACCESS_KEY: "g8s-test-secret", AWS_REGION: "us-east-1" },
    keys: async (prefix) => {
      const res = await fetch(`${endpoint}/${BUCKET}?list-type=2&prefix=${encodeURIComponent(prefix)}`);
      const xml = await res.text();
      return [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
    },
    plantLock: async (project, stack, owner) => {
      const key = `.pulumi/locks/organization/${project}/${stack}/${randomUUID()}.json`;
      const content = { pid: owner.pid, username: "g8s", hostname: owner.hostname, timestamp: owner.at.toISOString() };
      const res = await fetch(objectUrl(key), { method: "PUT", body: JSON.stringify(content) });
      if (!res.ok) throw new Error(`PUT ${key}: ${res.status} ${await res.text()}`);
      return key;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
}
