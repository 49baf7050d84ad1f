/** Pid files: a process is signalled only while it is provably the one `up` started. */
import * as assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { hostLayout, type ComponentName } from "../../../automation/host/config";
import { HostCluster } from "../../../automation/host/hostCluster";
import {
  formatPidRecord,
  judgeRecord,
  parsePidRecord,
  recordState,
  type PidRecord,
} from "../../../automation/host/pidfile";
import { liveness, processInfo, type ProcessInfo } from "../../../automation/os/processes";

const info = (argv0: string): ProcessInfo => ({ pid: 42, ppid: 1, state: "S", startedAtMs: 1000, argv: [argv0] });

describe("pid records", () => {
  const record: PidRecord = { pid: 42, startedAtMs: 1_700_000_000_123.4, binary: "/repo/.tools/bin/etcd" };

  it("round-trips through the pid file's text", () => {
    assert.deepEqual(parsePidRecord(formatPidRecord(record)), record);
  });

  it("rejects a torn, empty or foreign pid file", () => {
    for (const text of ["", "{", "42\n", "null", '{"pid":0,"startedAtMs":1,"binary":"x"}', '{"pid":4,"binary":"x"}']) {
      assert.equal(parsePidRecord(text), undefined, JSON.stringify(text));
    }
    assert.equal(parsePidRecord('{"pid":4,"startedAtMs":1,"binary":""}'), undefined);
  });

  const cases: [string, Parameters<typeof judgeRecord>[1], ProcessInfo | undefined, string][] = [
    ["the recorded process", "alive", info("/repo/.tools/bin/etcd"), "running"],
    ["an exited process", "exited", undefined, "exited"],
    ["a zombie", "zombie", info("/repo/.tools/bin/etcd"), "zombie"],
    ["a younger process with the pid", "reused", info("/repo/.tools/bin/etcd"), "reused"],
    ["another program of the right age", "alive", info("/usr/bin/vim"), "other-program"],
  ];
  for (const [what, alive, proc, expected] of cases) {
    it(`judges ${what} as ${expected}`, () => assert.equal(judgeRecord(record, alive, proc), expected));
  }
});

