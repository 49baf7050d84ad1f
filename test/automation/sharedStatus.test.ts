import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { decodeStatus, encodeStatus } from "../../automation/coordination/kubernetesStatus";
import {
  mergeStatuses,
  restoredStatuses,
  SharedStatusStore,
  SharedStatusView,
  supersededReplicas,
  type PublishedStatus,
  type StatusBoard,
} from "../../automation/coordination/sharedStatus";
import { MemoryStatusStore } from "../../automation/reconciler/status";
import type { PassRecord, StackStatus } from "../../automation/reconciler/types";
import { FakeClock } from "./fakes";

const pass = (stack: string, startedAt: string, extra: Partial<PassRecord> = {}): PassRecord => ({
  stack,
  outcome: "in-sync",
  mode: "correct",
  startedAt,
  durationMs: 1000,
  drift: [],
  ...extra,
});

const status = (name: string, extra: Partial<StackStatus> = {}): StackStatus => ({
  name,
  phase: "pending",
  mode: "correct",
  intervalSeconds: 60,
  consecutiveFailures: 0,
  ...extra,
});

class MemoryBoard implements StatusBoard {
  docs = new Map<string, PublishedStatus>();
  publications: PublishedStatus[] = [];
  failing = false;
  async publish(doc: PublishedStatus): Promise<void> {
    if (this.failing) throw new Error("API server unreachable");
    this.publications.push(doc);
    this.docs.set(doc.replica, structuredClone(doc));
  }
  async read(): Promise<PublishedStatus[]> {
    if (this.failing) throw new Error("API server unreachable");
    return [...this.docs.values()];
  }
  async remove(replica: string): Promise<void> {
    this.docs.delete(replica);
  }
}

