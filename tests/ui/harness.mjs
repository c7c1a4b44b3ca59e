// What every browser test file shares: the real `switchyard` binary on 127.0.0.1 with a fresh
// SQLite file and an account, headless Chromium (Debian's /usr/bin/chromium) through
// playwright-core, an API client, screenshots in tests/ui/artifacts/, and local HTTP servers
// standing in for receivers and providers.

import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const binary = join(here, "..", "..", "target", "debug", "switchyard");
export const artifacts = join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });

// axe-core (npm, pinned in package.json), injected into the page to check WCAG 2.1 A and AA.
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/** Asserts that the page as it is now has no WCAG 2.1 A/AA violation that axe-core finds. */
export async function accessible(page, what) {
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: "tag", values: tags } }), WCAG);
  const violations = result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 4).map((n) => n.target.join(" ")).join(", ")}`);
  assert.deepEqual(violations, [], `${what}: WCAG 2.1 A/AA violations`);
}

/** An HTTP server on 127.0.0.1 and its base URL. */
export function listen(handler) {
  return new Promise((resolve) => {
    const srv = createServer(handler);
    srv.listen(0, "127.0.0.1", () => resolve([srv, `http://127.0.0.1:${srv.address().port}`]));
  });
}

export function readBody(req) {
  return new Promise((resolve) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => resolve(data));
  });
}

/** Polls `check` until it returns something truthy (an upper bound, not a speed verdict). */
export async function until(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts the server (extra `serve` flags in `flags`) and a browser page at 1280 × 900.
 * Returns {base, token, page, api, shot, signIn, settled, redrawn, stop}.
 */
export async function start(name, flags = []) {
  const dir = mkdtempSync(join(tmpdir(), `switchyard-${name}-`));
  const database = `sqlite:${join(dir, "ui.db")}`;
  const token = execFileSync(binary, ["token", "create", "--account", name, "--database-url", database], { encoding: "utf8" }).trim();
  const server = spawn(binary, ["serve", "--listen", "127.0.0.1:0", "--database-url", database, "--allow-http", "--allow-private-networks",
    "--retry-schedule", "0ms,50ms,100ms", "--request-timeout", "2s", "--lease", "5s", ...flags],
  { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, SWITCHYARD_LOG: "warn" } });
  const line = await new Promise((resolve) => createInterface({ input: server.stdout }).once("line", resolve));
  const base = line.replace("switchyard listening on ", "").trim();

  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (error) => { throw error; });

  async function api(call, body = {}) {
    const response = await fetch(`${base}/api/${call}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    assert.ok(answer.ok, `${call}: ${JSON.stringify(answer)}`);
    return answer.result;
  }
  // Every state a test takes a picture of is also checked for accessibility.
  const shot = async (file) => {
    await accessible(page, file);
    // A dialog is pictured as the viewport shows it (its fixed backdrop covers only that).
    const fullPage = await page.locator("#overlay").isHidden();
    await page.screenshot({ path: join(artifacts, `${file}.png`), fullPage });
  };
  async function signIn(hash = "#/integrations") {
    await page.goto(`${base}/${hash}`);
    await page.getByLabel("API token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("nav a[aria-current=page]").waitFor();
  }
  /** Waits until the screen has been drawn again (the app is not marked busy). Only right after
   * an action whose handling starts the drawing (Done in a dialog, a link, Filter): after one
   * that draws once the server has answered (a switch, Retry rejected records), or when what
   * was shown before is not busy either, use `redrawn`. */
  const settled = () => page.locator("#app:not([aria-busy])").waitFor({ state: "attached" });
  /**
   * Does `action` and waits until it has made the app draw its screen again (in `frame`, the page
   * by default): the screen shown before is gone and the new one is in place. Unlike `settled`, it
   * cannot return early when the drawing begins only later (after a hashchange, or once the
   * server has answered). Nothing may be drawing when it is called.
   */
  async function redrawn(action, frame = page) {
    const shown = await frame.locator("#app > *").elementHandle();
    await action();
    await frame.waitForFunction((old) => !old.isConnected && !document.getElementById("app").hasAttribute("aria-busy"), shown);
    await shown.dispose();
  }
  async function stop() {
    await browser.close();
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  return { base, token, page, api, shot, signIn, settled, redrawn, stop };
}

/** Horizontal overflow of the page in pixels (0 when nothing scrolls sideways). */
export const overflow = (page) => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
