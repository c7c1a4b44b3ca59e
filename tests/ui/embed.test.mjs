// The browser-callback script in headless Chromium: the demo iframe's message reaches the
// host page's handler; the same message from a foreign origin does not.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const binary = join(here, "..", "..", "target", "debug", "switchyard");
let server, base, browser, page, dir;
mkdirSync(join(here, "artifacts"), { recursive: true });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "switchyard-embed-"));
  server = spawn(binary, ["serve", "--listen", "127.0.0.1:0", "--database-url", `sqlite:${join(dir, "embed.db")}`],
    { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, SWITCHYARD_LOG: "warn" } });
  const line = await new Promise((resolve) => createInterface({ input: server.stdout }).once("line", resolve));
  base = line.replace("switchyard listening on ", "").trim();
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage();
  page.on("pageerror", (error) => { throw error; });
});

after(async () => {
  await browser?.close();
  server?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Counts every message the host window receives, handled or not. */
async function countMessages() {
  await page.evaluate(() => {
    window.__messages = 0;
    window.addEventListener("message", () => window.__messages++);
  });
}

test("the iframe's complete message reaches the handler and reveals Claim Prize", async () => {
  await page.goto(`${base}/demo/embed`);
  await page.locator("#log li", { hasText: "start" }).waitFor();
  const claim = page.getByRole("button", { name: "Claim Prize" });
  assert.equal(await claim.isVisible(), false);
  await page.frameLocator("#experience").getByRole("button", { name: "Finish" }).click();
  await claim.waitFor();
  assert.deepEqual(await page.locator("#log li").allTextContents(), ["start", 'complete: {"score":42,"prizeTitle":"Mug"}']);
  await page.screenshot({ path: join(here, "artifacts", "embed-demo.png") });
});

test("a message from a foreign origin is ignored", async () => {
  // localhost and 127.0.0.1 are different origins: the host page allows only its own.
  const foreign = base.replace("127.0.0.1", "localhost");
  await page.goto(`${base}/demo/embed?experience=${encodeURIComponent(`${foreign}/demo/experience`)}`);
  await countMessages();
  const frame = page.frameLocator("#experience");
  await frame.getByRole("button", { name: "Finish" }).click();
  await frame.getByText("Sent: complete").waitFor();
  await page.waitForFunction(() => window.__messages >= 1);
  assert.equal(await page.getByRole("button", { name: "Claim Prize" }).isVisible(), false);
  assert.equal(await page.locator("#log li").count(), 0, "no handler ran");
});

test("messages of another shape or version are ignored", async () => {
  await page.goto(`${base}/demo/embed`);
  await page.locator("#log li", { hasText: "start" }).waitFor();
  const seen = await page.evaluate(() => new Promise((resolve) => {
    const got = [];
    Switchyard.on("*", (data, meta) => got.push([meta.type, data]));
    // Messages arrive in the order posted, and this listener runs after embed.js's: once it has
    // the last one, embed.js has handled them all.
    window.addEventListener("message", (event) => { if (event.data?.type === "custom.step") resolve(got); });
    for (const message of [{ switchyard: 2, type: "complete" }, { type: "complete" }, "complete", { switchyard: 1, type: 7 }]) {
      window.postMessage(message, location.origin);
    }
    window.postMessage({ switchyard: 1, type: "custom.step", data: { step: 4 } }, location.origin);
  }));
  assert.deepEqual(seen, [["custom.step", { step: 4 }]], "only the valid message reaches a wildcard handler");
  assert.equal(await page.getByRole("button", { name: "Claim Prize" }).isVisible(), false);
});
