/** The etcd watch's rounds: which stacks it forgets (the cluster's API side is test/integration/etcdWatch.test.ts). */
import * as assert from "node:assert/strict";
import { EtcdSnapshotWatch, watchedStacks, type EtcdBackupStack } from "../../automation/reconciler/etcdWatch";

describe("EtcdSnapshotWatch rounds", () => {
  it("watches applied stacks with backups, and with replicas only this replica's", () => {
    const discovered = [
      { name: "a", etcdBackupSeconds: 3600 },
      { name: "b", etcdBackupSeconds: 21600 },
      { name: "c" }, // etcd.backup.enabled: false
      { name: "d", etcdBackupSeconds: 3600 }, // never applied
    ];
    const applied = new Set(["a", "b", "c"]);
    assert.deepEqual(
      watchedStacks(discovered, applied, () => true),
      [
        { name: "a", intervalSeconds: 3600 },
        { name: "b", intervalSeconds: 21600 },
      ],
    );
    assert.deepEqual(
      watchedStacks(discovered, applied, (s) => s === "b"),
      [{ name: "b", intervalSeconds: 21600 }],
    );
  });

  it("forgets a stack the next round no longer lists (removed, or now another replica's), once", async () => {
    const rounds: EtcdBackupStack[][] = [
      [
        { name: "edge7", intervalSeconds: 3600 },
        { name: "edge8", intervalSeconds: 3600 },
      ],
      [{ name: "edge8", intervalSeconds: 3600 }],
      [{ name: "edge8", intervalSeconds: 3600 }],
      [
        { name: "edge7", intervalSeconds: 3600 },
        { name: "edge8", intervalSeconds: 3600 },
      ],
    ];
    const forgotten: string[] = [];
    const looked: string[] = [];
    const watch = new EtcdSnapshotWatch({
      stacks: async () => rounds.shift() ?? [],
      // Not applied: nothing to read, so no API is needed.
      stackResources: async (stack) => {
        looked.push(stack);
        return undefined;
      },
      seen: () => assert.fail("nothing to see"),
      failed: (stack, reason) => assert.fail(`${stack}: ${reason}`),
      forget: (stack) => forgotten.push(stack),
    });
    for (let i = 0; i < 4; i++) await watch.observe();
    assert.deepEqual(forgotten, ["edge7"]);
    assert.deepEqual(looked, ["edge7", "edge8", "edge8", "edge8", "edge7", "edge8"]);
  });
});
