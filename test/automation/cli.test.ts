/** `g8s status` against a real API server, and settings errors at the command line. */
import * as assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import pino from "pino";
import { Registry } from "prom-client";
import { main } from "../../automation/cli/main";
import { stackDetail } from "../../automation/cli/status";
import type { CliIo } from "../../automation/cli/io";
import { createApiServer, type ApiServer } from "../../automation/reconciler/server";
import { exitCodeOf } from "../../automation/cli/reconcile";
import { PASS_OUTCOMES, type PassOutcome, type PassRecord, type StackStatus } from "../../automation/reconciler/types";

function capture(env: NodeJS.ProcessEnv = {}): { io: CliIo; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = "";
  let e = "";
  stdout.on("data", (c: Buffer) => (o += c.toString()));
  stderr.on("data", (c: Buffer) => (e += c.toString()));
  return { io: { cwd: process.cwd(), env, stdout, stderr }, out: () => o, err: () => e };
}

const IN_2H = new Date(Date.now() + 2 * 3600_000 + 60_000).toISOString();
const IN_20H = new Date(Date.now() + 20 * 3600_000).toISOString();
const STATUSES: StackStatus[] = [
  {
    name: "eu1prod",
    phase: "in-sync",
    mode: "correct",
    intervalSeconds: 300,
    consecutiveFailures: 0,
    certificates: [
      { key: "apiserver", notBefore: "", notAfter: IN_20H, renewAt: IN_2H, urns: ["urn:a"] },
      { key: "ca", notBefore: "", notAfter: "2036-01-01T00:00:00.000Z", renewAt: "", urns: [] },
      { key: "worker", notBefore: "", notAfter: IN_2H, renewAt: IN_2H, urns: ["urn:w"] },
    ],
    renewal: { consecutiveFailures: 1, lastError: "renew: the backend lock is held", nextAttemptAt: IN_2H },
  },
  {
    name: "edge7",
    phase: "stalled",
    mode: "detect",
    intervalSeconds: 600,
    consecutiveFailures: 5,
    message: "stalled after 5 consecutive failures",
  },
  {
    name: "edge8",
    phase: "backoff",
    mode: "correct",
    intervalSeconds: 300,
    consecutiveFailures: 1,
    message: "detect: pulumi preview failed: Missing required configuration variable 'store:records'",
    lastPass: {
      stack: "edge8",
      outcome: "failed",
      mode: "correct",
      startedAt: "2026-12-01T00:31:44.513Z",
      durationMs: 49351,
      drift: [],
      error: "detect: pulumi preview failed: Missing required configuration variable 'store:records'",
      output:
        "Previewing update (edge8):\nDiagnostics:\n    error: Missing required configuration variable 'store:records'",
    },
  },
];

