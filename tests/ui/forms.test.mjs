// The defects of issue 16 seen in screenshots, each checked in the browser: the forms' details
// (no stray "null", mapping rows that read and stack, errors on the row they concern, the API Key
// only when used, stale Verify results), modals that keep and give back focus, a destructive
// confirmation that is not the default, grouped event triggers, labels as the seeds name them.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { listen, overflow, readBody, start } from "./harness.mjs";

let ui, page, api, shot, base;
let receiver, receiverUrl;

before(async () => {
  [receiver, receiverUrl] = await listen(async (req, res) => {
    await readBody(req);
    res.statusCode = 204;
    res.end();
  });
  ui = await start("forms");
  ({ page, api, shot, base } = ui);
  await api("workspaces-create", { name: "Spring campaign" });
});

after(async () => {
  await ui?.stop();
  receiver?.close();
});

const activeInDialog = () => page.evaluate(() => Boolean(document.activeElement?.closest("[role=dialog]")));

test("the sign-in hint shows the command as code, and /favicon.ico is served", async () => {
  const missing = [];
  page.on("response", (r) => { if (r.status() === 404) missing.push(r.url()); });
  await page.goto(base);
  await shot("sign-in");
  const hint = page.locator("form.signin p.meta");
  assert.equal(await hint.locator("code").textContent(), "switchyard token create --account NAME");
  assert.ok(!(await hint.textContent()).includes("`"), "no raw backticks");
  const icon = await fetch(`${base}/favicon.ico`);
  assert.equal(icon.status, 200);
  assert.equal(icon.headers.get("content-type"), "image/svg+xml");
  assert.match(await icon.text(), /^<svg/);
  const screen = await fetch(`${base}/ui/screens/integrations.js`);
  assert.equal(screen.headers.get("content-type"), "text/javascript; charset=utf-8", "each screen is a module of its own");
  assert.equal((await fetch(`${base}/ui/screens/nope.js`)).status, 404);
  await ui.signIn();
  // "networkidle" may have been reached before signing in (a change of the hash does not wait for
  // it again): wait for the screen signed in to, drawn once all it loads has answered.
  await ui.settled();
  await page.waitForLoadState("networkidle");
  assert.deepEqual(missing, [], "nothing the page loads is missing");
});

test("a modal keeps Tab inside and gives focus back to its opener", async () => {
  const opener = page.getByRole("button", { name: "+ Add New Integration" }).first();
  await opener.focus();
  await page.keyboard.press("Enter");
  const modal = page.getByRole("dialog", { name: "Select Webhook Integration" });
  await modal.waitFor();
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press("Tab");
    assert.ok(await activeInDialog(), `Tab ${i + 1} stays in the dialog`);
  }
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press("Shift+Tab");
    assert.ok(await activeInDialog(), `Shift+Tab ${i + 1} stays in the dialog`);
  }
  assert.equal(await page.evaluate(() => document.getElementById("app").inert), true, "the page behind is inert");
  await page.keyboard.press("Escape");
  await modal.waitFor({ state: "detached" });
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "+ Add New Integration", "focus is back on the opener");
});

test("Custom API: the API Key only for a type that sends one; a Verify result goes when the URL changes", async () => {
  await page.getByRole("button", { name: "+ Add New Integration" }).first().click();
  await page.getByRole("button", { name: /Custom API/ }).click();
  const key = page.getByLabel("API Key", { exact: true });
  assert.equal(await page.getByLabel("API Key Type").inputValue(), "none");
  assert.equal(await key.isVisible(), false, "no API Key with None");
  assert.equal(await page.getByText("username:password").count(), 0, "no Basic-auth hint with None");
  await page.getByLabel("API Key Type").selectOption("basic");
  assert.ok(await key.isVisible());
  assert.match(await page.locator("[data-field-wrap=secret] .hint").textContent(), /username:password/);
  await page.getByLabel("API Key Type").selectOption("api_key");
  assert.match(await page.locator("[data-field-wrap=secret] .hint").textContent(), /X-API-KEY/);
  await page.getByLabel("API Key Type").selectOption("none");
  assert.equal(await key.isVisible(), false);

  await page.getByLabel("API Endpoint").fill(`${receiverUrl}/hook`);
  await page.getByRole("button", { name: "Verify Connection" }).click();
  const result = page.locator("[data-role=verify-result]");
  await result.getByText(/Connected/).waitFor();
  await page.getByLabel("API Endpoint").fill(`${receiverUrl}/other`);
  assert.equal(await result.textContent(), "", "the result was about the old URL");
});

