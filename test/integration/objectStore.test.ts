/**
 * g8s-object-store, the masters' S3 client for etcd snapshot copies (components/bootstrap/
 * etcdBackup.ts), against g8s-s3 checking every request's Signature Version 4 with AWS's own
 * signer (aws-sdk-go-v2): put, list, get and delete of a snapshot-sized file; wrong keys and
 * unsigned requests refused as S3 refuses them. The same client runs on a booted master in
 * test/lab/boot.test.ts.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { OBJECT_STORE_CLIENT, OBJECT_STORE_KEY_FILES } from "../../components/bootstrap/etcdBackup";
import { startS3, type S3Store } from "./s3";

const KEY = { accessKeyId: "G8SINTEGRATION", secretAccessKey: "integration-secret-key/+=" };

describe("g8s-object-store against an S3 store that checks SigV4 (g8s-s3)", function () {
  this.timeout(120_000);
  let store: S3Store;
  let dir: string;
  let client: string;

  before(async () => {
    store = await startS3({ bucket: "etcd-backups", signedBy: KEY });
    dir = mkdtempSync(path.join(tmpdir(), "g8s-objstore-"));
    client = path.join(dir, "g8s-object-store");
    writeFileSync(client, OBJECT_STORE_CLIENT);
    chmodSync(client, 0o755);
  });
  after(async () => {
    await store?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the client with the env a master's etcd-backup.env gives it, keys from a share directory. */
  const run = (keys: { accessKeyId: string; secretAccessKey: string } | undefined, ...args: string[]) => {
    const share = mkdtempSync(path.join(dir, "share-"));
    if (keys) {
      writeFileSync(path.join(share, OBJECT_STORE_KEY_FILES.accessKeyId), `${keys.accessKeyId}\n`);
      writeFileSync(path.join(share, OBJECT_STORE_KEY_FILES.secretAccessKey), `${keys.secretAccessKey}\n`);
    }
    const r = spawnSync(client, args, {
      encoding: "utf8",
      env: {
        PATH: process.env.PATH,
        S3_ENDPOINT: store.endpoint,
        S3_ADDRESSING: "path",
        S3_BUCKET: "etcd-backups",
        S3_REGION: "us-east-1",
        S3_CREDENTIALS_DIR: share,
      },
    });
    return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
  };

  it("puts, lists, gets and deletes a snapshot-sized object, byte for byte", () => {
    const file = path.join(dir, "snap.db");
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    writeFileSync(file, bytes);
    const started = Date.now();
    const put = run(KEY, "put", "lab9/lab9-master-0-20261207T120000Z.db", file);
    assert.equal(put.code, 0, put.err);
    const putMs = Date.now() - started;
    assert.equal(run(KEY, "put", "lab9/lab9-master-0-20261207T120000Z.db.sha256", file).code, 0);
    assert.equal(run(KEY, "put", "other/x.db", file).code, 0);
    const listed = run(KEY, "list", "lab9/");
    assert.equal(listed.code, 0, listed.err);
    assert.deepEqual(listed.out.split("\n"), [
      "lab9/lab9-master-0-20261207T120000Z.db",
      "lab9/lab9-master-0-20261207T120000Z.db.sha256",
    ]);
    const back = path.join(dir, "back.db");
    const get = run(KEY, "get", "lab9/lab9-master-0-20261207T120000Z.db", back);
    assert.equal(get.code, 0, get.err);
    assert.ok(readFileSync(back).equals(bytes), "the same bytes back");
    for (const key of ["lab9/lab9-master-0-20261207T120000Z.db", "lab9/lab9-master-0-20261207T120000Z.db.sha256"]) {
      assert.equal(run(KEY, "delete", key).code, 0);
    }
    assert.equal(run(KEY, "list", "lab9/").out, "");
    process.stdout.write(`      put of ${bytes.length} bytes, signed and checked: ${putMs} ms\n`);
  });

  it("is refused with a wrong secret or key id, as S3 refuses them (403, its error code, no retry)", () => {
    const wrongSecret = run({ ...KEY, secretAccessKey: "not-the-secret" }, "list", "lab9/");
    assert.equal(wrongSecret.code, 1);
    assert.match(wrongSecret.err, /^g8s-object-store: GET \/etcd-backups: HTTP 403 SignatureDoesNotMatch$/);
    const wrongId = run({ ...KEY, accessKeyId: "SOMEONEELSE" }, "list", "lab9/");
    assert.match(wrongId.err, /HTTP 403 InvalidAccessKeyId/);
  });

  it("says where the keys should come from when the share has none", () => {
    const none = run(undefined, "list", "lab9/");
    assert.equal(none.code, 1);
    assert.match(none.err, /no access key in .*: is etcd\.backup\.objectStore\.credentialsSecret there\?/);
  });

  it("has a store that refuses unsigned requests (the check is on)", async () => {
    const res = await fetch(`${store.endpoint}/etcd-backups?list-type=2`);
    assert.equal(res.status, 403);
    assert.match(await res.text(), /<Code>AccessDenied<\/Code>/);
  });
});
