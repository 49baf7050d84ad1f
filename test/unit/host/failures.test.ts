/** How `up` fails: one line naming the component (or the toolchain command), and the tail of its log. */
import * as assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { BINARIES, COMPONENTS, KWOK_STAGE_FILES, type Toolchain } from "../../../automation/host/config";
import { HostCluster, HostError } from "../../../automation/host/hostCluster";

/** A toolchain of shell scripts: `etcd` prints to its log and exits 3; the rest would sleep. */
function fakeToolchain(root: string): Toolchain {
  const binDir = path.join(root, "bin");
  const stagesDir = path.join(root, "stages");
  mkdirSync(binDir, { recursive: true });
  for (const c of COMPONENTS) {
    const body = c === "etcd" ? 'echo "etcd: boom, bad flag $1" >&2; exit 3' : "exec sleep 30";
    writeFileSync(path.join(binDir, BINARIES[c]), `#!/bin/sh\n${body}\n`);
    chmodSync(path.join(binDir, BINARIES[c]), 0o755);
  }
  for (const f of KWOK_STAGE_FILES) {
    mkdirSync(path.dirname(path.join(stagesDir, f)), { recursive: true });
    writeFileSync(path.join(stagesDir, f), "kind: Stage\n");
  }
  return { binDir, stagesDir };
}

describe("g8s host up failures", function () {
  this.timeout(30_000);
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), "g8s-host-fail-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("names npm run toolchain in one line when binaries are missing, before touching the host dir", async () => {
    const toolchain = { binDir: path.join(root, "none/bin"), stagesDir: path.join(root, "none/stages") };
    const hostDir = path.join(root, "host");
    await assert.rejects(new HostCluster({ hostDir, env: {}, toolchain }).up(), (err: Error) => {
      assert.ok(err instanceof HostError);
      assert.match(err.message, /^missing etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok in /);
      assert.match(err.message, /and 5 KWOK stage file\(s\) in .*: run 'npm run toolchain' to build them$/);
      return true;
    });
    assert.ok(!existsSync(hostDir), "the host dir is not created");
  });

  it("names a component that exits while starting, with its exit status and the tail of its log", async () => {
    const hostDir = path.join(root, "host");
    const lines: string[] = [];
    const up = new HostCluster({
      hostDir,
      env: process.env,
      toolchain: fakeToolchain(root),
      progress: (l) => lines.push(l),
    });
    await assert.rejects(up.up(), (err: Error) => {
      assert.ok(err instanceof HostError);
      assert.equal(err.message, "etcd exited (exit code 3) while starting");
      assert.match(err.details ?? "", /logs\/etcd\.log \(last lines\):\netcd: boom, bad flag --name=host/);
      return true;
    });
    assert.match(lines.join("\n"), /etcd: started \(pid \d+\)/);
    await new HostCluster({ hostDir, env: {} }).down({ purge: true });
  });

  it("starts nothing when a port of any component is held by another program", async () => {
    const hostDir = path.join(root, "host");
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    mkdirSync(hostDir, { recursive: true });
    const ports = { etcdClient: 1, etcdPeer: 2, apiserver: 3, controllerManager: 4, scheduler: 5, kwok: port };
    writeFileSync(path.join(hostDir, "host.json"), JSON.stringify({ version: 1, createdAt: "t", ports }));
    try {
      const lines: string[] = [];
      const host = new HostCluster({
        hostDir,
        env: {},
        toolchain: fakeToolchain(root),
        progress: (l) => lines.push(l),
      });
      await assert.rejects(
        host.up(),
        new RegExp(`^HostError: kwok: 127\\.0\\.0\\.1:${port} \\(kwok\\) is in use by another program`),
      );
      assert.doesNotMatch(lines.join("\n"), /started/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
