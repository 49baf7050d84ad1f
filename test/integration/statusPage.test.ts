/**
 * The status page in a real browser: a daemon reconciles two fixture stacks, and Debian's
 * headless Chromium (driven by playwright-core) loads `/`, finds both stacks with their phase
 * and last pass, follows a stack's link to its page and its recent passes, with the page's
 * style applied under its content policy and nothing refused. Screenshots of both pages are
 * kept in test-artifacts/ (ignored by git).
 */
import * as assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import * as path from "node:path";
import { chromium, type Browser } from "playwright-core";
import { PROJECT_ROOT } from "../../automation/engine";
import { endEngineProcesses, startDaemon, TEST_TOKEN, waitFor, type DaemonProcess } from "./daemon";
import { createSandbox, writeFixtureStack, type Sandbox } from "./harness";

const CHROMIUM = "/usr/bin/chromium";
export const ARTIFACTS = path.join(PROJECT_ROOT, "test-artifacts");

describe("status page in Debian's headless Chromium", function () {
  this.timeout(300_000);
  let sandbox: Sandbox;
  let daemon: DaemonProcess | undefined;
  let browser: Browser | undefined;

  before(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install chromium (npm test's provisioning does)`);
    sandbox = await createSandbox("g8s-page");
    writeFixtureStack(sandbox, "web1", { a: "1" }, { "g8s:reconcile": { mode: "correct", interval: "1h" } });
    writeFixtureStack(sandbox, "web2", { a: "2" }, { "g8s:reconcile": { mode: "detect", interval: "1h" } });
    daemon = await startDaemon(sandbox, ["--offline"]);
    const d = daemon;
    await waitFor("both stacks discovered", async () => ((await d.stacks()).length === 2 ? true : undefined), 60_000);
    // On a 1 h interval the first passes are spread over minutes: ask for them now.
    for (const stack of ["web1", "web2"]) {
      const res = await fetch(`http://127.0.0.1:${d.port}/api/stacks/${stack}/reconcile`, {
        method: "POST",
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
      });
      assert.equal(res.status, 202, await res.text());
    }
    await waitFor(
      "a pass of both stacks",
      async () => {
        const stacks = await d.stacks();
        return stacks.every((s) => s.lastPass !== undefined && s.phase !== "running") ? true : undefined;
      },
      180_000,
    );
    // As root Chromium needs --no-sandbox; nothing but this loopback page is loaded.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
    if (sandbox) endEngineProcesses(sandbox);
    sandbox?.dispose();
  });

  it("shows every stack of the running daemon, follows a link to a stack's recent passes", async () => {
    const page = await (browser as Browser).newPage();
    const refused: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") refused.push(m.text());
    });
    const base = `http://127.0.0.1:${(daemon as DaemonProcess).port}`;
    const loaded = await page.goto(`${base}/`);
    assert.equal(loaded?.status(), 200);
    assert.equal(await page.title(), "g8s: 2 stacks");
    // Per row: the stack, its phase badge, its mode and its last pass's outcome badge.
    const rows = await page.locator("tbody tr").evaluateAll((trs) =>
      trs.map((tr) => {
        const td = [...tr.querySelectorAll("td")];
        return [
          td[0]?.textContent?.trim(),
          td[1]?.querySelector(".badge")?.textContent,
          td[2]?.textContent,
          td[3]?.querySelector(".badge")?.textContent,
        ];
      }),
    );
    assert.deepEqual(
      rows,
      [
        ["web1", "in-sync", "correct", "corrected"], // its first pass created its record
        ["web2", "drifted", "detect", "drifted"], // never applied: detect only reports
      ],
      JSON.stringify(rows),
    );
    // The inline style applies under the page's content policy.
    const green = await page
      .locator("tbody .badge.ok")
      .first()
      .evaluate((e) => e.ownerDocument.defaultView?.getComputedStyle(e).backgroundColor);
    assert.equal(green, "rgb(220, 245, 227)");
    await page.screenshot({ path: path.join(ARTIFACTS, "status-page.png"), fullPage: true });

    await page.getByRole("link", { name: "web1" }).click();
    await page.waitForURL(`${base}/stacks/web1`);
    assert.equal(await page.locator("h1").textContent(), "web1");
    const passes = await page.locator("#passes tbody tr").count();
    assert.ok(passes >= 1, `${passes} passes listed`);
    assert.match((await page.locator("#passes tbody tr").first().textContent()) ?? "", /corrected|in-sync/);
    await page.screenshot({ path: path.join(ARTIFACTS, "status-page-web1.png"), fullPage: true });
    await page.getByRole("link", { name: "← all stacks" }).click();
    await page.waitForURL(`${base}/`);
    assert.deepEqual(refused, [], "the browser refused nothing (content policy) and logged no error");
  });
});
