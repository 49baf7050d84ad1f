import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { lockOwnerState, reportedLocks } from "../../../automation/engine/pulumiEngine";
import {
  liveness,
  orphanedProcesses,
  parseStat,
  processEnv,
  processInfo,
  type ProcessInfo,
} from "../../../automation/os/processes";
import { hostname } from "node:os";

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, check: () => T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await wait(20);
  }
}

describe("process liveness (/proc)", () => {
  const started: number[] = [];
  afterEach(() => {
    for (const pid of started.splice(0)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
  });

  it("parses a stat line whose command name holds spaces and parentheses", () => {
    const line = "4242 (pulumi (x) y) S 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0";
    assert.deepEqual(parseStat(line, 1_000_000, 100), { pid: 4242, state: "S", ppid: 1, startedAtMs: 1_005_000 });
  });

  it("says a running process is alive and an exited one is not", async () => {
    const child = spawn("sleep", ["30"]);
    started.push(child.pid as number);
    assert.equal(liveness(child.pid as number), "alive");
    child.kill("SIGKILL");
    await new Promise((resolve) => child.on("exit", resolve));
    await until("the child to be reaped", () => (liveness(child.pid as number) === "exited" ? true : undefined));
  });

  it("counts a zombie as dead", async () => {
    // sh starts a short sleep in the background, then becomes a long sleep that never reaps it.
    const child = spawn("sh", ["-c", "sleep 0.1 & echo $!; exec sleep 30"]);
    started.push(child.pid as number);
    const pid = await new Promise<number>((resolve) => child.stdout.once("data", (b: Buffer) => resolve(Number(b))));
    await until("the background sleep to become a zombie", () => (processInfo(pid)?.state === "Z" ? true : undefined));
    assert.equal(liveness(pid), "zombie");
  });

  it("does not let a younger process with the recorded pid keep a lock alive (pid reuse)", () => {
    const me = processInfo(process.pid);
    assert.ok(me && me.startedAtMs > 0);
    assert.equal(liveness(process.pid, me.startedAtMs + 500), "alive", "recorded after it started: the same process");
    assert.equal(liveness(process.pid, me.startedAtMs - 60_000), "reused", "recorded a minute before it started");
  });

  it("judges a lock file's owner from its pid, host and timestamp", () => {
    const here = hostname();
    const now = new Date().toISOString();
    assert.equal(lockOwnerState({ pid: process.pid, hostname: here, timestamp: now }, here), "alive");
    assert.equal(lockOwnerState({ pid: process.pid, hostname: "elsewhere", timestamp: now }, here), "other-host");
    assert.equal(
      lockOwnerState({ pid: process.pid, hostname: here, timestamp: "2001-01-01T00:00:00Z" }, here),
      "reused",
    );
    const gone = spawnSync("true").pid as number;
    assert.equal(lockOwnerState({ pid: gone, hostname: here, timestamp: now }, here), "exited");
  });

  it("judges another host's lock dead only when that host ran only replicas that are gone", () => {
    const here = hostname();
    const now = new Date().toISOString();
    const gone = (host: string) => host === "node-7";
    assert.equal(lockOwnerState({ pid: 12, hostname: "node-7", timestamp: now }, here, gone), "replica-gone");
    assert.equal(lockOwnerState({ pid: 12, hostname: "node-8", timestamp: now }, here, gone), "other-host");
    assert.equal(
      lockOwnerState({ pid: 12, hostname: "node-7", timestamp: now }, here),
      "other-host",
      "no replicas known",
    );
    // This host's locks are judged by their pid, whatever the replicas say.
    assert.equal(
      lockOwnerState({ pid: process.pid, hostname: here, timestamp: now }, here, () => true),
      "alive",
    );
  });

  it("reads the locks a shared backend lists when it refuses an update (masked URL, user, host, pid, time)", () => {
    const message = [
      "code: 255",
      " stdout: ",
      " stderr: error: the stack is currently locked by 2 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.",
      "  postgres://****:****@127.0.0.1:5432/g8s/.pulumi/locks/organization/fixture/s1/7b1c.json: created by root@node-7 (pid 4711) at 2026-12-02T07:01:02Z",
      "  postgres://****:****@127.0.0.1:5432/g8s/.pulumi/locks/organization/fixture/s1/9e2a.json: created by @pod-g8s-1 (pid 12) at 2026-12-02T07:05:00+01:00",
      // The CLI prints the error to stdout and stderr: the message holds both.
      "  postgres://****:****@127.0.0.1:5432/g8s/.pulumi/locks/organization/fixture/s1/7b1c.json: created by root@node-7 (pid 4711) at 2026-12-02T07:01:02Z",
      "",
    ].join("\n");
    assert.deepEqual(reportedLocks(message), [
      {
        url: "postgres://****:****@127.0.0.1:5432/g8s/.pulumi/locks/organization/fixture/s1/7b1c.json",
        hostname: "node-7",
        pid: 4711,
        timestamp: "2026-12-02T07:01:02Z",
      },
      {
        url: "postgres://****:****@127.0.0.1:5432/g8s/.pulumi/locks/organization/fixture/s1/9e2a.json",
        hostname: "pod-g8s-1",
        pid: 12,
        timestamp: "2026-12-02T07:05:00+01:00",
      },
    ]);
    assert.deepEqual(reportedLocks("error: another update is in progress"), []);
  });

  it("finds marked processes whose driver died, with their children; leaves drivers and our children alone", async () => {
    const mark = `g8s-test-${process.pid}-${Date.now()}`;
    const env = { ...process.env, G8S_TEST_MARK: mark };
    // Ours: a marked child of this process.
    const ours = spawn("sleep", ["30"], { env });
    started.push(ours.pid as number);
    // Orphaned: sh starts a marked sleep with a marked child, prints its pid and exits.
    const sh = spawnSync("sh", ["-c", "sh -c 'sleep 30 & exec sleep 31' >/dev/null 2>&1 & echo $!"], {
      env,
      encoding: "utf8",
    });
    const orphan = Number(sh.stdout.trim());
    started.push(orphan);
    // A driver (the CLI's role) that outlived its parent is not an orphan to end.
    const driver = spawnSync("sh", ["-c", "sleep 33 >/dev/null 2>&1 & echo $!"], { env, encoding: "utf8" });
    started.push(Number(driver.stdout.trim()));
    const belongs = (pid: number) => processEnv(pid, "G8S_TEST_MARK") === mark;
    const isDriver = (p: ProcessInfo) => p.argv.join(" ") === "sleep 33";
    const found = await until("the orphan and its child", () => {
      const o = orphanedProcesses(belongs, isDriver);
      return o.length === 2 ? o : undefined;
    });
    for (const p of found) started.push(p.pid);
    assert.equal(found[0].pid, orphan);
    assert.equal(found[1].ppid, orphan);
    assert.ok(!found.some((p) => p.pid === ours.pid), "a live child of ours is not an orphan");
  });
});
