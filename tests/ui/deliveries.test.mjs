// The delivery log people debug with: its empty state, pages past the first 50 by cursor,
// filters by kind of target, event type and status, each delivery's destination and attempts in
// plain words, the link from a target to its own deliveries, and Recover of a time window.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { listen, overflow, readBody, start, until } from "./harness.mjs";

let ui, page, api, shot;
let receiver, receiverUrl;
let failing = true;

before(async () => {
  [receiver, receiverUrl] = await listen(async (req, res) => {
    await readBody(req);
    res.statusCode = req.url.startsWith("/fail") && failing ? 503 : 204;
    res.setHeader("x-request-id", "req-ui");
    res.end(res.statusCode === 503 ? "upstream is down" : "");
  });
  ui = await start("deliveries");
  ({ page, api, shot } = ui);
});

after(async () => {
  await ui?.stop();
  receiver?.close();
});

const rows = () => page.locator("[data-delivery]");
// Filtering goes to the filtered log's address, which is then drawn.
const filter = async (label, value) => {
  const before = await page.evaluate(() => location.hash);
  await page.getByLabel(label, { exact: true }).selectOption(value);
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForFunction((old) => location.hash !== old, before);
  await ui.settled();
};

test("an empty log says so", async () => {
  await ui.signIn("#/deliveries");
  await page.getByRole("heading", { name: "No deliveries match" }).waitFor();
  await shot("deliveries-empty");
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok((await overflow(page)) <= 0, "no sideways scrolling");
  await shot("deliveries-empty-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
});

test("the log pages past 50 deliveries and filters by kind, event and status", async () => {
  await api("webhooks-create", { url: `${receiverUrl}/ok`, events: ["contact.created"], description: "CRM" });
  await api("webhooks-create", { url: `${receiverUrl}/fail`, events: ["contact.updated"], description: "Flaky" });
  await api("destinations-create", { name: "Audience sync", url: `${receiverUrl}/sync`, events: ["participant.completed"] });
  await api("events-send-batch", { events: Array.from({ length: 55 }, (_, i) => ({ type: "contact.created", data: { n: i } })) });
  await api("events-send", { type: "contact.updated", data: { email: "jane@example.com" } });
  await api("events-send", { type: "participant.completed", data: { email: "jane@example.com" } });
  await until("every delivery to settle", async () => {
    const { deliveries } = await api("deliveries-list", { limit: 1000, status: "pending" });
    return deliveries.length === 0;
  }, 60000);

  await page.getByRole("link", { name: "Deliveries", exact: true }).click();
  await ui.settled();
  assert.equal(await rows().count(), 50, "the first page");
  await page.getByRole("button", { name: "Load older deliveries" }).click();
  await until("the second page", async () => (await rows().count()) === 57);
  assert.ok(await page.getByRole("button", { name: "Load older deliveries" }).isHidden(), "no more pages");

  await filter("Kind of target", "destination");
  assert.equal(await rows().count(), 1);
  assert.match(await rows().first().textContent(), /Query destination · Audience sync/);
  await filter("Kind of target", "");
  await filter("Event", "contact.updated");
  await filter("Status", "failed");
  assert.equal(await rows().count(), 1);
  assert.match(await page.evaluate(() => location.hash), /^#\/deliveries\?event=contact.updated&status=failed$/, "the filters are in the address");
  await page.reload();
  await ui.settled();
  assert.equal(await page.getByLabel("Status", { exact: true }).inputValue(), "failed", "a reloaded log keeps its filters");
  assert.equal(await rows().count(), 1);
  await shot("deliveries-filtered");

  await rows().first().getByRole("button", { name: /^Details/ }).click();
  const dialog = page.getByRole("dialog", { name: "Delivery of contact.updated" });
  await dialog.locator("[data-attempt]").nth(2).waitFor();
  const request = dialog.locator("[data-role=request]");
  assert.equal(await request.locator(".url-line").textContent(), `POST ${receiverUrl}/fail`, "where it went");
  assert.match(await request.locator("pre").textContent(), /"event":"contact.updated"/, "the body sent");
  assert.ok((await request.locator("dt").allTextContents()).includes("webhook-signature"));
  assert.deepEqual(await dialog.locator(".attempt .summary").allTextContents(), Array(3).fill("HTTP 503: the receiver failed"));
  assert.equal(await dialog.locator(".attempt pre.excerpt").first().textContent(), "upstream is down");
  const headers = dialog.locator("[data-attempt='1'] [data-role=response-headers]");
  await headers.locator("summary").click();
  assert.equal(await headers.locator("dt", { hasText: "x-request-id" }).locator("+ dd").textContent(), "req-ui", "the answer's headers");
  await shot("delivery-detail");
  await page.keyboard.press("Escape");
});

test("a target links to its deliveries, where a window of failures is recovered", async () => {
  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.getByRole("link", { name: `Deliveries of ${receiverUrl}/fail` }).click();
  await page.getByRole("heading", { name: `Deliveries · ${receiverUrl}/fail` }).waitFor();
  await ui.settled();
  assert.equal(await rows().count(), 1, "only this endpoint's deliveries");

  failing = false;
  await page.getByRole("button", { name: "Recover failed deliveries…" }).click();
  const dialog = page.getByRole("dialog", { name: /^Recover failed deliveries/ });
  await shot("deliveries-recover");
  await dialog.getByRole("button", { name: "Recover" }).click();
  await dialog.getByText("1 failed delivery queued again.").waitFor();
  await until("the recovered delivery to arrive", async () => {
    const { deliveries } = await api("deliveries-list", { status: "delivered", event_type: "contact.updated" });
    return deliveries.length === 1;
  });
  await dialog.getByRole("button", { name: "Done" }).click();
  await filter("Status", "delivered");
  assert.equal(await rows().count(), 1);
  await rows().first().getByText("delivered").waitFor();
  await shot("deliveries-target");
});

test("the log and a delivery read on a phone", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole("link", { name: "Deliveries", exact: true }).click();
  await ui.settled();
  assert.ok((await overflow(page)) <= 0, "no sideways scrolling");
  await filter("Event", "contact.updated");
  await shot("deliveries-phone");
  await rows().first().getByRole("button", { name: /^Details/ }).click();
  await page.locator("[data-attempt='4']", { hasText: "(manual)" }).waitFor();
  await shot("delivery-detail-phone");
  await page.keyboard.press("Escape");
  await page.setViewportSize({ width: 1280, height: 900 });
});
