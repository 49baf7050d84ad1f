/**
 * The local PKI backend under the real Pulumi engine (the localpki fixture): certificates with a
 * validity of seconds, issued by `up`, judged by openssl, kept encrypted in the state, seen due by
 * `preview --refresh` after half their TTL, reissued by `up`, and a CA whose renewal reissues
 * every certificate. Real time passes here on purpose: renewal is a decision about the clock.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { stringify } from "yaml";
import { PROJECT_ROOT } from "../../automation/engine";
import { renewalTime } from "../../components/pki/local/renewal";
import { fieldsOf, keyMatchesCertificate, verify } from "../unit/pki/openssl";
import { createSandbox, openStack, timed, type Sandbox } from "./harness";

const FIXTURE = path.join(PROJECT_ROOT, "test/fixtures/projects/localpki");
const LEAVES = ["server", "client", "peer"] as const;
type Name = "ca" | (typeof LEAVES)[number];

interface Issued {
  readonly certPem: string;
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
}
type Certs = Record<Name, Issued>;
type Keys = Record<Name | "sa", string>;

/** A sandboxed stack of the fixture with validity in seconds; everything it starts is aborted in `close`. */
class LocalPkiStack {
  readonly timings: Record<string, number> = {};
  private readonly abort = new AbortController();

  private constructor(
    readonly sandbox: Sandbox,
    readonly stack: Stack,
  ) {}

  static async open(
    label: string,
    config: { caTtlSeconds: number; ttlSeconds: number; backdateSeconds: number },
  ): Promise<LocalPkiStack> {
    const sandbox = await createSandbox(label, { fixture: FIXTURE, withComponents: true });
    writeFileSync(
      path.join(sandbox.projectDir, "stacks", "Pulumi.dev.yaml"),
      stringify({ config: Object.fromEntries(Object.entries(config).map(([k, v]) => [`localpki:${k}`, v])) }),
    );
    return new LocalPkiStack(sandbox, await openStack(sandbox, "dev"));
  }

  async up(label: string) {
    const { ms, result } = await timed(() => this.stack.up({ refresh: true, signal: this.abort.signal }));
    this.timings[label] = ms;
    assert.equal(result.summary.result, "succeeded");
    return result;
  }

  async preview(label: string, refresh: boolean) {
    const { ms, result } = await timed(() => this.stack.preview({ refresh, signal: this.abort.signal }));
    this.timings[label] = ms;
    return result;
  }

  async certs(): Promise<Certs> {
    return (await this.stack.outputs()).certs.value as Certs;
  }

  async keys(): Promise<Keys> {
    const out = (await this.stack.outputs()).keys;
    assert.equal(out.secret, true, "the keys output is a secret");
    return out.value as Keys;
  }

  /**
   * The state as `pulumi stack export` prints it (secrets as ciphertext; the Automation API's
   * exportStack would decrypt them), followed by the checkpoint file of the file backend.
   */
  stateText(): string {
    const r = spawnSync(this.sandbox.cli.binary, ["stack", "export", "--stack", "dev", "--non-interactive"], {
      cwd: this.sandbox.projectDir,
      env: this.sandbox.env,
      encoding: "utf8",
      timeout: 120_000,
      maxBuffer: 64 << 20,
    });
    assert.equal(r.status, 0, r.stderr);
    const checkpoint = readFileSync(
      path.join(this.sandbox.stateDir, "backend/.pulumi/stacks/localpki/dev.json"),
      "utf8",
    );
    return `${r.stdout}\n${checkpoint}`;
  }

  close(): void {
    this.abort.abort();
    if (Object.keys(this.timings).length > 0) {
      const line = Object.entries(this.timings)
        .map(([k, v]) => `${k}=${Math.round(v)}`)
        .join(" ");
      process.stdout.write(`      engine wall times (ms): ${line}\n`);
    }
    this.sandbox.dispose();
  }
}

/** Sleeps until every named certificate is past the point where less than half of it remains. */
async function waitForRenewal(certs: Certs, names: readonly Name[]): Promise<void> {
  const due = Math.max(
    ...names.map((n) => renewalTime(new Date(certs[n].notBefore), new Date(certs[n].notAfter)).getTime()),
  );
  const ms = due + 1500 - Date.now();
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
}

/** No PEM private key body anywhere in the exported state, and none of these keys' base64. */
function assertNoPlainKeys(state: string, keys: Keys): void {
  assert.doesNotMatch(state, /-----BEGIN [A-Z ]*PRIVATE KEY-----(\\n|\n)[A-Za-z0-9+/]{16}/);
  for (const [name, pem] of Object.entries(keys)) {
    const body = pem.split("\n").filter((l) => l !== "" && !l.startsWith("-----"));
    assert.ok(body.length > 0, `${name}: a key was read back`);
    for (const line of body) assert.equal(state.includes(line), false, `${name}: a line of its key is in the state`);
  }
}

