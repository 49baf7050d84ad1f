/** How the lab updates a running node's files (as kubelet updates a mounted Secret) and guards its host-wide names. */
import * as assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { otherLab, syncDirectory } from "../../../automation/lab/lab";

describe("lab: syncDirectory", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), "g8s-lab-files-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("writes new files readable by the owner only and counts them", () => {
    assert.equal(syncDirectory(dir, { "ca.crt": "A", "kubelet.conf": "B" }), 2);
    assert.deepEqual(readdirSync(dir).sort(), ["ca.crt", "kubelet.conf"]);
    assert.equal(statSync(path.join(dir, "ca.crt")).mode & 0o777, 0o400);
  });

  it("replaces changed files by rename (a new inode), leaves unchanged ones, removes what the Secret dropped", () => {
    syncDirectory(dir, { "ca.crt": "A", "kubelet.conf": "B", "gone.key": "C", constructor: "D" });
    const before = statSync(path.join(dir, "ca.crt")).ino;
    const kubelet = statSync(path.join(dir, "kubelet.conf")).ino;
    writeFileSync(path.join(dir, ".ca.crt.tmp"), "left over by a crash");
    assert.equal(syncDirectory(dir, { "ca.crt": "A", "kubelet.conf": "B2" }), 4);
    assert.equal(statSync(path.join(dir, "ca.crt")).ino, before, "unchanged: not rewritten");
    assert.notEqual(statSync(path.join(dir, "kubelet.conf")).ino, kubelet, "changed: renamed over");
    assert.equal(readFileSync(path.join(dir, "kubelet.conf"), "utf8"), "B2");
    assert.deepEqual(readdirSync(dir).sort(), ["ca.crt", "kubelet.conf"]);
    assert.equal(syncDirectory(dir, { "ca.crt": "A", "kubelet.conf": "B2" }), 0);
  });
});

describe("lab: otherLab (two labs of one cluster id would share its bridge)", () => {
  const live = new Set(["/tmp/a/plan.json"]);
  const exists = (file: string) => live.has(file);

  it("names a live lab in another dir that owns the bridge", () => {
    assert.equal(otherLab("/tmp/a", "/tmp/b", exists), "/tmp/a");
  });

  it("sees no other lab when none is recorded, when it is this one, or when the recorded one is gone", () => {
    assert.equal(otherLab(undefined, "/tmp/b", exists), undefined);
    assert.equal(otherLab("", "/tmp/b", exists), undefined);
    assert.equal(otherLab("/tmp/b", "/tmp/b", exists), undefined);
    assert.equal(otherLab("/tmp/gone", "/tmp/b", exists), undefined);
  });
});
