import * as assert from "node:assert/strict";
import { createLogger, redactText } from "../../automation/reconciler/logger";

/** A logger writing to memory; `lines()` parses what it wrote. */
function memoryLogger(level = "info") {
  const written: string[] = [];
  const logger = createLogger({ level, destination: { write: (line: string) => void written.push(line) } });
  return { logger, lines: () => written.map((line) => JSON.parse(line) as Record<string, unknown>), written };
}

describe("redactText", () => {
  it("replaces a PEM private key block, keeping the text around it", () => {
    const text = [
      "error: bad key",
      "-----BEGIN RSA PRIVATE KEY-----",
      "MIIEpAIBAAKCAQEA7bq",
      "-----END RSA PRIVATE KEY-----",
      "done",
    ].join("\n");
    assert.equal(redactText(text), "error: bad key\n[redacted private key]\ndone");
  });

  it("replaces an unlabelled and a truncated private key block", () => {
    assert.equal(
      redactText("a -----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY----- b"),
      "a [redacted private key] b",
    );
    assert.equal(redactText("key: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI"), "key: [redacted private key]");
  });

  it("replaces bearer tokens", () => {
    assert.equal(
      redactText("GET /x failed: Authorization: Bearer eyJhbGciOi.J9.sig-_~+/= (401)"),
      "GET /x failed: Authorization: Bearer [redacted] (401)",
    );
  });

  it("replaces kubeconfig client keys and tokens", () => {
    const kubeconfig = [
      "users:",
      "- name: admin",
      "  user:",
      "    client-certificate-data: LS0tLS1CRUdJTiBDRVJU",
      "    client-key-data: LS0tLS1CRUdJTiBSU0Eg",
      "    token: abc.def-123",
      "    auth-provider: { config: { id-token: eyJ0eXAi } }",
    ].join("\n");
    assert.equal(
      redactText(kubeconfig),
      [
        "users:",
        "- name: admin",
        "  user:",
        "    client-certificate-data: LS0tLS1CRUdJTiBDRVJU",
        "    client-key-data: [redacted]",
        "    token: [redacted]",
        "    auth-provider: { config: { id-token: [redacted] } }",
      ].join("\n"),
    );
  });

  it("replaces the Pulumi passphrase, quoted or not, but not the passphrase file's path", () => {
    assert.equal(
      redactText("PULUMI_CONFIG_PASSPHRASE=hunter2 PULUMI_CONFIG_PASSPHRASE_FILE=/run/secrets/pp"),
      "PULUMI_CONFIG_PASSPHRASE=[redacted] PULUMI_CONFIG_PASSPHRASE_FILE=/run/secrets/pp",
    );
    assert.equal(
      redactText("env PULUMI_CONFIG_PASSPHRASE='two words' set"),
      "env PULUMI_CONFIG_PASSPHRASE=[redacted] set",
    );
  });

  it("replaces Vault tokens, new and legacy", () => {
    assert.equal(
      redactText("vault login hvs.CAESIJRpbGVzLWZvci10ZXN0aW5nLW9ubHk and s.Qf1s5zigZ4OX6akYjQXJC1jY"),
      "vault login [redacted] and [redacted]",
    );
    assert.equal(redactText("VAULT_TOKEN=s.abc"), "VAULT_TOKEN=[redacted]");
  });

  it("replaces AWS secret access keys in credentials-file and env form", () => {
    assert.equal(
      redactText(
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      ),
      "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = [redacted]",
    );
    assert.equal(
      redactText("AWS_SECRET_ACCESS_KEY=abc/def AWS_SESSION_TOKEN=xyz"),
      "AWS_SECRET_ACCESS_KEY=[redacted] AWS_SESSION_TOKEN=[redacted]",
    );
  });

  it("replaces JSON token fields and a URL's password", () => {
    assert.equal(redactText('{"token": "abc", "apiToken":"def"}'), '{"token": [redacted], "apiToken":[redacted]}');
    assert.equal(
      redactText("backend postgres://g8s:s3cr3t@db:5432/state unreachable"),
      "backend postgres://g8s:[redacted]@db:5432/state unreachable",
    );
  });

  it("replaces known secrets where they stand as whole tokens, the longest first", () => {
    assert.equal(
      redactText("decrypt with correct horse battery failed (correct horse)", [
        "correct horse",
        "correct horse battery",
        "",
      ]),
      "decrypt with [redacted] failed ([redacted])",
    );
    assert.equal(
      redactText("with s3cr3t-pw, 's3cr3t-pw' and s3cr3t-pw@db, not s3cr3t-pwd or xs3cr3t-pw", ["s3cr3t-pw"]),
      "with [redacted], '[redacted]' and [redacted]@db, not s3cr3t-pwd or xs3cr3t-pw",
    );
  });

  it("does not cut a short passphrase out of words: 'stopped' stays 'stopped' with passphrase pp", () => {
    assert.equal(redactText("daemon stopped: pp", ["pp"]), "daemon stopped: pp");
    assert.equal(redactText("PULUMI_CONFIG_PASSPHRASE=pp", ["pp"]), "PULUMI_CONFIG_PASSPHRASE=[redacted]");
  });

  it("leaves ordinary engine output alone", () => {
    const text = [
      "Updating (eu1prod):",
      "  ~ aws:ec2/vpc:Vpc eu1prod-vpc updated (2s) [diff: ~tags]",
      "urn:pulumi:eu1prod::g8s::g8s:aws:Cluster$aws:ec2/subnet:Subnet::eu1prod-private-eu-west-1a",
      "error: getting secrets manager: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE",
      "apiVersion: apps/v1 kind: StatefulSet; image k8s.gcr.io/pause:3.9; tokens: 3; https://example.com:8443/x@y",
      "Resources: 12 unchanged. Duration: 4s",
    ].join("\n");
    assert.equal(redactText(text), text);
  });

  it("is idempotent", () => {
    const once = redactText("token: abc Bearer xyz PULUMI_CONFIG_PASSPHRASE=p");
    assert.equal(redactText(once), once);
  });
});