describe("shared status: every replica shows the newest status of every stack", () => {
  const T1 = "2026-12-02T10:00:00.000Z";
  const T2 = "2026-12-02T10:05:00.000Z";

  it("shows the owner's last pass on a replica that never ran the stack, with this replica's view of the owner", () => {
    const own = [
      status("a", { owner: "r2", message: "run by replica r2" }),
      status("b", { owner: "r1", phase: "in-sync", lastPass: pass("b", T2) }),
    ];
    const published: PublishedStatus[] = [
      {
        replica: "r2",
        savedAt: T2,
        stacks: [status("a", { phase: "running", lastPass: pass("a", T1) }), status("b", { lastPass: pass("b", T1) })],
      },
    ];
    const merged = mergeStatuses(own, published, "r1");
    assert.deepEqual(
      merged.map((s) => [s.name, s.phase, s.owner, s.lastPass?.startedAt]),
      [
        ["a", "running", "r2", T1], // the owner's own phase: it runs the stack now
        ["b", "in-sync", "r1", T2], // this replica's pass is newer
      ],
    );
  });

  it("shows another replica's running phase as pending when that replica no longer owns the stack (it died)", () => {
    const own = [status("a", { owner: "r3" })];
    const dead: PublishedStatus = {
      replica: "r2",
      savedAt: T1,
      stacks: [status("a", { phase: "running", lastPass: pass("a", T1), nextRunAt: T2 })],
    };
    const [a] = mergeStatuses(own, [dead], "r1");
    assert.deepEqual([a.phase, a.owner, a.nextRunAt, a.lastPass?.startedAt], ["pending", "r3", undefined, T1]);
  });

  it("ignores its own publication and stacks it does not track", () => {
    const own = [status("a", { lastPass: pass("a", T1) })];
    const published: PublishedStatus[] = [
      { replica: "r1", savedAt: T2, stacks: [status("a", { lastPass: pass("a", T2) })] },
      { replica: "r2", savedAt: T2, stacks: [status("zz", { lastPass: pass("zz", T2) })] },
    ];
    assert.deepEqual(mergeStatuses(own, published, "r1"), own);
  });

  it("restores the newest published status of each stack for a replica that starts with none, nothing running", () => {
    const restored = restoredStatuses([
      { replica: "r1", savedAt: T1, stacks: [status("a", { lastPass: pass("a", T1), owner: "r1" })] },
      {
        replica: "r2",
        savedAt: T2,
        stacks: [status("a", { phase: "running", lastPass: pass("a", T2) }), status("b", { phase: "stalled" })],
      },
    ]);
    assert.deepEqual(
      [...restored.values()].map((s) => [s.name, s.phase, s.lastPass?.startedAt, s.owner]),
      [
        ["a", "pending", T2, undefined],
        ["b", "stalled", undefined, undefined],
      ],
    );
  });

  describe("the publications of gone replicas", () => {
    const MIN = 60_000;
    const at = (ms: number) => new Date(Date.parse(T1) + ms).toISOString();
    const doc = (replica: string, savedAtMs: number, stacks: StackStatus[]): PublishedStatus => ({
      replica,
      savedAt: at(savedAtMs),
      stacks,
    });
    const ran = (name: string, ms: number) => status(name, { lastPass: pass(name, at(ms)) });

    it("are deleted once old and superseded by the live replicas: each stack newer there, or tracked by none", () => {
      const published = [
        doc("old-pod", 0, [ran("a", 0), ran("gone-stack", 0), status("never-ran")]),
        doc("live-1", 20 * MIN, [ran("a", 15 * MIN), status("never-ran")]),
        doc("live-2", 20 * MIN, [ran("b", 15 * MIN)]),
      ];
      const live = new Set(["live-1", "live-2"]);
      assert.deepEqual(supersededReplicas(published, live, Date.parse(at(20 * MIN)), 10 * MIN), ["old-pod"]);
      // Not yet old enough.
      assert.deepEqual(supersededReplicas(published, live, Date.parse(at(5 * MIN)), 10 * MIN), []);
    });

    it("are kept while they hold a newer pass than any live replica, or while a live replica has not published", () => {
      const newer = [doc("old-pod", 0, [ran("a", 18 * MIN)]), doc("live-1", 20 * MIN, [ran("a", 15 * MIN)])];
      assert.deepEqual(supersededReplicas(newer, new Set(["live-1"]), Date.parse(at(40 * MIN)), 10 * MIN), []);
      const unpublished = [doc("old-pod", 0, [ran("a", 0)]), doc("live-1", 20 * MIN, [ran("a", 15 * MIN)])];
      assert.deepEqual(
        supersededReplicas(unpublished, new Set(["live-1", "live-2"]), Date.parse(at(40 * MIN)), 10 * MIN),
        [],
      );
      assert.deepEqual(supersededReplicas(unpublished, new Set(), Date.parse(at(40 * MIN)), 10 * MIN), []);
    });

    it("are removed from the board by the view's refresh, the live ones kept", async () => {
      const board = new MemoryBoard();
      for (const d of [doc("old-pod", 0, [ran("a", 0)]), doc("live-1", 20 * MIN, [ran("a", 15 * MIN)])]) {
        await board.publish(d);
      }
      const clock = new FakeClock();
      await clock.advance(Date.parse(at(30 * MIN)));
      const errors: string[] = [];
      const view = new SharedStatusView(board, "live-1", clock, 3000, (e) => errors.push(e.message), {
        live: () => ["live-1"],
        afterMs: 10 * MIN,
      });
      await view.refresh();
      assert.deepEqual([...board.docs.keys()], ["live-1"]);
      assert.deepEqual(errors, []);
    });
  });

  describe("SharedStatusStore", () => {
    function make() {
      const clock = new FakeClock();
      const board = new MemoryBoard();
      const local = new MemoryStatusStore();
      const errors: string[] = [];
      const store = new SharedStatusStore({
        local,
        board,
        replica: "r1",
        clock,
        minIntervalMs: 2000,
        onError: (e) => errors.push(e.message),
      });
      return { clock, board, local, store, errors };
    }

    it("saves locally every time and publishes a burst once, the latest status, at most every interval", async () => {
      const { clock, board, local, store } = make();
      await store.save([status("a", { phase: "queued" })]);
      await store.save([status("a", { phase: "running" })]);
      await store.save([status("a", { phase: "in-sync" })]);
      await clock.advance(0);
      assert.equal(local.saves, 3);
      assert.deepEqual(
        board.publications.map((d) => d.stacks[0].phase),
        ["queued"],
      );
      await clock.advance(1999);
      assert.equal(board.publications.length, 1);
      await clock.advance(1);
      assert.deepEqual(
        board.publications.map((d) => [d.replica, d.stacks[0].phase, d.savedAt]),
        [
          ["r1", "queued", new Date(0).toISOString()],
          ["r1", "in-sync", new Date(2000).toISOString()],
        ],
      );
      // Nothing new: nothing published.
      await clock.advance(10_000);
      assert.equal(board.publications.length, 2);
    });

    it("publishes what waits at flush (shutdown), without waiting for the interval", async () => {
      const { clock, board, store } = make();
      await store.save([status("a")]);
      await store.save([status("a", { phase: "in-sync" })]);
      await store.flush();
      assert.deepEqual(
        board.publications.map((d) => d.stacks[0].phase),
        ["pending", "in-sync"],
      );
      assert.equal(clock.pending, 0);
    });

    it("keeps saving locally when the board fails, reports the error, and publishes once it works again", async () => {
      const { clock, board, local, store, errors } = make();
      board.failing = true;
      await store.save([status("a")]);
      await store.flush();
      assert.deepEqual(errors, ["API server unreachable"]);
      assert.equal(local.saves, 1);
      board.failing = false;
      await clock.advance(2000);
      await store.save([status("a", { phase: "in-sync" })]);
      await store.flush();
      assert.equal(board.docs.get("r1")?.stacks[0].phase, "in-sync");
    });

    it("loads the local file's status first and the board's newest for stacks the file lacks", async () => {
      const { board, local, store } = make();
      await local.save([status("a", { phase: "in-sync", lastPass: pass("a", T1) })]);
      board.docs.set("r2", {
        replica: "r2",
        savedAt: T2,
        stacks: [status("a", { lastPass: pass("a", T2) }), status("b", { lastPass: pass("b", T2) })],
      });
      const loaded = await store.load();
      assert.deepEqual(
        [...loaded.values()].map((s) => [s.name, s.lastPass?.startedAt]),
        [
          ["a", T1],
          ["b", T2],
        ],
      );
    });
  });

  describe("the ConfigMap encoding", () => {
    /** n stacks; with `noisy`, each last pass carries 3 KiB of engine output that does not compress. */
    const doc = (n: number, noisy = false): PublishedStatus => ({
      replica: "r1",
      savedAt: T1,
      stacks: Array.from({ length: n }, (_, i) =>
        status(`stack-${i}`, {
          phase: "in-sync",
          lastPass: pass(`stack-${i}`, T1, { output: noisy ? randomBytes(3072).toString("base64") : `ok ${i}` }),
        }),
      ),
    });

    it("round-trips gzipped JSON, and reads anything else as nothing", () => {
      const encoded = encodeStatus(doc(3)).toString("base64");
      assert.deepEqual(decodeStatus(encoded), doc(3));
      assert.equal(JSON.parse(gunzipSync(Buffer.from(encoded, "base64")).toString()).version, 1);
      assert.equal(decodeStatus(Buffer.from("not gzip").toString("base64")), undefined);
      assert.equal(decodeStatus(undefined), undefined);
    });

    it("keeps 500 stacks' status far under a ConfigMap's 1 MiB", () => {
      const size = encodeStatus(doc(500)).length;
      assert.ok(size < 100 * 1024, `${size} bytes`);
    });

    it("drops the engines' outputs when the whole would not fit, and names the sizes when even that does not", () => {
      const noisy = doc(20, true);
      const limit = encodeStatus(doc(20)).length + 500;
      assert.ok(encodeStatus(noisy).length > limit);
      const slim = decodeStatus(encodeStatus(noisy, limit).toString("base64"));
      assert.equal(slim?.stacks[0].lastPass?.output, undefined);
      assert.equal(slim?.stacks.length, 20);
      assert.throws(() => encodeStatus(doc(500), 1000), /status of 500 stacks is \d+ bytes compressed, over the 1000/);
    });
  });
});
