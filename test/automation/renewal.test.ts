/**
 * Certificate renewal as its own duty: the pure decisions, then the scheduler against the fake
 * engine and a fake clock, in every mode and phase a stack can be in.
 */
import * as assert from "node:assert/strict";
import {
  dueCertificates,
  forcedTargets,
  nextRenewalAt,
  parsePkiOutput,
  renewalDueAt,
  renewalEnded,
  renewalTargets,
} from "../../automation/reconciler/renewal";
import type { SchedulerOptions } from "../../automation/reconciler/scheduler";
import type {
  CertificateStatus,
  PassRecord,
  RenewalRecord,
  StackPhase,
  StackStatus,
} from "../../automation/reconciler/types";
import { certUrn, setup as schedulerOverFakes } from "./fakes";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

const cert = (key: string, renewAt: string, urns = [`urn:${key}`]): CertificateStatus => ({
  key,
  notBefore: "2026-01-01T00:00:00.000Z",
  notAfter: "2026-01-02T00:00:00.000Z",
  renewAt,
  urns,
});

describe("certificate renewal", () => {
  describe("the decisions", () => {
    it("reads the pki output, sorted by key; no output reads as nothing to renew", () => {
      const parsed = parsePkiOutput({
        certificates: {
          worker: {
            notBefore: "2026-01-01T00:00:00Z",
            notAfter: "2026-01-02T00:00:00Z",
            renewAt: "2026-01-01T12:00:00Z",
            urns: ["u1"],
          },
          ca: { notBefore: "", notAfter: "2036-01-01T00:00:00Z", renewAt: "", urns: [] },
        },
        carriers: ["s1"],
      });
      assert.deepEqual(
        parsed.certificates.map((c) => c.key),
        ["ca", "worker"],
      );
      assert.deepEqual(parsed.carriers, ["s1"]);
      assert.deepEqual(parsePkiOutput(undefined), { certificates: [], carriers: [] });
    });

    it("refuses a malformed pki output, naming the field", () => {
      const bad: Array<[unknown, RegExp]> = [
        ["x", /expected an object/],
        [{ certificates: [], carriers: [] }, /certificates must be an object/],
        [{ certificates: {}, carriers: "s" }, /carriers must be a list/],
        [
          { certificates: { api: { notBefore: "", notAfter: "soon", renewAt: "", urns: [] } }, carriers: [] },
          /certificates\.api\.notAfter/,
        ],
        [
          { certificates: { api: { notBefore: "", notAfter: "", renewAt: "", urns: "u" } }, carriers: [] },
          /certificates\.api\.urns/,
        ],
      ];
      for (const [value, message] of bad) assert.throws(() => parsePkiOutput(value), message);
    });

    it("finds what is due, and the next renewal point, among renewable certificates only", () => {
      const certs = [
        cert("api", "2026-01-01T12:00:00Z"),
        cert("worker", "2026-01-01T13:00:00Z"),
        cert("ca", ""), // a tls or vault CA: reported, never renewed by g8s
        cert("orphan", "2026-01-01T01:00:00Z", []), // nothing to update
      ];
      assert.deepEqual(
        dueCertificates(certs, Date.parse("2026-01-01T12:30:00Z")).map((c) => c.key),
        ["api"],
      );
      assert.equal(nextRenewalAt(certs), Date.parse("2026-01-01T12:00:00Z"));
      assert.equal(nextRenewalAt([cert("ca", "")]), undefined);
    });

    it("targets the due certificates and every carrier, never their dependents; a due CA takes every leaf along", () => {
      const certs = [cert("api", "2026-01-01T12:00:00Z"), cert("worker", "2026-01-01T13:00:00Z")];
      assert.deepEqual(renewalTargets(certs, [certs[0]], ["s1", "s2"]), {
        update: ["urn:api", "s1", "s2"],
        replace: [],
      });
      const withCa = [...certs, cert("ca", "2026-01-01T11:00:00Z")];
      assert.deepEqual([...renewalTargets(withCa, [withCa[2]], ["s1"]).update].sort(), [
        "s1",
        "urn:api",
        "urn:ca",
        "urn:worker",
      ]);
    });

    it("g8s renew --all replaces every leaf and never the CA", () => {
      const certs = [cert("api", "2026-01-01T12:00:00Z"), cert("ca", "2030-01-01T00:00:00Z")];
      assert.deepEqual(forcedTargets(certs, ["s1"]), { update: ["s1"], replace: ["urn:api"] });
    });

    it("is due at once while the certificates are unknown, at the retry time after a failure, never without a file", () => {
      const now = Date.parse("2026-01-01T00:00:00Z");
      const status = (phase: StackPhase, extra: Partial<StackStatus> = {}): StackStatus => ({
        name: "a",
        phase,
        mode: "correct",
        intervalSeconds: 60,
        consecutiveFailures: 0,
        ...extra,
      });
      assert.equal(renewalDueAt(status("off"), now), now);
      assert.equal(
        renewalDueAt(status("stalled", { certificates: [cert("api", "2026-01-01T12:00:00Z")] }), now),
        Date.parse("2026-01-01T12:00:00Z"),
      );
      const failing = status("drifted", {
        certificates: [cert("api", "2025-12-31T12:00:00Z")],
        renewal: { consecutiveFailures: 2, nextAttemptAt: "2026-01-01T00:01:00Z" },
      });
      assert.equal(renewalDueAt(failing, now), Date.parse("2026-01-01T00:01:00Z"));
      for (const phase of ["invalid", "orphaned", "destroyed"] as const)
        assert.equal(renewalDueAt(status(phase), now), undefined);
    });

    it("retries a failed renewal with a doubling delay capped well below the hour, and forgets failures on success", () => {
      const status: StackStatus = {
        name: "a",
        phase: "in-sync",
        mode: "correct",
        intervalSeconds: 60,
        consecutiveFailures: 0,
      };
      const retry = { baseMs: 30 * SECOND, maxMs: 10 * MINUTE };
      const record = (outcome: RenewalRecord["outcome"]): RenewalRecord => ({
        stack: "a",
        outcome,
        startedAt: "2026-01-01T00:00:00.000Z",
        durationMs: 1,
        renewed: outcome === "renewed" ? ["api"] : [],
        error: outcome === "failed" ? "boom" : undefined,
      });
      let s = status;
      const delays: number[] = [];
      for (let i = 0; i < 7; i++) {
        s = renewalEnded(s, record("failed"), 0, retry);
        delays.push(Date.parse(s.renewal?.nextAttemptAt ?? ""));
      }
      assert.deepEqual(
        delays,
        [30, 60, 120, 240, 480, 600, 600].map((x) => x * SECOND),
      );
      assert.equal(s.renewal?.lastError, "boom");
      assert.equal(s.phase, "in-sync", "a renewal never changes the phase");
      s = renewalEnded(s, record("renewed"), 5, retry);
      assert.equal(s.renewal?.consecutiveFailures, 0);
      assert.equal(s.renewal?.nextAttemptAt, undefined);
      assert.deepEqual(s.renewal?.lastRenewed, ["api"]);
    });
  });

  describe("the scheduler, in every mode and phase", () => {
    const TTL = 2 * HOUR; // renewed at 1 h; passes every 10 min unless parked
    const KEYS = ["apiserver", "worker", "admin"];

    /** The scheduler over fakes, recording every pass and renewal. */
    function setup(options: Partial<SchedulerOptions> = {}) {
      const passes: PassRecord[] = [];
      const renewals: RenewalRecord[] = [];
      const world = schedulerOverFakes({
        onPass: (r) => passes.push(r),
        onRenewal: (r) => renewals.push(r),
        ...options,
      });
      return { ...world, passes, renewals };
    }

    /** Runs for `ms`, checking every minute that no certificate of `stack` is past its renewal point by more than `slackMs`. */
    async function neverOverdue(t: ReturnType<typeof setup>, stack: string, ms: number, slackMs = 2 * MINUTE) {
      for (let at = 0; at < ms; at += MINUTE) {
        await t.clock.advance(MINUTE);
        const output = parsePkiOutput(await t.engine.pkiOutput(stack));
        for (const c of output.certificates) {
          const late = t.clock.now() - Date.parse(c.renewAt);
          assert.ok(late <= slackMs, `${stack} ${c.key} is ${Math.round(late / 1000)} s past its renewal point`);
        }
      }
    }

    /** No pass counted a certificate as drift. */
    function noCertificateDrift(passes: readonly PassRecord[]) {
      for (const p of passes) {
        const certDrift = p.drift.filter((d) => d.type.includes("LocalCertificate"));
        assert.deepEqual(certDrift, [], `${p.stack} ${p.outcome} at ${p.startedAt} counted a renewal as drift`);
      }
    }

    const cases: Array<{
      name: string;
      settings: Partial<{ mode: "correct" | "detect" | "off"; intervalSeconds: number }>;
      arrange?: (t: ReturnType<typeof setup>) => void;
      phase: StackPhase;
    }> = [
      { name: "correct and in sync", settings: { mode: "correct", intervalSeconds: 600 }, phase: "in-sync" },
      {
        name: "detect, with other drift (reported only)",
        settings: { mode: "detect", intervalSeconds: 600 },
        arrange: (t) => t.engine.plan("a", ...Array<"drift">(100).fill("drift")),
        phase: "drifted",
      },
      { name: "off", settings: { mode: "off" }, phase: "off" },
      {
        name: "stalled after failures",
        settings: { mode: "correct", intervalSeconds: 600 },
        arrange: (t) => t.engine.plan("a", ...Array<"fail">(5).fill("fail")),
        phase: "stalled",
      },
      {
        name: "blocked by a mandatory policy",
        settings: { mode: "correct", intervalSeconds: 600 },
        arrange: (t) => t.engine.plan("a", ...Array<"drift">(100).fill("drift")),
        phase: "blocked",
      },
      {
        name: "correct, with an interval longer than the certificate's life",
        settings: { mode: "correct", intervalSeconds: 6 * 3600 },
        phase: "in-sync",
      },
    ];

    for (const c of cases) {
      it(`renews before the renewal point passes, never as drift: ${c.name}`, async () => {
        const t = setup({
          checkPolicies:
            c.phase === "blocked"
              ? async () => [{ policy: "p", enforcementLevel: "mandatory", message: "no", urn: "urn:x" }]
              : undefined,
        });
        t.source.add("a", c.settings);
        t.engine.giveCertificates("a", KEYS, TTL);
        c.arrange?.(t);
        const s = t.make();
        await s.start();
        await neverOverdue(t, "a", 8 * HOUR + 5 * MINUTE);
        assert.equal(s.get("a")?.phase, c.phase, "the renewal left the phase alone");
        // Eight hours of a 2 h TTL renewed at half: every certificate renewed 8 times.
        for (const key of KEYS) assert.equal(t.engine.serial("a", key), 1 + 8, key);
        const renewed = t.renewals.filter((r) => r.outcome === "renewed");
        assert.equal(renewed.length, 8);
        assert.ok(renewed.every((r) => r.renewed.length === KEYS.length));
        noCertificateDrift(t.passes);
        // Every renewal targeted the certificates and the carrier, nothing else.
        for (const { targets } of t.engine.renewTargets) {
          assert.deepEqual(
            [...targets.update].sort(),
            [...KEYS.map((k) => certUrn("a", k)), "urn:pulumi:a::g8s::kubernetes:core/v1:Secret::node-secrets"].sort(),
          );
        }
        assert.ok(t.log.messages("info").includes("certificates renewed"));
        if (c.phase === "drifted") {
          const drift = t.passes.filter((p) => p.outcome === "drifted");
          assert.ok(drift.length > 40, "the other drift is still reported on every pass");
          assert.deepEqual(t.engine.ups("a"), [], "and never corrected");
        }
        await s.stop();
      });
    }

    it("renews a stack that needs attention (pending creates), leaving it parked", async () => {
      const t = setup();
      t.source.add("a");
      t.store.saved = [
        { name: "a", phase: "running", mode: "correct", intervalSeconds: 60, consecutiveFailures: 0, fileHash: "h1" },
      ];
      t.engine.pending.set("a", [{ urn: "urn:x", type: "t", op: "creating" }]);
      t.engine.giveCertificates("a", KEYS, TTL);
      const s = t.make();
      await s.start();
      await neverOverdue(t, "a", 3 * HOUR + 5 * MINUTE);
      assert.equal(s.get("a")?.phase, "needs-attention");
      assert.equal(t.engine.serial("a", "worker"), 4);
      assert.deepEqual(t.engine.previews("a"), [], "no pass ran over the pending creates");
      await s.stop();
    });

    it("retries a failing renewal within minutes, says so, and renews once it works", async () => {
      const t = setup();
      t.source.add("a", { mode: "detect", intervalSeconds: 600 });
      t.engine.giveCertificates("a", KEYS, TTL);
      t.engine.failRenewals.set("a", 3);
      const s = t.make();
      await s.start();
      await t.clock.advance(HOUR + 30 * SECOND);
      assert.ok((s.get("a")?.renewal?.consecutiveFailures ?? 0) >= 1);
      assert.match(s.get("a")?.renewal?.lastError ?? "", /renewal update failed/);
      assert.ok(t.log.messages("error").includes("certificate renewal failed"));
      await t.clock.advance(10 * MINUTE);
      assert.equal(t.engine.serial("a", "apiserver"), 2, "renewed after three failures (30 s, 60 s, 120 s)");
      assert.equal(s.get("a")?.renewal?.consecutiveFailures, 0);
      await s.stop();
    });

    it("retries a renewal that finds the stack locked, and renews as soon as the lock is free", async () => {
      const t = setup();
      t.source.add("a", { mode: "off" });
      t.engine.giveCertificates("a", KEYS, TTL);
      const s = t.make();
      await s.start();
      await t.clock.advance(HOUR - 10 * SECOND);
      t.engine.plan("a", "busy");
      await t.clock.advance(20 * SECOND);
      assert.equal(t.renewals.at(-1)?.outcome, "busy");
      assert.equal(s.get("a")?.renewal?.consecutiveFailures ?? 0, 0, "busy is not a failure");
      await t.clock.advance(40 * SECOND);
      assert.equal(t.renewals.at(-1)?.outcome, "renewed");
      await s.stop();
    });

    it("renews a certificate that fell due while a pass previewed, then previews again: no drift", async () => {
      const t = setup();
      // Passes take 30 s; the second starts 10 s before the renewal point (1 h), so its preview
      // ends after it: the backend would reissue, and a preview shows that.
      t.source.add("a", { mode: "detect", intervalSeconds: 3600 - 30 - 10 });
      t.engine.giveCertificates("a", KEYS, TTL);
      t.engine.durationMs = 30 * SECOND;
      const s = t.make();
      await s.start();
      await t.clock.advance(HOUR + 5 * MINUTE);
      assert.equal(t.engine.previews("a")[1]?.start, HOUR - 10 * SECOND);
      assert.equal(t.engine.serial("a", "worker"), 2);
      noCertificateDrift(t.passes);
      assert.equal(s.get("a")?.phase, "in-sync");
      await s.stop();
    });

    it("shows each certificate's expiry in status, and keeps it across a restart", async () => {
      const t = setup();
      t.source.add("a", { mode: "off" });
      t.engine.giveCertificates("a", KEYS, TTL);
      const s = t.make();
      await s.start();
      await t.clock.advance(MINUTE);
      const certs = s.get("a")?.certificates ?? [];
      assert.deepEqual(
        certs.map((c) => [c.key, c.notAfter]),
        KEYS.map((k) => [k, new Date(TTL).toISOString()]).sort(),
      );
      await s.stop();
      const again = t.make();
      await again.start();
      assert.deepEqual(again.get("a")?.certificates, certs);
      await again.stop();
    });
  });
});