describe("createLogger", () => {
  it("writes JSON lines with the reconciler's name, an ISO time and the level as a label", () => {
    const { logger, lines } = memoryLogger();
    logger.info({ stack: "eu1prod" }, "pass done");
    const [line] = lines();
    assert.equal(line.name, "g8s-reconciler");
    assert.equal(line.level, "info");
    assert.equal(line.msg, "pass done");
    assert.equal(line.stack, "eu1prod");
    assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it("honours the level and the name", () => {
    const written: string[] = [];
    const logger = createLogger({
      level: "warn",
      name: "g8s-test",
      destination: { write: (l) => void written.push(l) },
    });
    logger.info("hidden");
    logger.warn("shown");
    assert.deepEqual(
      written.map((l) => JSON.parse(l) as Record<string, unknown>).map((l) => [l.name, l.msg]),
      [["g8s-test", "shown"]],
    );
  });

  it("censors the configured secret paths", () => {
    const { logger, lines } = memoryLogger();
    logger.info(
      {
        passphrase: "p1",
        token: "t1",
        authorization: "Bearer a1",
        headers: { authorization: "Bearer a2", accept: "application/json" },
        privateKey: "k1",
        kubeconfig: "apiVersion: v1",
        PULUMI_CONFIG_PASSPHRASE: "p2",
        env: { PULUMI_CONFIG_PASSPHRASE: "p3", PULUMI_BACKEND_URL: "postgres://u:pw@db" },
        stack: { token: "t2", privateKey: "k2", kubeconfig: "kc", name: "eu1prod" },
      },
      "secrets",
    );
    const [line] = lines();
    assert.deepEqual(
      {
        passphrase: line.passphrase,
        token: line.token,
        authorization: line.authorization,
        headers: line.headers,
        privateKey: line.privateKey,
        kubeconfig: line.kubeconfig,
        PULUMI_CONFIG_PASSPHRASE: line.PULUMI_CONFIG_PASSPHRASE,
        env: line.env,
        stack: line.stack,
      },
      {
        passphrase: "[redacted]",
        token: "[redacted]",
        authorization: "[redacted]",
        headers: { authorization: "[redacted]", accept: "application/json" },
        privateKey: "[redacted]",
        kubeconfig: "[redacted]",
        PULUMI_CONFIG_PASSPHRASE: "[redacted]",
        env: { PULUMI_CONFIG_PASSPHRASE: "[redacted]", PULUMI_BACKEND_URL: "[redacted]" },
        stack: { token: "[redacted]", privateKey: "[redacted]", kubeconfig: "[redacted]", name: "eu1prod" },
      },
    );
  });

  it("scrubs messages, interpolated strings and logged errors, also the message pino copies from one", () => {
    const { logger, written } = memoryLogger();
    const err = Object.assign(
      new Error("up failed: Authorization: Bearer sekrit-1", { cause: new Error("token: sekrit-2") }),
      {
        stderr: "PULUMI_CONFIG_PASSPHRASE=sekrit-3",
      },
    );
    logger.error(err);
    logger.error({ err });
    logger.error({ err }, "pass failed");
    // Interpolated strings are scrubbed one by one, so a secret split from its label is not caught.
    logger.warn("retrying after %s", "token: sekrit-4");
    const output = written.join("");
    assert.doesNotMatch(output, /sekrit/);
    assert.equal(written.length, 4);
    const first = JSON.parse(written[0]) as { msg: string; err: { message: string; stderr: string } };
    assert.equal(first.msg, "up failed: Authorization: Bearer [redacted]");
    assert.equal(first.err.message, "up failed: Authorization: Bearer [redacted]: token: [redacted]");
    assert.equal(first.err.stderr, "PULUMI_CONFIG_PASSPHRASE=[redacted]");
  });

  it("warns once when a known secret is too short to search for, and leaves words whole", () => {
    const written: string[] = [];
    const logger = createLogger({ secrets: ["pp"], destination: { write: (l) => void written.push(l) } });
    logger.info("daemon stopped");
    const lines = written.map((l) => JSON.parse(l) as { level: string; msg: string; minLength?: number });
    assert.equal(lines.length, 2);
    assert.equal(lines[0].level, "warn");
    assert.match(
      lines[0].msg,
      /^a known secret \(the passphrase\) is shorter than 8 characters: it is not searched for/,
    );
    assert.equal(lines[0].minLength, 8);
    assert.equal(lines[1].msg, "daemon stopped");
    const quiet: string[] = [];
    createLogger({ secrets: ["long enough"], destination: { write: (l) => void quiet.push(l) } });
    assert.deepEqual(quiet, []);
  });

  it("scrubs the known secrets it was given from messages and errors", () => {
    const written: string[] = [];
    const logger = createLogger({ secrets: ["plain words pass"], destination: { write: (l) => void written.push(l) } });
    logger.warn("decrypting with plain words pass failed");
    logger.error(new Error("bad passphrase plain words pass"));
    assert.doesNotMatch(written.join(""), /plain words/);
    assert.equal((JSON.parse(written[0]) as { msg: string }).msg, "decrypting with [redacted] failed");
  });
});
