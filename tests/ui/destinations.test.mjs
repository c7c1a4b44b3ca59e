// Query destinations and activations (seed 004) in the browser: create/edit/delete, the URL
// preview of one sample record as the user types, an activation started by uploading a file
// (upload progress under a throttled network, then live counts), per-record results filtered by
// outcome and paged, Cancel of a running activation, and the Running History.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { listen, overflow, readBody, start, until } from "./harness.mjs";

let ui, page, api, shot;
let receiver, receiverUrl;
const received = [];

before(async () => {
  [receiver, receiverUrl] = await listen(async (req, res) => {
    await readBody(req);
    const url = new URL(req.url, "http://receiver");
    received.push({ method: req.method, url: req.url });
    const email = url.searchParams.get("email") || "";
    res.statusCode = email.startsWith("missing") ? 404 : email.startsWith("broken") ? 500 : 204;
    res.end();
  });
  ui = await start("destinations");
  ({ page, api, shot } = ui);
});

after(async () => {
  await ui?.stop();
  receiver?.close();
});

const stat = (kind) => page.locator(`[data-role=summary] [data-stat=${kind}] .stat-value`);

test("the empty state offers Add Destination in the corner and the centre", async () => {
  await ui.signIn("#/destinations");
  await page.getByRole("heading", { name: "No query destinations yet" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Add Destination" }).count(), 2);
  assert.ok(await page.getByRole("heading", { name: "Running History" }).isVisible());
  assert.equal(await page.locator("nav a[aria-current=page]").textContent(), "Query Destinations");
  await shot("destinations-empty");
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok((await overflow(page)) <= 0);
  await shot("destinations-empty-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
});

test("create a destination; the preview shows the URL a sample record produces as the user types", async () => {
  await page.getByRole("button", { name: "Add Destination" }).first().click();
  await page.getByLabel("Name").fill("CRM webhook");
  await page.getByLabel("Base URL").fill(`${receiverUrl}/hook?foo=bar`);
  await page.getByLabel("HTTP Method").selectOption("PUT");
  const preview = page.locator("[data-role=preview]");
  assert.equal(await preview.textContent(), `PUT ${receiverUrl}/hook?foo=bar`);

  await page.getByRole("button", { name: "+ Add a mapping" }).click();
  await page.getByLabel("Column").nth(0).fill("contacts.email");
  await page.getByLabel("Query key").nth(0).fill("email");
  assert.equal(await preview.textContent(), `PUT ${receiverUrl}/hook?foo=bar&email=jane%40example.com`);
  await page.getByRole("button", { name: "+ Add a mapping" }).click();
  await page.getByLabel("Column").nth(1).fill("contacts.id");
  await page.getByLabel("Query key").nth(1).fill("user_id");
  assert.equal(await preview.textContent(), `PUT ${receiverUrl}/hook?foo=bar&email=jane%40example.com&user_id=123`, "seed 004's example");
  await page.getByLabel("Sample record (JSON)").fill('{"contacts.email": "a b+c@x.org", "contacts.id": 7, "other": 1}');
  assert.equal(await preview.textContent(), `PUT ${receiverUrl}/hook?foo=bar&email=a+b%2Bc%40x.org&user_id=7`);
  await page.getByLabel("Sample record (JSON)").fill("[1, 2");
  assert.equal(await preview.textContent(), "The sample record is not a JSON object.");
  await page.getByLabel("Sample record (JSON)").fill('{"contacts.email": "jane@example.com", "contacts.id": 123}');

  // A row with no query key: the server's "query_params[2]: …" lands on that row's empty field.
  await page.getByRole("button", { name: "+ Add a mapping" }).click();
  await page.getByLabel("Column").nth(2).fill("contacts.name");
  await page.getByRole("button", { name: "Save Changes" }).click();
  const third = page.locator(".mapping-row").nth(2);
  await third.locator(".row-error", { hasText: "query_key and column are required" }).waitFor();
  assert.equal(await page.getByLabel("Query key").nth(2).getAttribute("aria-invalid"), "true");
  assert.equal(await page.getByLabel("Column").nth(2).getAttribute("aria-invalid"), null);
  await shot("destination-form");
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok((await overflow(page)) <= 0);
  await shot("destination-form-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByRole("button", { name: "Remove query parameter" }).nth(2).click();

  await page.getByRole("button", { name: "Save Changes" }).click();
  await page.locator("[data-destination]", { hasText: "CRM webhook" }).waitFor();
  const [saved] = (await api("destinations-list")).destinations;
  assert.equal(saved.url, `${receiverUrl}/hook?foo=bar`);
  assert.equal(saved.method, "PUT");
  assert.deepEqual(saved.query_params, [{ query_key: "email", column: "contacts.email" }, { query_key: "user_id", column: "contacts.id" }]);
});

test("closing the dialog during an upload stops it: no activation is started", async () => {
  // The upload is held on its way (a throttled one can still reach a server on loopback whole
  // before the dialog closes): the dialog is closed while it is out.
  let held;
  const started = new Promise((resolve) => page.route("**/api/activations-create*", (route) => { held = route; resolve(); }));
  await page.locator("[data-destination]", { hasText: "CRM webhook" }).getByRole("button", { name: "Activate" }).click();
  const csv = `contacts.email,notes\njane@example.com,${"x".repeat(100_000)}\n`;
  await page.getByLabel("Records file").setInputFiles({ name: "big.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  await page.getByRole("button", { name: "Start activation" }).click();
  await started;
  await page.locator("[data-role=upload-status]", { hasText: "Uploading" }).waitFor();
  const givenUp = page.waitForEvent("requestfailed", (r) => r.url().includes("/api/activations-create"));
  await page.keyboard.press("Escape");
  await page.getByRole("dialog").waitFor({ state: "detached" });
  // The browser gives the held request up; letting it go on now sends nothing of it.
  await givenUp;
  await held.continue().catch(() => {});
  await page.unroute("**/api/activations-create*");
  assert.deepEqual((await api("activations-list")).activations, [], "nothing was kept");
  assert.match(page.url(), /#\/destinations$/, "still on the list");
  assert.equal(received.length, 0, "nothing was sent");
});

test("activate by uploading a CSV: upload progress, then live counts; records filtered by outcome", async () => {
  // Three fat records (about 120 KB) through an upload throttled to 48 KB/s: the progress shows.
  const notes = "x".repeat(40_000);
  const csv = `contacts.email,contacts.id,notes\njane@example.com,1,${notes}\nmissing@example.com,2,${notes}\nbroken@example.com,3,${notes}\n`;
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 48 * 1024 });

  await page.locator("[data-destination]", { hasText: "CRM webhook" }).getByRole("button", { name: "Activate" }).click();
  const dialog = page.getByRole("dialog", { name: "Activate · CRM webhook" });
  await dialog.getByLabel("Records file").setInputFiles({ name: "segment.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  assert.equal(await dialog.getByLabel("Format").inputValue(), "text/csv", "told by the file's name");
  await dialog.getByRole("button", { name: "Start activation" }).click();
  // The status is read with the bar, at once: the upload goes on (and ends) meanwhile.
  const uploading = await page.waitForFunction(() => {
    const bar = document.querySelector(".upload-progress progress");
    return bar && bar.value > 0 && bar.value < 100 && document.querySelector("[data-role=upload-status]").textContent;
  });
  assert.match(await uploading.jsonValue(), /^Uploading… \d+% of 11\d\.\d KB$/);
  await shot("activation-uploading");
  await page.waitForURL(/#\/activations\//);
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });

  // Live counts, without reloading the page.
  await until("the run to finish", async () => (await page.locator("[data-role=summary] [data-role=status]").textContent()) === "finished");
  assert.equal(await stat("total").textContent(), "3");
  assert.equal(await stat("succeeded").textContent(), "1");
  assert.equal(await stat("client").textContent(), "1");
  assert.equal(await stat("server").textContent(), "1");
  assert.equal(await stat("pending").textContent(), "0");
  assert.match(await page.locator("[data-role=summary] .bar").getAttribute("aria-label"), /^3 of 3 records settled: 1 succeeded, 1 client errors, 1 server errors/);
  const jane = received.find((r) => r.url.includes("jane"));
  assert.equal(jane.method, "PUT");
  assert.equal(jane.url, "/hook?foo=bar&email=jane%40example.com&user_id=1", "what the preview promised, for this record");

  assert.equal(await page.locator("[data-record]").count(), 3);
  const codes = () => page.locator("[data-record] td:nth-child(3)").allTextContents();
  for (const [outcome, code] of [["client_errors", "404"], ["server_errors", "500"], ["succeeded", "204"]]) {
    await page.getByLabel("Outcome").selectOption(outcome);
    await until(`${outcome} only`, async () => JSON.stringify(await codes()) === JSON.stringify([code]));
  }
  await page.getByLabel("Outcome").selectOption("");
  await until("all records", async () => (await page.locator("[data-record]").count()) === 3);
  await shot("activation-finished");
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok((await overflow(page)) <= 0);
  await shot("activation-finished-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
});

test("page through a running activation's records and cancel it", async () => {
  await api("destinations-create", { name: "Slow partner", url: `${receiverUrl}/slow`, rate_limit: 1,
    query_params: [{ query_key: "email", column: "email" }] });
  await page.getByRole("link", { name: "← Query Destinations" }).click();
  await page.locator("[data-destination]", { hasText: "Slow partner" }).getByRole("button", { name: "Activate" }).click();
  const ndjson = Array.from({ length: 60 }, (_, i) => JSON.stringify({ email: `p${i}@example.com` })).join("\n");
  await page.getByLabel("Records file").setInputFiles({ name: "people.ndjson", mimeType: "application/x-ndjson", buffer: Buffer.from(ndjson) });
  assert.equal(await page.getByLabel("Format").inputValue(), "application/x-ndjson");
  await page.getByRole("button", { name: "Start activation" }).click();
  await page.waitForURL(/#\/activations\//);
  await page.locator("[data-role=summary] [data-role=status]", { hasText: "running" }).waitFor();

  const where = page.locator("[data-role=page]");
  await where.getByText("Records 1–25").waitFor();
  await page.getByRole("button", { name: "Next" }).click();
  await where.getByText("Records 26–50").waitFor();
  assert.equal(await page.locator("[data-record]").first().getAttribute("data-record"), "25");
  await page.getByRole("button", { name: "Next" }).click();
  await where.getByText("Records 51–60").waitFor();
  assert.ok(await page.getByRole("button", { name: "Next" }).isDisabled());
  await page.getByRole("button", { name: "Previous" }).click();
  await where.getByText("Records 26–50").waitFor();
  await shot("activation-running");

  await page.getByRole("button", { name: "Cancel activation" }).click();
  const dialog = page.getByRole("dialog", { name: "Cancel activation" });
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Keep running", "the safe choice is the default");
  await dialog.getByRole("button", { name: "Cancel activation" }).click();
  await page.locator("[data-role=summary] [data-role=status]", { hasText: "cancelled" }).waitFor();
  const cancelled = Number(await stat("cancelled").textContent());
  assert.ok(cancelled >= 30, `most records cancelled (${cancelled})`);
  await page.getByLabel("Outcome").selectOption("cancelled");
  await until("a page of cancelled records only", async () => {
    const outcomes = await page.locator("[data-record] [data-outcome]").allTextContents();
    return outcomes.length === 25 && outcomes.every((s) => s === "cancelled");
  });
  await page.getByRole("button", { name: "Next" }).click();
  await where.getByText(/^Records 26–/).waitFor();
  assert.equal(await page.getByRole("button", { name: "Cancel activation" }).isVisible(), false, "nothing left to cancel");
  const { activations } = await api("activations-list");
  assert.equal(activations.find((a) => a.total === 60).status, "cancelled");
});

test("the Running History lists every run with its status and counts", async () => {
  await page.getByRole("link", { name: "Query Destinations", exact: true }).click();
  const rows = page.locator("[data-activation]");
  await until("two runs", async () => (await rows.count()) === 2);
  assert.deepEqual(await rows.locator("[data-role=status]").allTextContents(), ["cancelled", "finished"], "newest first");
  const finished = rows.filter({ hasText: "finished" });
  assert.deepEqual((await finished.locator("td.num").allTextContents()), ["3", "1", "1", "1", "0"]);
  await shot("destinations-list");
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok((await overflow(page)) <= 0, "the table scrolls inside its frame, not the page");
  await shot("destinations-list-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
  await finished.getByRole("link").click();
  await page.locator("[data-record]").first().waitFor();
});

test("the Running History shows the newest 50 runs, and older ones on demand", async () => {
  const [destination] = (await api("destinations-list")).destinations.filter((d) => d.name === "Slow partner");
  await api("destinations-update", { id: destination.id, is_active: false });
  for (let i = 0; i < 49; i++) await api("activations-create", { destination_id: destination.id, records: [{ email: `r${i}@example.com` }] });
  await page.getByRole("link", { name: "Query Destinations", exact: true }).click();
  await ui.settled();
  const rows = page.locator("[data-activation]");
  await until("the first 50 runs", async () => (await rows.count()) === 50);
  await page.getByRole("button", { name: "Show older runs" }).click();
  await until("all 51 runs", async () => (await rows.count()) === 51);
  assert.equal(await page.getByRole("button", { name: "Show older runs" }).isVisible(), false, "no more to show");
  assert.equal(await rows.last().locator("[data-role=status]").textContent(), "finished", "the oldest run comes last");
});

test("edit a destination's method, then delete it, told what goes with it", async () => {
  await page.getByRole("link", { name: "Query Destinations", exact: true }).click();
  // Following the link of the screen shown draws it again: wait, or Edit may open a form the
  // redrawing replaces.
  await ui.settled();
  const row = page.locator("[data-destination]", { hasText: "CRM webhook" });
  await row.getByRole("button", { name: "Edit" }).click();
  assert.equal(await page.getByLabel("Base URL").inputValue(), `${receiverUrl}/hook?foo=bar`);
  assert.equal(await page.getByLabel("Query key").count(), 2);
  await page.getByLabel("HTTP Method").selectOption("DELETE");
  assert.match(await page.locator("[data-role=preview]").textContent(), /^DELETE /);
  await page.getByRole("button", { name: "Save Changes" }).click();
  await row.locator(".method", { hasText: "DELETE" }).waitFor();
  assert.equal((await api("destinations-list")).destinations.find((d) => d.name === "CRM webhook").method, "DELETE");

  await row.getByRole("button", { name: "Delete" }).click();
  const dialog = page.getByRole("dialog", { name: "Please confirm" });
  await dialog.getByText("Its 1 activation and delivery log go too.").waitFor();
  await dialog.getByRole("button", { name: "Delete" }).click();
  await row.waitFor({ state: "detached" });
  assert.equal((await api("destinations-list")).destinations.length, 1);
});

test("a sync run: Dry run shows what would be sent, the run shows its counts, rejected records go again", async () => {
  await api("destinations-create", { name: "Sync partner", url: `${receiverUrl}/sync`, method: "PUT",
    query_params: [{ query_key: "email", column: "email" }, { query_key: "name", column: "name" }] });
  await page.getByRole("link", { name: "Query Destinations", exact: true }).click();
  await ui.settled();
  await page.locator("[data-destination]", { hasText: "Sync partner" }).getByRole("button", { name: "Activate" }).click();
  const dialog = page.getByRole("dialog", { name: "Activate · Sync partner" });
  const csv = "email,name\njane@example.com,Jane\nmissing@example.com,Mo\n";
  await dialog.getByLabel("Records file").setInputFiles({ name: "segment.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  assert.ok(await dialog.getByRole("switch", { name: /Mirror/ }).isDisabled(), "mirroring needs a sync key");
  await dialog.getByLabel("Sync key (optional)").fill("email");
  await dialog.getByRole("switch", { name: /Mirror/ }).check();
  const before = received.length;
  await dialog.getByRole("button", { name: "Dry run" }).click();
  const dry = dialog.locator("[data-role=dry-run]");
  await dry.getByText("Dry run: 2 requests would be sent").waitFor();
  assert.equal(await dry.locator("[data-role=dry-run-counts]").textContent(), "2 new · 0 changed · 0 unchanged · 0 retried · 0 deleted");
  assert.deepEqual(await dry.locator("li").allTextContents(),
    [`PUT ${receiverUrl}/sync?email=jane%40example.com&name=Jane`, `PUT ${receiverUrl}/sync?email=missing%40example.com&name=Mo`]);
  assert.equal(received.length, before, "a dry run sends nothing");
  await shot("activation-dry-run");
  await page.setViewportSize({ width: 390, height: 844 });
  await shot("activation-dry-run-phone");
  await page.setViewportSize({ width: 1280, height: 900 });

  await dialog.getByRole("button", { name: "Start activation" }).click();
  await page.waitForURL(/#\/activations\//);
  await until("the run to finish", async () => (await page.locator("[data-role=summary] [data-role=status]").textContent()) === "finished");
  assert.equal(await page.locator("[data-role=sync]").textContent(), "Sync on “email”, mirrored: 2 new · 0 changed · 0 unchanged · 0 retried · 0 deleted");
  assert.equal(await stat("client").textContent(), "1");
  const rejectedSends = () => received.filter((r) => r.url.includes("/sync?email=missing")).length;
  const sentBefore = rejectedSends();
  // The run shows "finished" until it is drawn again from the retry's answer.
  await ui.redrawn(() => page.getByRole("button", { name: "Retry rejected records" }).click());
  await until("the rejected record sent again", async () => rejectedSends() > sentBefore);
  await until("the run to finish again", async () => (await page.locator("[data-role=summary] [data-role=status]").textContent()) === "finished");
  await shot("activation-sync");

  await page.getByRole("link", { name: "← Query Destinations" }).click();
  const row = page.locator("[data-activation]").first();
  await row.getByText("2 new · 0 changed · 0 unchanged · 0 retried · 0 deleted").waitFor();
  await shot("destinations-history-sync");
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok((await overflow(page)) <= 0);
  await page.setViewportSize({ width: 1280, height: 900 });
});