describe("g8s host down and status over pid files (real processes)", function () {
  this.timeout(30_000);
  let dir: string;
  const children: ChildProcess[] = [];

  function startSleeper(ignoreTerm = false): Promise<ChildProcess> {
    const child = ignoreTerm
      ? spawn("/bin/sh", ["-c", 'trap "" TERM; exec sleep 60'], { stdio: "ignore" })
      : spawn("sleep", ["60"], { stdio: "ignore" });
    children.push(child);
    return new Promise((resolve) => child.once("spawn", () => resolve(child)));
  }

  /** Writes a pid file for a live child, as `up` would (or with a start time `skewMs` off). */
  async function record(component: ComponentName, child: ChildProcess, skewMs = 0): Promise<PidRecord> {
    // After exec the command line is the program's: wait for sh's exec into sleep.
    for (let i = 0; i < 50 && processInfo(child.pid as number)?.argv[0] !== "sleep"; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const p = processInfo(child.pid as number) as ProcessInfo;
    const rec: PidRecord = { pid: p.pid, startedAtMs: p.startedAtMs + skewMs, binary: p.argv[0] };
    mkdirSync(path.join(dir, "run"), { recursive: true });
    writeFileSync(hostLayout(dir).pidFile(component), formatPidRecord(rec));
    return rec;
  }

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "g8s-host-pid-"));
    writeFileSync(path.join(dir, "host.json"), "{}");
  });
  afterEach(() => {
    for (const c of children.splice(0)) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("stops the processes of its pid files and leaves every other process alone", async () => {
    const etcd = await startSleeper();
    const kwok = await startSleeper();
    const stranger = await startSleeper();
    await record("etcd", etcd);
    await record("kwok", kwok);
    const lines: string[] = [];
    const result = await new HostCluster({ hostDir: dir, env: {}, progress: (l) => lines.push(l) }).down();
    assert.deepEqual(
      result.stopped.map((s) => `${s.name} ${s.pid} ${s.killed}`),
      [`kwok ${kwok.pid} false`, `etcd ${etcd.pid} false`],
    );
    assert.notEqual(liveness(etcd.pid as number), "alive");
    assert.notEqual(liveness(kwok.pid as number), "alive");
    assert.equal(liveness(stranger.pid as number), "alive");
    assert.ok(!existsSync(hostLayout(dir).pidFile("etcd")), "pid file removed");
    assert.match(lines.join("\n"), /kwok: stopped \(pid \d+\)/);
  });

  it("never signals a pid that now belongs to a younger process (pid reuse)", async () => {
    const younger = await startSleeper();
    // The record claims the process started a minute before the one now holding the pid.
    const rec = await record("kube-apiserver", younger, -60_000);
    assert.equal(recordState(rec), "reused");
    const lines: string[] = [];
    const result = await new HostCluster({ hostDir: dir, env: {}, progress: (l) => lines.push(l) }).down();
    assert.deepEqual(result.stopped, []);
    assert.equal(liveness(younger.pid as number), "alive");
    assert.match(lines.join("\n"), /kube-apiserver: not running \(pid \d+ reused\)/);
    assert.ok(!existsSync(hostLayout(dir).pidFile("kube-apiserver")), "the stale pid file is removed");
  });

  it("sends SIGKILL to a process that ignores SIGTERM once the grace is over", async () => {
    const stubborn = await startSleeper(true);
    await record("kube-scheduler", stubborn);
    const started = Date.now();
    const result = await new HostCluster({ hostDir: dir, env: {}, timeouts: { stopGrace: 400 } }).down();
    assert.deepEqual(
      result.stopped.map((s) => `${s.name} ${s.killed}`),
      ["kube-scheduler true"],
    );
    assert.ok(Date.now() - started >= 400, "waited the grace first");
    assert.notEqual(liveness(stubborn.pid as number), "alive");
  });

  it("reports each component from its pid file in status", async () => {
    const etcd = await startSleeper();
    await record("etcd", etcd);
    const status = await new HostCluster({ hostDir: dir, env: {} }).status();
    const etcdStatus = status.components.find((c) => c.name === "etcd");
    assert.equal(etcdStatus?.running, true);
    assert.equal(etcdStatus?.pid, etcd.pid);
    assert.ok((etcdStatus?.rssBytes ?? 0) > 0, "RSS read from /proc");
    assert.deepEqual(
      status.components.filter((c) => c.name !== "etcd").map((c) => c.state),
      ["stopped", "stopped", "stopped", "stopped"],
    );
    assert.equal(status.api.ready, false);
  });

  it("purges a host dir, but refuses to delete a folder that is not one", async () => {
    await new HostCluster({ hostDir: dir, env: {} }).down({ purge: true });
    assert.ok(!existsSync(dir));
    const other = mkdtempSync(path.join(tmpdir(), "g8s-not-host-"));
    writeFileSync(path.join(other, "precious.txt"), "x");
    try {
      await assert.rejects(
        new HostCluster({ hostDir: other, env: {} }).down({ purge: true }),
        /has no host.json: not a g8s host dir, refusing to delete it/,
      );
      assert.ok(existsSync(path.join(other, "precious.txt")));
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("refuses to run while another host command holds the host dir's lock", async () => {
    const me = processInfo(process.pid) as ProcessInfo;
    writeFileSync(
      path.join(dir, "lock"),
      formatPidRecord({ pid: me.pid, startedAtMs: me.startedAtMs, binary: me.argv[0] }),
    );
    await assert.rejects(
      new HostCluster({ hostDir: dir, env: {} }).down(),
      new RegExp(`another g8s host command \\(pid ${process.pid}\\) is working on`),
    );
  });

  it("takes over a lock left by a command that died", async () => {
    writeFileSync(path.join(dir, "lock"), formatPidRecord({ pid: 999_999_999, startedAtMs: 1, binary: "node" }));
    await new HostCluster({ hostDir: dir, env: {} }).down();
    assert.ok(!existsSync(path.join(dir, "lock")), "lock released");
  });
});
