/**
 * The bootstrap token on the nodes: created with a finite TTL and kept valid by every master (the
 * rendered script run for real against a fake cluster), handed to workers only inside their
 * discovery kubeconfig.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BOOTSTRAP_TOKEN_PATH,
  BOOTSTRAP_TOKEN_SCRIPT_PATH,
  BOOTSTRAP_TOKEN_TTL_HOURS,
  buildCloudConfig,
  nodeFiles,
  storeFileValues,
  type BootstrapRole,
} from "../../../components/bootstrap";
import { FAKE_TOKEN, awsConfig, fakeSecrets, kvmConfig, rolesOf } from "./helpers";

const HOUR = 3600;

/** A token the fake cluster holds: its expiration (none: never expires) and description. */
interface ClusterToken {
  readonly id: string;
  readonly expiresInSeconds?: number;
  readonly description: string;
}

interface TokenRun {
  readonly code: number | null;
  readonly output: string;
  readonly calls: string[];
  /** Token ids in the fake cluster afterwards, with their TTL as created (`-` if kept from before). */
  readonly tokens: Record<string, string>;
}

/**
 * Runs the rendered token script of a master against a fake cluster: `kubectl` answers the two
 * reads the script makes from a directory of tokens, `kubeadm token delete|create` edits it.
 */