describe("g8s status", () => {
  let server: ApiServer;
  let url: string;

  before(async () => {
    server = createApiServer({
      api: {
        isReady: () => true,
        list: () => STATUSES,
        get: (name) => STATUSES.find((s) => s.name === name),
        requestRun: () => ({ accepted: false, reason: "unknown-stack" }),
        noticeEvent: () => false,
      },
      registry: new Registry(),
      logger: pino({ level: "silent" }),
    });
    const { port } = await server.listen(0, "127.0.0.1");
    url = `http://127.0.0.1:${port}`;
  });
  after(() => server.close());

  it("prints a table of every stack", async () => {
    const c = capture();
    assert.equal(await main(["status", "--url", url], c.io), 0);
    const lines = c.out().trimEnd().split("\n");
    assert.match(
      lines[0],
      /^STACK\s+PHASE\s+MODE\s+FAILURES\s+LAST SUCCESS\s+NEXT RUN\s+CERTIFICATES EXPIRE\s+MESSAGE$/,
    );
    assert.match(lines[2], /^edge8\s+backoff/);
    assert.match(lines[1], /^edge7\s+stalled\s+detect\s+5\s+-\s+-\s+-\s+stalled after 5 consecutive failures$/);
    // The earliest expiry, which certificate, and that its renewal is failing.
    assert.match(lines[3], /^eu1prod\s+in-sync\s+correct\s+0\s+-\s+-\s+in 2h \(worker, renewal failing\)$/);
  });

  it("shows one stack's certificates: expiry, renewal point, and the renewal's last error and next attempt", async () => {
    const c = capture();
    assert.equal(await main(["status", "--url", url, "eu1prod"], c.io), 0);
    const text = c.out();
    assert.match(text, new RegExp(`\\n  apiserver  expires ${IN_20H} \\(in 20h\\), renewal in 2h\\n`));
    assert.match(text, /\n {2}ca {9}expires 2036-01-01T00:00:00.000Z \(in \d+h\), not renewed by g8s\n/);
    assert.match(
      text,
      /\nrenewal: not renewed yet; 1 failure\(s\) in a row\nrenewal error: renew: the backend lock is held\n/,
    );
  });

  it("prints one stack as JSON", async () => {
    const c = capture();
    assert.equal(await main(["status", "--url", url, "--json", "edge7"], c.io), 0);
    assert.deepEqual(JSON.parse(c.out()), STATUSES[1]);
  });

  it("shows one stack in full: its message and the engine's output of the last pass", async () => {
    const c = capture();
    assert.equal(await main(["status", "--url", url, "edge8"], c.io), 0);
    const text = c.out();
    assert.match(text, /^STACK\s+PHASE/);
    assert.match(
      text,
      /\nmessage: detect: pulumi preview failed: Missing required configuration variable 'store:records'\n/,
    );
    assert.match(text, /\nlast pass: failed at 2026-12-01T00:31:44.513Z in 49.4s\n/);
    assert.match(text, /\nengine output of the last pass:\nPreviewing update \(edge8\):\nDiagnostics:\n/);
  });

  it("says when the last pass corrected a noticed change at once, without a preview", () => {
    const base = STATUSES[1];
    const pass = { stack: base.name, outcome: "corrected" as const, mode: "correct" as const, drift: [] };
    const at = "2026-12-02T10:00:00.000Z";
    const direct = stackDetail({ ...base, lastPass: { ...pass, startedAt: at, durationMs: 9500, direct: true } });
    assert.match(
      direct,
      /\nlast pass: corrected at 2026-12-02T10:00:00.000Z in 9.5s, a noticed change corrected at once \(no preview\)/,
    );
    const previewed = stackDetail({ ...base, lastPass: { ...pass, startedAt: at, durationMs: 9500 } });
    assert.doesNotMatch(previewed, /at once/);
  });

  it("shows the rolling upgrade the last pass made", () => {
    const base = STATUSES[1];
    const upgrade = {
      from: "v1.34.12",
      to: "v1.35.4",
      nodes: [
        { node: "master-0", seconds: 110.6 },
        { node: "pool-default-0", seconds: 12 },
      ],
      seconds: 333.9,
    };
    const text = stackDetail({
      ...base,
      lastPass: {
        stack: base.name,
        outcome: "corrected",
        mode: "correct",
        drift: [],
        startedAt: "2026-12-07T21:00:00.000Z",
        durationMs: 340_000,
        upgrade,
        rolled: { nodes: [{ node: "pool-default-0", seconds: 97 }], seconds: 97.4 },
      },
    });
    assert.match(text, /\nupgraded: v1\.34\.12 → v1\.35\.4 in 333\.9 s \(master-0 110\.6 s, pool-default-0 12\.0 s\)/);
    assert.match(text, /\nrestarted on the new template: 1 node in 97\.4 s \(pool-default-0 97\.0 s\)\nupgraded/);
  });

  it("finds the daemon through the settings: G8S_PORT, --port or the daemon's --config file", async () => {
    const port = new URL(url).port;
    const byEnv = capture({ G8S_HOST: "127.0.0.1", G8S_PORT: port });
    assert.equal(await main(["status"], byEnv.io), 0, byEnv.err());
    assert.match(byEnv.out(), /^STACK/);
    const byFlag = capture({ G8S_PORT: "1" });
    assert.equal(await main(["status", "--port", port], byFlag.io), 0, byFlag.err());
    const dir = mkdtempSync(path.join(tmpdir(), "g8s-status-"));
    try {
      const file = path.join(dir, "g8s.yaml");
      writeFileSync(file, `port: ${port}\nhost: 127.0.0.1\n`);
      const byFile = capture();
      assert.equal(await main(["status", "--config", file], byFile.io), 0, byFile.err());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects a bad port setting like the daemon does", async () => {
    const c = capture({ G8S_PORT: "http" });
    assert.equal(await main(["status"], c.io), 2);
    assert.match(c.err(), /G8S_PORT: /);
  });

  it("says so when the stack is unknown", async () => {
    const c = capture();
    assert.equal(await main(["status", "--url", url, "nope"], c.io), 1);
    assert.match(c.err(), /^g8s status: 404 /);
  });

  it("names the daemon address when it cannot be reached", async () => {
    const c = capture();
    assert.equal(await main(["status", "--url", "http://127.0.0.1:1"], c.io), 1);
    assert.match(c.err(), /^g8s status: cannot reach the daemon at http:\/\/127.0.0.1:1 .*is 'g8s daemon' running\?/);
  });
});

describe("reconciler settings on the command line", () => {
  it("rejects bad settings with exit 2 and the flag that carried them", async () => {
    const c = capture();
    assert.equal(await main(["daemon", "--concurrency", "0", "--default-mode", "fix"], c.io), 2);
    assert.match(
      c.err(),
      /^g8s daemon: invalid settings:\n {2}--concurrency: must be ≥ 1 \(got number 0\)\n {2}--default-mode: must be one of correct, detect, off \(got 'fix'\)/,
    );
  });

  it("does not accept secrets as flags", async () => {
    const c = capture();
    assert.equal(await main(["reconcile", "--passphrase", "x"], c.io), 2);
    assert.match(c.err(), /Unknown option '--passphrase'/);
  });

  it("lists every setting with its environment variable in --help", async () => {
    const c = capture();
    assert.equal(await main(["daemon", "--help"], c.io), 0);
    assert.match(c.out(), /--concurrency\s+G8S_CONCURRENCY/);
    assert.match(c.out(), /--clear-pending-operations\s+G8S_CLEAR_PENDING_OPERATIONS/);
  });
});

describe("g8s reconcile: exit code", () => {
  const record = (outcome: PassOutcome): PassRecord => ({
    stack: "a",
    outcome,
    mode: "correct",
    startedAt: "2026-01-01T00:00:00.000Z",
    durationMs: 1,
    drift: [],
  });

  it("exits 1 for a pass that is not a success, a policy-blocked one included; 0 otherwise", () => {
    const problems = PASS_OUTCOMES.filter((o) => exitCodeOf([record("in-sync"), record(o)]) === 1);
    assert.deepEqual(problems, ["blocked", "invalid", "aborted", "failed"]);
  });
});
