/** `g8s host` command lines, ports and the status text: the pure parts of the CLI. */
import * as assert from "node:assert/strict";
import * as net from "node:net";
import { hostIsUp, hostStatusText } from "../../../automation/cli/host";
import { COMPONENTS, toolchainPaths } from "../../../automation/host/config";
import { defaultHostDir, parseHostCommandLine } from "../../../automation/host/flags";
import { missingToolsMessage, tail, type HostStatus } from "../../../automation/host/hostCluster";
import { ephemeralPortRange, parseHostState, pickPorts, PORT_FLOOR, portIsFree } from "../../../automation/host/ports";

const parse = (...argv: string[]) => parseHostCommandLine(argv, "/home/dev/work", "/repo");

describe("g8s host command line", () => {
  it("defaults the host dir to <project>/.g8s/host", () => {
    assert.equal(defaultHostDir("/repo"), "/repo/.g8s/host");
    assert.deepEqual(parse("up"), {
      verb: "up",
      hostDir: "/repo/.g8s/host",
      purge: false,
      json: false,
      realNode: false,
      help: false,
    });
  });

  it("resolves --host-dir against the current directory", () => {
    assert.equal(parse("status", "--host-dir", "tmp/h").hostDir, "/home/dev/work/tmp/h");
    assert.equal(parse("down", "--host-dir=/abs").hostDir, "/abs");
  });

  it("takes --purge on down, --json on status and --real-node on up", () => {
    assert.equal(parse("down", "--purge").purge, true);
    assert.equal(parse("status", "--json").json, true);
    assert.equal(parse("up", "--real-node").realNode, true);
  });

  const refused: [string[], RegExp][] = [
    [[], /missing the action: one of up, down, status/],
    [["start"], /unknown action 'start': one of up, down, status/],
    [["up", "--purge"], /--purge does not apply to 'host up'/],
    [["down", "--json"], /--json does not apply to 'host down'/],
    [["status", "--real-node"], /--real-node does not apply to 'host status'/],
    [["up", "extra"], /unexpected argument 'extra'/],
    [["up", "--host-dir"], /argument missing/],
    [["up", "--host-dir", ""], /--host-dir must not be empty/],
    [["up", "--nodes", "3"], /Unknown option '--nodes'/],
  ];
  for (const [argv, message] of refused) {
    it(`refuses 'g8s host ${argv.join(" ")}'`, () => assert.throws(() => parse(...argv), message));
  }
});

describe("host ports", () => {
  it("reads the kernel's ephemeral range", () => {
    assert.deepEqual(ephemeralPortRange("32768\t60999\n"), [32768, 60999]);
    assert.deepEqual(ephemeralPortRange("garbage"), [32768, 60999]);
  });

  it("picks six distinct free ports below the ephemeral range, skipping busy ones", async () => {
    const busy = new Set([PORT_FLOOR, PORT_FLOOR + 1]);
    let i = 0;
    const sequence = [0, 1e-4, 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
    const ports = await pickPorts(
      async (p) => !busy.has(p),
      PORT_FLOOR + 10000,
      () => sequence[i++ % sequence.length],
    );
    const values = Object.values(ports);
    assert.equal(new Set(values).size, 6);
    for (const p of values) assert.ok(p >= PORT_FLOOR && p < PORT_FLOOR + 10000 && !busy.has(p), String(p));
  });

  it("tells a port someone listens on from a free one", async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      assert.equal(await portIsFree(port), false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    assert.equal(await portIsFree(port), true);
  });

  it("refuses a host.json without valid ports, naming the field", () => {
    const ports = { etcdClient: 1, etcdPeer: 2, apiserver: 3, controllerManager: 4, scheduler: 5, kwok: 6 };
    assert.deepEqual(parseHostState(JSON.stringify({ version: 1, createdAt: "t", ports }), "h.json").ports, ports);
    assert.throws(() => parseHostState("{", "h.json"), /h.json: not JSON/);
    assert.throws(() => parseHostState('{"version":2,"ports":{}}', "h.json"), /not a g8s host state file/);
    assert.throws(
      () => parseHostState(JSON.stringify({ version: 1, ports: { ...ports, kwok: 70000 } }), "h.json"),
      /h.json: ports.kwok must be a port number \(got 70000\)/,
    );
  });
});

describe("host status and messages", () => {
  const status = (running: boolean, ready: boolean, nodes: { total: number; ready: number } | null): HostStatus => ({
    hostDir: "/h",
    kubeconfig: "/h/kubeconfig",
    initialized: true,
    components: COMPONENTS.map((name, i) => ({
      name,
      pid: running ? 100 + i : null,
      running,
      state: running ? "running" : "stopped",
      address: `127.0.0.1:${20000 + i}`,
      ports: {},
      rssBytes: running ? 64 * 1048576 : null,
    })),
    api: { url: "https://127.0.0.1:20001", ready },
    nodes,
  });

  it("says up only when every process runs, the API is ready and every node is Ready", () => {
    assert.equal(hostIsUp(status(true, true, { total: 2, ready: 2 })), true);
    assert.equal(hostIsUp(status(true, true, { total: 2, ready: 1 })), false);
    assert.equal(hostIsUp(status(true, false, null)), false);
    assert.equal(hostIsUp(status(false, false, null)), false);
  });

  it("prints a row per component, the API, the nodes and the total memory", () => {
    const text = hostStatusText(status(true, true, { total: 2, ready: 2 }));
    assert.match(text, /^etcd +100 +running +127\.0\.0\.1:20000 +64 MiB$/m);
    assert.match(text, /^API: +https:\/\/127\.0\.0\.1:20001 ready$/m);
    assert.match(text, /^nodes: +2 \(2 Ready\)$/m);
    assert.match(text, /^memory: +320 MiB resident in 5 process\(es\)$/m);
  });

  it("names the missing binaries and npm run toolchain in one line", () => {
    const t = toolchainPaths("/repo");
    const message = missingToolsMessage(
      ["/repo/.tools/bin/kwok", "/repo/.tools/bin/etcd", "/repo/.tools/share/kwok/stages/pod/fast/pod-ready.yaml"],
      t,
    );
    assert.equal(
      message,
      "missing kwok, etcd in /repo/.tools/bin and 1 KWOK stage file(s) in /repo/.tools/share/kwok/stages: " +
        "run 'npm run toolchain' to build them",
    );
    assert.ok(!message.includes("\n"));
  });

  it("keeps the last lines of a log", () => {
    assert.equal(tail("a\nb\nc\n\n", 2), "b\nc");
  });
});