describe("real engine: local PKI certificates renewed at half their TTL", function () {
  this.timeout(600_000);
  const TTL = 60;
  let pki: LocalPkiStack;
  let issued: Certs;

  before(async () => {
    pki = await LocalPkiStack.open("g8s-localpki", { caTtlSeconds: 86400, ttlSeconds: TTL, backdateSeconds: 1 });
    const result = await pki.up("up");
    assert.equal(result.summary.resourceChanges?.create, 6, "the stack, a CA, three certificates and a key");
    issued = await pki.certs();
  });

  after(() => pki?.close());

  it("issues a chain openssl verifies, with the names, usages and validity asked for and keys that match", async () => {
    const keys = await pki.keys();
    for (const name of LEAVES) {
      const r = verify(issued.ca.certPem, issued[name].certPem);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.ok(keyMatchesCertificate(keys[name], issued[name].certPem), `${name}: key matches`);
      const fields = fieldsOf(issued[name].certPem);
      assert.equal(fields.serial, issued[name].serial);
      assert.equal((fields.notAfter.getTime() - fields.notBefore.getTime()) / 1000, TTL + 1, "TTL plus the backdate");
    }
    assert.ok(keyMatchesCertificate(keys.ca, issued.ca.certPem));
    assert.equal(verify(issued.ca.certPem, issued.server.certPem, { purpose: "sslserver" }).code, 0);
    assert.notEqual(verify(issued.ca.certPem, issued.server.certPem, { purpose: "sslclient" }).code, 0);
    assert.equal(verify(issued.ca.certPem, issued.client.certPem, { purpose: "sslclient" }).code, 0);
    assert.notEqual(verify(issued.ca.certPem, issued.client.certPem, { purpose: "sslserver" }).code, 0);
    assert.equal(verify(issued.ca.certPem, issued.peer.certPem, { purpose: "sslserver" }).code, 0);
    assert.equal(verify(issued.ca.certPem, issued.peer.certPem, { purpose: "sslclient" }).code, 0);
    assert.equal(fieldsOf(issued.client.certPem).subject, "CN=jane,O=ops-team,O=dev-team");
    assert.match(keys.sa, /^-----BEGIN PRIVATE KEY-----\n/);
  });

  it("holds no private key in plain text in the stack's state", async () => {
    const state = pki.stateText();
    assertNoPlainKeys(state, await pki.keys());
    // The keys are there, encrypted: "keyPem": { "<secret sig key>": "<secret sig>", "ciphertext": … }.
    assert.match(
      state,
      /"keyPem":\s*\{\s*"4dabf18193072939515e22adb298388d":\s*"1b47061264138c4ac30d75fd1eb44270",\s*"ciphertext"/,
    );
    assert.doesNotMatch(state, /"plaintext"/);
  });

  it("previews no change while the certificates are fresh", async () => {
    const now = Date.now();
    const current = await pki.certs();
    for (const name of LEAVES) {
      const due = renewalTime(new Date(current[name].notBefore), new Date(current[name].notAfter)).getTime();
      assert.ok(now < due - 5000, `${name} is still fresh (due in ${Math.round((due - now) / 1000)} s)`);
    }
    assert.deepEqual((await pki.preview("preview", false)).changeSummary, { same: 6 });
  });

  it("shows the certificates as updates in preview --refresh once half their TTL has passed", async () => {
    const before = await pki.certs();
    await waitForRenewal(before, LEAVES);
    const preview = await pki.preview("preview --refresh (due)", true);
    assert.deepEqual(preview.changeSummary, { same: 3, update: 3 });
    assert.deepEqual(await pki.certs(), before, "a preview reissues nothing");
  });

  it("reissues them with up: new serials, later notAfter, the same chain and keys; then previews clean", async () => {
    const before = await pki.certs();
    await waitForRenewal(before, LEAVES);
    const result = await pki.up("up --refresh (renewal)");
    assert.deepEqual(result.summary.resourceChanges, { same: 3, update: 3 });
    const after = await pki.certs();
    const keys = await pki.keys();
    assert.equal(after.ca.serial, before.ca.serial, "the CA is not due");
    for (const name of LEAVES) {
      const was = fieldsOf(before[name].certPem);
      const now = fieldsOf(after[name].certPem);
      assert.notEqual(now.serial, was.serial, `${name}: new serial`);
      assert.ok(now.notAfter.getTime() > was.notAfter.getTime(), `${name}: later notAfter`);
      assert.equal(now.subject, was.subject);
      assert.equal(verify(after.ca.certPem, after[name].certPem).code, 0, `${name}: chain`);
      assert.ok(keyMatchesCertificate(keys[name], after[name].certPem), `${name}: same key, still matching`);
    }
    assert.deepEqual((await pki.preview("preview (after renewal)", false)).changeSummary, { same: 6 });
    assertNoPlainKeys(pki.stateText(), keys);
  });
});

describe("real engine: local PKI CA renewal reissues every certificate", function () {
  this.timeout(600_000);
  let pki: LocalPkiStack;

  before(async () => {
    // The CA is due after ~15 s; the leaves (50 min) are not due during the test.
    pki = await LocalPkiStack.open("g8s-localpki-ca", { caTtlSeconds: 30, ttlSeconds: 3000, backdateSeconds: 1 });
    await pki.up("up");
  });

  after(() => pki?.close());

  it("renews the CA at half its TTL and, in the same up, every certificate it signed", async () => {
    const before = await pki.certs();
    await waitForRenewal(before, ["ca"]);
    const preview = await pki.preview("preview --refresh (CA due)", true);
    assert.deepEqual(preview.changeSummary, { same: 2, update: 4 }, "the CA and its three certificates");
    const result = await pki.up("up --refresh (CA renewal)");
    assert.deepEqual(result.summary.resourceChanges, { same: 2, update: 4 });
    const after = await pki.certs();
    assert.notEqual(after.ca.serial, before.ca.serial);
    for (const name of LEAVES) {
      assert.notEqual(after[name].serial, before[name].serial, `${name}: reissued`);
      assert.equal(verify(after.ca.certPem, after[name].certPem).code, 0, `${name}: chains to the new CA`);
      // Same CA key and name: what nodes still hold keeps verifying during the rollout.
      assert.equal(verify(after.ca.certPem, before[name].certPem).code, 0, `${name}: the old one still verifies`);
    }
    assert.deepEqual((await pki.preview("preview (after CA renewal)", false)).changeSummary, { same: 6 });
  });
});
