/**
 * Debian's PostgreSQL, started by a test on loopback in a temporary directory of its own: a fresh cluster
 * (initdb) with a password-protected role and one database, the Pulumi PostgreSQL backend's URL
 * for it, and stop() that ends the server by its pid. PostgreSQL refuses to run as root, so as
 * root the server runs as the `postgres` user Debian's package creates.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { PORT_FLOOR, portIsFree } from "../../automation/host/ports";

export interface Postgres {
  /** `postgres://g8s:<password>@127.0.0.1:<port>/state?sslmode=disable`: the backend URL. */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Where the Pulumi backend's keys begin: its URL's path (`state/.pulumi/stacks/…`). */
  readonly keys: string;
  /** Runs SQL in the state database as the g8s role; its output (unaligned, tuples only). */
  sql(statement: string): string;
  /**
   * Writes a lock on a stack of the project as the Pulumi CLI does (a row holding the base64 of
   * its JSON), as if taken by `pid` on `hostname` at `at`; returns its key.
   */
  plantLock(project: string, stack: string, owner: { pid: number; hostname: string; at: Date }): string;
  stop(): Promise<void>;
}

const USER = "g8s";
const DATABASE = "state";

/** The newest installed server's bin directory, or a message naming the package to install. */
export function postgresBinDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, "bin", "postgres")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0)
    throw new Error("PostgreSQL is not installed: apt-get install postgresql (npm test's provisioning does)");
  return path.join(root, versions[0], "bin");
}

function run(bin: string, args: readonly string[], as?: { uid: number; gid: number }, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(bin, args, { encoding: "utf8", env: { ...process.env, ...env }, ...(as ?? {}), timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

async function freePort(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = PORT_FLOOR + Math.floor(Math.random() * 20_000);
    if (await portIsFree(port)) return port;
  }
  throw new Error("no free port for PostgreSQL");
}

/**
 * initdb into a new temporary directory (its own: a test sandbox is closed to the postgres
 * user), start the server on 127.0.0.1, create the role's database. stop() removes it all.
 */
export async function startPostgres(): Promise<Postgres> {
  const bin = postgresBinDir();
  let as: { uid: number; gid: number } | undefined;
  if (process.getuid?.() === 0) {
    const uid = Number(run("id", ["-u", "postgres"]).trim());
    const gid = Number(run("id", ["-g", "postgres"]).trim());
    as = { uid, gid };
  }
  const dir = mkdtempSync(path.join(tmpdir(), "g8s-postgres-"));
  const data = path.join(dir, "data");
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const pwfile = path.join(dir, "pwfile");
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (as) {
    chownSync(dir, as.uid, as.gid);
    chownSync(pwfile, as.uid, as.gid);
  }
  run(
    path.join(bin, "initdb"),
    ["-D", data, "-U", USER, `--pwfile=${pwfile}`, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"],
    as,
    { LC_ALL: "C.UTF-8" },
  );
  const port = await freePort();
  // Durability is not what these tests are about: no fsync, no full-page writes.
  const server: ChildProcess = spawn(
    path.join(bin, "postgres"),
    ["-D", data, "-h", "127.0.0.1", "-p", String(port), "-k", dir, "-c", "fsync=off", "-c", "full_page_writes=off"],
    { stdio: ["ignore", "ignore", "pipe"], ...(as ?? {}) },
  );
  let stderr = "";
  server.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()));
  const env = { PGPASSWORD: password };
  const client = (db: string, statement: string) =>
    run(
      path.join(bin, "psql"),
      ["-h", "127.0.0.1", "-p", String(port), "-U", USER, "-d", db, "-XAtq", "-c", statement],
      undefined,
      env,
    );
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = spawnSync(path.join(bin, "pg_isready"), ["-h", "127.0.0.1", "-p", String(port)]);
    if (ready.status === 0) break;
    if (server.exitCode !== null || Date.now() > deadline) {
      server.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`PostgreSQL did not start on 127.0.0.1:${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  client("postgres", `CREATE DATABASE ${DATABASE}`);
  return {
    url: `postgres://${USER}:${password}@127.0.0.1:${port}/${DATABASE}?sslmode=disable`,
    port,
    pid: server.pid as number,
    keys: `${DATABASE}/.pulumi`,
    sql: (statement) => client(DATABASE, statement),
    plantLock: (project, stack, owner) => {
      const key = `${DATABASE}/.pulumi/locks/organization/${project}/${stack}/${randomUUID()}.json`;
      const content = { pid: owner.pid, username: USER, hostname: owner.hostname, timestamp: owner.at.toISOString() };
      const blob = JSON.stringify({ data: Buffer.from(JSON.stringify(content)).toString("base64") });
      client(DATABASE, `INSERT INTO pulumi_state (key, data) VALUES ('${key}', '${blob}')`);
      return key;
    },
    stop: async () => {
      if (server.exitCode === null && server.signalCode === null) {
        server.kill("SIGINT"); // fast shutdown
        const killer = setTimeout(() => server.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(killer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