test("mapping rows: headings, empty new rows, errors on the row and field, stacked at 390 px", async () => {
  const heads = page.locator(".mapping-head");
  assert.equal(await heads.isVisible(), false, "no headings over no rows");
  await page.getByRole("button", { name: "+ Add Field" }).click();
  await page.getByRole("button", { name: "+ Add Field" }).click();
  assert.deepEqual(await heads.locator("span").allTextContents(), ["Webhook field", "→", "Source field", ""]);
  const outputs = page.getByLabel("Webhook field");
  const sources = page.getByLabel("Source field");
  assert.equal(await sources.nth(1).inputValue(), "", "a new row starts empty");
  assert.equal(await outputs.nth(1).inputValue(), "");

  // A row without a source field is marked before anything is sent.
  await outputs.nth(0).fill("mail");
  await sources.nth(0).selectOption({ label: "Email" });
  await outputs.nth(1).fill("zip");
  await page.getByRole("button", { name: "Save Changes" }).click();
  const second = page.locator(".mapping-row").nth(1);
  await second.locator(".row-error", { hasText: "choose a source field" }).waitFor();
  assert.equal(await sources.nth(1).getAttribute("aria-invalid"), "true");
  assert.ok(await second.evaluate((el) => el.classList.contains("invalid")));
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.role), "source");

  // The server's "mapping row 2: the webhook field is empty" lands on row 2's webhook field.
  await sources.nth(1).selectOption({ label: "Postal Code" });
  assert.equal(await second.locator(".row-error").textContent(), "", "choosing clears the error");
  await outputs.nth(1).fill("");
  await page.getByRole("button", { name: "Save Changes" }).click();
  await second.locator(".row-error", { hasText: "the webhook field is empty" }).waitFor();
  assert.equal(await outputs.nth(1).getAttribute("aria-invalid"), "true");
  assert.equal(await outputs.nth(0).getAttribute("aria-invalid"), null, "row 1 is fine");
  assert.equal(await page.locator("[data-field=mapping] > .field-error").textContent(), "", "not beside + Add Field");
  await shot("mapping-row-error");

  await page.setViewportSize({ width: 390, height: 844 });
  for (const input of [outputs.nth(0), sources.nth(0)]) {
    const box = await input.boundingBox();
    assert.ok(box.width >= 200, `a readable width at 390 px (${box.width}px)`);
  }
  const [out, src] = [await outputs.nth(0).boundingBox(), await sources.nth(0).boundingBox()];
  assert.ok(src.y >= out.y + out.height, "the source field sits under the webhook field");
  assert.ok((await overflow(page)) <= 0, "no horizontal scrolling");
  await shot("mapping-rows-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
  await outputs.nth(1).fill("zip");
  await page.getByRole("button", { name: "Save Changes" }).click();
  await page.locator("[data-integration]").waitFor();
});

test("Triggered by keeps the operational events in a group apart", async () => {
  await page.locator("[data-integration]").getByRole("button", { name: "Edit" }).click();
  const triggers = page.getByRole("group", { name: "Triggered by" });
  const operational = triggers.getByRole("group", { name: /Operational events/ });
  const own = triggers.getByRole("group", { name: "Your events" });
  assert.deepEqual((await operational.locator("label").allTextContents()).sort(), ["delivery.exhausted", "delivery.failing", "endpoint.disabled"]);
  const mine = await own.locator("label").allTextContents();
  assert.ok(mine.includes("participant.completed") && mine.includes("contact.created"));
  assert.ok(!mine.some((n) => n.startsWith("delivery.") || n === "endpoint.disabled"));
  await triggers.scrollIntoViewIfNeeded();
  await shot("triggered-by-groups");
  await page.getByRole("button", { name: "Cancel" }).click();
});

test("delete asks with Cancel focused: Enter keeps the item; the destructive button is red", async () => {
  const row = page.locator("[data-integration]");
  await row.getByRole("button", { name: "Delete" }).click();
  const dialog = page.getByRole("dialog", { name: "Please confirm" });
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Cancel");
  const style = await dialog.getByRole("button", { name: "Delete" }).evaluate((el) => {
    const s = getComputedStyle(el);
    return [s.backgroundColor, s.color];
  });
  assert.deepEqual(style, ["rgb(179, 38, 30)", "rgb(255, 255, 255)"], "white on red");
  await shot("delete-confirmation");
  await page.keyboard.press("Enter");
  await dialog.waitFor({ state: "detached" });
  assert.equal((await api("integrations-list")).integrations.length, 1, "Enter did not delete");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Delete", "focus is back on the row's Delete");
  await row.getByRole("button", { name: "Delete" }).click();
  await dialog.getByRole("button", { name: "Delete" }).click();
  await page.getByRole("heading", { name: "No webhook integrations yet" }).waitFor();
  assert.equal((await api("integrations-list")).integrations.length, 0);
});

test("mailer forms: no stray null, Mailgun's API Region, a centred add button when empty", async () => {
  await page.getByRole("link", { name: "Mailer Integrations" }).click();
  await page.getByRole("heading", { name: "No mailer integrations yet" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Add Mailer Integration" }).count(), 2, "top-right and centred");
  await shot("mailers-empty");
  await page.getByRole("button", { name: "Add Mailer Integration" }).first().click();
  const { providers } = await api("mailer-providers-list");
  for (const { provider, title } of providers) {
    await page.getByLabel("Provider").selectOption(provider);
    const text = await page.locator("form.panel").innerText();
    assert.ok(!/\bnull\b/.test(text), `no "null" on the ${title} form`);
  }
  await page.getByLabel("Provider").selectOption("mailgun");
  assert.ok(await page.getByLabel("API Region").isVisible());
  await page.getByLabel("Provider").selectOption("amazon_ses");
  assert.ok(await page.getByLabel("Region", { exact: true }).isVisible());
  await shot("mailer-form-ses");
  await page.getByLabel("Provider").selectOption("internal");
  await shot("mailer-form-relay");
});
