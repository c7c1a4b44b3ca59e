// The overview: its empty state, deliveries over time and latency drawn by the vendored uPlot,
// the totals, targets ordered by health, one target's own charts, the time range, and a phone.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { listen, overflow, readBody, start, until } from "./harness.mjs";

let ui, page, api, shot, base;
let receiver, receiverUrl;

before(async () => {
  [receiver, receiverUrl] = await listen(async (req, res) => {
    await readBody(req);
    res.statusCode = req.url.startsWith("/fail") ? 500 : 204;
    res.end();
  });
  ui = await start("overview");
  ({ page, api, shot, base } = ui);
});

after(async () => {
  await ui?.stop();
  receiver?.close();
});

const overviewDrawn = () => page.locator("[data-role=overview]:not([aria-busy])").waitFor();
/** How many pixels of a canvas have exactly the colour `[r, g, b]`: proof that a series was drawn. */
const pixelsOf = (canvas, rgb) => canvas.evaluate((c, [r, g, b]) => {
  const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] === r && data[i + 1] === g && data[i + 2] === b) n++;
  return n;
}, rgb);

test("the overview's empty state, and the chart library served with its licence", async () => {
  await ui.signIn("#/overview");
  await page.getByRole("heading", { name: "Nothing was sent in the last 24 hours" }).waitFor();
  await shot("overview-empty");
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok((await overflow(page)) <= 0, "no sideways scrolling");
  await shot("overview-empty-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
  const licence = await fetch(`${base}/ui/vendor/uPlot.LICENSE`);
  assert.match(licence.headers.get("content-type"), /^text\/plain/);
  assert.match(await licence.text(), /The MIT License/);
});

test("deliveries over time and latency, with the targets by health, least healthy first", async () => {
  await api("webhooks-create", { url: `${receiverUrl}/ok`, events: ["contact.created"] });
  await api("webhooks-create", { url: `${receiverUrl}/fail`, events: ["contact.created"] });
  for (let i = 0; i < 3; i++) await api("events-send", { type: "contact.created", data: { n: i } });
  await until("every delivery to settle", async () => (await api("deliveries-list", { status: "pending" })).deliveries.length === 0);

  // The overview shown (empty, not busy) stays until the one drawn again replaces it.
  await ui.redrawn(() => page.getByRole("link", { name: "Overview" }).click());
  await overviewDrawn();
  const middle = (selector) => page.locator(selector).evaluate((el) => {
    const box = el.getBoundingClientRect();
    return box.top + box.height / 2;
  });
  assert.ok(Math.abs((await middle("#sign-out")) - (await middle(".brand"))) < 8, "the top bar keeps one line at 1280 px");
  assert.equal(await page.getByRole("combobox", { name: /^Workspace/ }).count(), 1, "the switcher keeps its name");
  assert.equal(await page.locator("[data-stat=succeeded] .stat-value").textContent(), "3");
  assert.equal(await page.locator("[data-stat=server] .stat-value").textContent(), "3");
  assert.equal(await page.locator("[data-stat=total] .stat-value").textContent(), "50%");
  const charts = page.locator(".chart canvas");
  assert.equal(await charts.count(), 2, "deliveries and latency");
  await until("the charts to take their cards' width", async () => (await charts.first().evaluate((c) => c.getBoundingClientRect().width)) > 400);
  assert.ok((await pixelsOf(charts.nth(0), [31, 122, 58])) > 0, "succeeded bars drawn in green");
  assert.ok((await pixelsOf(charts.nth(0), [179, 38, 30])) > 0, "failed bars drawn in red");
  assert.ok((await pixelsOf(charts.nth(1), [36, 84, 214])) > 0, "the average latency line drawn");
  assert.match(await page.locator(".chart").first().getAttribute("aria-label"), /3 succeeded, 3 failed, 0 pending/);
  const targets = await page.locator("[data-target] td:first-child a").allTextContents();
  assert.deepEqual(targets, [`${receiverUrl}/fail`, `${receiverUrl}/ok`], "the failing endpoint first");
  assert.deepEqual(await page.locator("[data-target] .badge").allTextContents(), ["0% delivered", "100% delivered"]);
  await shot("overview");

  await page.getByLabel("Time range").selectOption("1h");
  await overviewDrawn();
  assert.match(await page.locator(".chart").first().getAttribute("aria-label"), /^Deliveries in the last hour/);
});

test("one target's own charts", async () => {
  await page.getByRole("link", { name: `${receiverUrl}/fail`, exact: true }).click();
  await page.getByRole("heading", { name: `Overview · ${receiverUrl}/fail` }).waitFor();
  await overviewDrawn();
  assert.equal(await page.locator("[data-stat=succeeded] .stat-value").textContent(), "0");
  assert.equal(await page.locator("[data-stat=server] .stat-value").textContent(), "3");
  assert.equal(await page.locator("[data-target]").count(), 0, "no table of targets for one target");
  await shot("overview-target");
  await page.getByRole("link", { name: `Deliveries of ${receiverUrl}/fail` }).click();
  await page.getByRole("heading", { name: `Deliveries · ${receiverUrl}/fail` }).waitFor();
});

test("the overview reads on a phone", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole("link", { name: "Overview" }).click();
  await overviewDrawn();
  await until("the charts to fit the phone", async () => {
    const width = await page.locator(".chart canvas").first().evaluate((c) => c.getBoundingClientRect().width);
    return width > 200 && width < 390;
  });
  assert.ok((await overflow(page)) <= 0, "no sideways scrolling");
  await shot("overview-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
});