function runTokenScript(tokens: ClusterToken[], token = FAKE_TOKEN): TokenRun {
  const config = kvmConfig(3);
  const doc = buildCloudConfig(config, { kind: "master", master: "master-1" });
  const script = doc.write_files.find((f) => f.path === BOOTSTRAP_TOKEN_SCRIPT_PATH)?.content;
  assert.ok(script, "every master has the token script");
  const dir = mkdtempSync(join(tmpdir(), "g8s-token-"));
  try {
    const cluster = join(dir, "cluster");
    mkdirSync(cluster);
    const now = Math.floor(Date.now() / 1000);
    for (const t of tokens) {
      const expiration =
        t.expiresInSeconds === undefined ? "" : new Date((now + t.expiresInSeconds) * 1000).toISOString();
      writeFileSync(join(cluster, t.id), `${expiration}\n${Buffer.from(t.description).toString("base64")}\n-\n`);
    }
    const log = join(dir, "calls");
    const fakes: Record<string, string> = {
      kubectl: [
        `echo "kubectl $*" >> "${log}"`,
        'case "$*" in',
        "  *'get secret bootstrap-token-'*)",
        '    id=$(echo "$*" | sed "s/.*bootstrap-token-\\([a-z0-9]*\\).*/\\1/")',
        `    [ -f "${cluster}/$id" ] || exit 0`,
        `    e=$(sed -n 1p "${cluster}/$id"); [ -z "$e" ] || printf %s "$e" | base64 -w0 ;;`,
        "  *'get secrets'*)",
        `    for f in "${cluster}"/*; do [ -f "$f" ] || continue; echo "bootstrap-token-$(basename "$f") $(sed -n 2p "$f")"; done ;;`,
        '  *) echo "unexpected kubectl $*" >&2; exit 3 ;;',
        "esac",
      ].join("\n"),
      kubeadm: [
        `echo "kubeadm $*" | sed "s/${token}/<token>/" >> "${log}"`,
        'case "$1 $2" in',
        `  "token delete") [ -f "${cluster}/$3" ] || { echo "not found" >&2; exit 1; }; rm "${cluster}/$3" ;;`,
        '  "token create")',
        '    id=${3%%.*}; ttl=$(echo "$*" | sed "s/.*--ttl \\([^ ]*\\).*/\\1/")',
        `    [ ! -f "${cluster}/$id" ] || { echo "a token with id $id already exists" >&2; exit 1; }`,
        `    printf 'later\\n%s\\n%s\\n' "$(printf %s "g8s node join" | base64)" "$ttl" > "${cluster}/$id"`,
        '    echo "$3" ;;', // kubeadm prints the token it created
        '  *) echo "unexpected kubeadm $*" >&2; exit 3 ;;',
        "esac",
      ].join("\n"),
    };
    for (const [name, body] of Object.entries(fakes)) {
      writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(dir, name), 0o755);
    }
    writeFileSync(join(dir, "token"), `${token}\n`);
    const r = spawnSync("bash", ["-c", script.split(BOOTSTRAP_TOKEN_PATH).join(join(dir, "token"))], {
      encoding: "utf8",
      env: { PATH: `${dir}:/usr/bin:/bin` },
    });
    const calls = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [];
    const left = Object.fromEntries(
      readdirSync(cluster).map((id) => [id, readFileSync(join(cluster, id), "utf8").split("\n")[2]]),
    );
    return { code: r.status, output: r.stdout + r.stderr, calls, tokens: left };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("bootstrap token on the nodes", function () {
  this.timeout(30_000);
  const id = FAKE_TOKEN.split(".")[0];
  const ttl = `${BOOTSTRAP_TOKEN_TTL_HOURS}h`;

  it("keeps kubeadm init from printing its own token into the cloud-init log", () => {
    for (const config of [awsConfig(1), kvmConfig(1)]) {
      const first = rolesOf(config).find((r) => r.kind === "first-master") as BootstrapRole;
      const runcmd = JSON.stringify(buildCloudConfig(config, first).runcmd);
      assert.match(runcmd, /"kubeadm","init",[^\]]*"--skip-token-print"/);
    }
  });

  it("never creates a token that does not expire (no --ttl 0 anywhere)", () => {
    for (const config of [awsConfig(3), kvmConfig(3)]) {
      for (const role of rolesOf(config)) {
        const doc = buildCloudConfig(config, role);
        assert.doesNotMatch(JSON.stringify(doc), /--ttl[ =]0\b/, JSON.stringify(role));
      }
    }
  });

  it("creates the token with its TTL where the cluster has none, and says nothing of its value", () => {
    const r = runTokenScript([]);
    assert.equal(r.code, 0, r.output);
    assert.deepEqual(r.tokens, { [id]: ttl });
    assert.ok(!r.output.includes(FAKE_TOKEN.split(".")[1]), "the token's secret part is never printed");
  });

  it("leaves a token alone while more than half its TTL remains", () => {
    const r = runTokenScript([{ id, expiresInSeconds: 20 * HOUR, description: "g8s node join" }]);
    assert.equal(r.code, 0, r.output);
    assert.deepEqual(r.tokens, { [id]: "-" });
    assert.ok(!r.calls.some((c) => c.startsWith("kubeadm")), r.calls.join("\n"));
  });

  it("re-creates a token close to expiry, and one made without expiry (kubeadm create fails on an existing id)", () => {
    for (const expiresInSeconds of [2 * HOUR, undefined]) {
      const r = runTokenScript([{ id, expiresInSeconds, description: "g8s node join" }]);
      assert.equal(r.code, 0, r.output);
      assert.deepEqual(r.tokens, { [id]: ttl }, String(expiresInSeconds));
      const kubeadm = r.calls.filter((c) => c.startsWith("kubeadm"));
      assert.deepEqual(
        kubeadm.map((c) => c.split(" ").slice(0, 3).join(" ")),
        ["kubeadm token delete", "kubeadm token create"],
      );
      assert.match(kubeadm[1], new RegExp(`--ttl ${ttl} `));
    }
  });

  it("revokes g8s's tokens of an earlier seed and kubeadm init's own at once, and leaves tokens someone else made", () => {
    const r = runTokenScript([
      { id, expiresInSeconds: 20 * HOUR, description: "g8s node join" },
      { id: "0ld0ld", expiresInSeconds: 20 * HOUR, description: "g8s node join" },
      { id: "kinit1", expiresInSeconds: 23 * HOUR, description: "" },
      { id: "admin1", expiresInSeconds: 2 * HOUR, description: "made by hand" },
    ]);
    assert.equal(r.code, 0, r.output);
    assert.deepEqual(r.tokens, { [id]: "-", admin1: "-" });
  });

  it("gives every master the token file and the script; workers neither", () => {
    const config = awsConfig(3);
    for (const role of rolesOf(config)) {
      const files = nodeFiles(role).map((f) => f.path);
      const written = buildCloudConfig(config, role).write_files.map((f) => f.path);
      const master = role.kind !== "worker";
      assert.equal(files.includes(BOOTSTRAP_TOKEN_PATH), master, JSON.stringify(role));
      assert.equal(written.includes(BOOTSTRAP_TOKEN_SCRIPT_PATH), master, JSON.stringify(role));
    }
  });

  it("hands workers the token only inside their discovery kubeconfig (0600), as file discovery needs", () => {
    const config = awsConfig(1);
    const worker: BootstrapRole = { kind: "worker", pool: config.spec.nodePools[0].name };
    const values = storeFileValues("worker", ["master-0"], fakeSecrets(["master-0"]), {
      clusterId: config.spec.id,
      apiEndpoint: config.apiEndpoint,
    });
    const carrying = values.filter((f) => String(f.value).includes(FAKE_TOKEN));
    assert.deepEqual(
      carrying.map((f) => [f.name, f.mode]),
      [["discovery.conf", "0600"]],
    );
    assert.ok(nodeFiles(worker).some((f) => f.name === "discovery.conf"));
    assert.ok(!JSON.stringify(buildCloudConfig(config, worker)).includes(FAKE_TOKEN), "never in user-data");
  });
});
