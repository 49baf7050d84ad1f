/**
 * The secret sync script, run for real: bash executes SYNC_SCRIPT over a master's manifest in a
 * temporary root, with fake `systemctl` and `crictl` on PATH that record how they were
 * called. What a node would see: which files land where with which mode, and what restarts.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  G8S_DIR,
  SECRET_MANIFEST_PATH,
  SYNC_SCRIPT,
  deliveryEnv,
  nodeFiles,
  renderEnvFile,
  secretManifest,
} from "../../../components/bootstrap";
import { KVM_DELIVERY } from "./helpers";

const ROLE = { kind: "master", master: "master-0" } as const;

/** Fake commands: each appends its arguments to calls.log; crictl answers `ps` with one container id. */
const FAKES: Record<string, string> = {
  systemctl: 'echo "systemctl $*" >>"$G8S_TEST_LOG"',
  crictl: [
    'echo "crictl $*" >>"$G8S_TEST_LOG"',
    'for a in "$@"; do case "$a" in "^"*) n="${a#^}"; echo "ctr-${n%$}" ;; esac; done',
  ].join("\n"),
};

/** A node in a temporary directory: the script and its inputs under `root`, the fakes on PATH. */
class FakeNode {
  readonly root = mkdtempSync(path.join(os.tmpdir(), "g8s-sync-"));
  readonly log = path.join(this.root, "calls.log");
  private readonly script = path.join(this.root, "g8s-sync-secrets");

  constructor() {
    const bin = path.join(this.root, "bin");
    mkdirSync(bin);
    for (const [name, body] of Object.entries(FAKES)) {
      writeFileSync(path.join(bin, name), `#!/bin/bash\n${body}\n`);
      chmodSync(path.join(bin, name), 0o755);
    }
    mkdirSync(path.join(this.root, "run"));
    mkdirSync(this.at(G8S_DIR), { recursive: true });
    writeFileSync(this.at(`${G8S_DIR}/delivery.env`), renderEnvFile(deliveryEnv(KVM_DELIVERY)));
    // Every absolute path of the manifest (sources under the mount, targets on the node) moves under root.
    const manifest = secretManifest(KVM_DELIVERY, "edge7", ROLE).replace(/(^|\t)\//gm, `$1${this.root}/`);
    writeFileSync(this.at(SECRET_MANIFEST_PATH), manifest);
    writeFileSync(this.script, this.relocated(SYNC_SCRIPT));
    for (const file of nodeFiles(ROLE)) this.publish(file.name, `${file.name} v1\n`);
  }

  /** `p` on this node. */
  at(p: string): string {
    return path.join(this.root, p);
  }

  /** The script with its fixed node paths moved under root; fails if a path it must move is missing. */
  private relocated(script: string): string {
    let text = script;
    for (const fixed of [`. ${G8S_DIR}/delivery.env`, `3<${SECRET_MANIFEST_PATH}`, "mktemp -d /run/"]) {
      assert.ok(text.includes(fixed), `the sync script no longer contains '${fixed}'`);
      text = text.replace(fixed, fixed.replace(/\//, `${this.root}/`));
    }
    return text;
  }

  /** What the platform stores for file `name` (the mounted Secret's key). */
  publish(name: string, content: string): void {
    mkdirSync(this.at("/mnt/g8s-secrets"), { recursive: true });
    writeFileSync(this.at(`/mnt/g8s-secrets/${name}`), content);
  }

  /** Runs the script; returns the fake commands' calls of this run. */
  sync(...args: string[]): string[] {
    writeFileSync(this.log, "");
    execFileSync("bash", [this.script, ...args], {
      env: { PATH: `${path.join(this.root, "bin")}:${process.env.PATH ?? ""}`, G8S_TEST_LOG: this.log },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return readFileSync(this.log, "utf8").split("\n").filter(Boolean);
  }

  /** Restarts among `calls`: `kubelet` for systemd, the container name for crictl stops. */
  static restarts(calls: readonly string[]): string[] {
    return calls
      .map((c) => /^systemctl restart (\S+)$/.exec(c)?.[1] ?? /^crictl .* stop ctr-(\S+)$/.exec(c)?.[1])
      .filter((c): c is string => c !== undefined)
      .sort();
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

describe("bootstrap: the secret sync script, run by bash", () => {
  let node: FakeNode;
  beforeEach(() => (node = new FakeNode()));
  afterEach(() => node.remove());

  it("installs every file of the manifest with its mode on the first run", () => {
    node.sync();
    for (const file of nodeFiles(ROLE)) {
      const target = node.at(file.path);
      assert.equal((statSync(target).mode & 0o777).toString(8), file.mode.slice(1), file.path);
      if (!file.localApiServer) assert.equal(readFileSync(target, "utf8"), `${file.name} v1\n`, file.path);
    }
  });

  it("points the control-plane kubeconfigs at the node's own API server by loopback, a SAN of its certificate", () => {
    node.publish("scheduler.conf", "clusters:\n- cluster:\n    server: https://api.example.com:6443\n");
    node.sync();
    assert.equal(
      readFileSync(node.at("/etc/kubernetes/scheduler.conf"), "utf8"),
      `clusters:\n- cluster:\n    server: https://127.0.0.1:6443\n`,
    );
  });

  it("restarts kubelet and stops each control-plane container once when their files arrive (--reload)", () => {
    assert.deepEqual(FakeNode.restarts(node.sync("--reload")), [
      "etcd", // its CA bundle: etcd reads it only at start
      "kube-apiserver",
      "kube-controller-manager",
      "kube-scheduler",
      "kubelet",
    ]);
  });

  it("restarts nothing when no file changed", () => {
    node.sync("--reload");
    assert.deepEqual(node.sync("--reload"), []);
  });

  it("restarts only what reads a renewed file", () => {
    node.sync("--reload");
    node.publish("apiserver.crt", "apiserver.crt v2\n");
    assert.deepEqual(FakeNode.restarts(node.sync("--reload")), ["kube-apiserver"]);
    assert.equal(readFileSync(node.at("/etc/kubernetes/pki/apiserver.crt"), "utf8"), "apiserver.crt v2\n");
    node.publish("kubelet-client.key", "kubelet-client.key v2\n");
    assert.deepEqual(FakeNode.restarts(node.sync("--reload")), ["kubelet"]);
  });

  it("installs without restarting anything when run without --reload (first boot)", () => {
    node.publish("apiserver.crt", "apiserver.crt v2\n");
    assert.deepEqual(node.sync(), []);
    assert.equal(readFileSync(node.at("/etc/kubernetes/pki/apiserver.crt"), "utf8"), "apiserver.crt v2\n");
  });
});
