// Workspaces (create, rename, delete, told what uses one first), saving something available in
// no workspace (asked first), and webhook endpoint editing with health: rate limit, failure
// streak, an endpoint Switchyard switched off (410 Gone) and Re-enable.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { listen, overflow, readBody, start, until } from "./harness.mjs";

let ui, page, api, shot;
let receiver, receiverUrl;

before(async () => {
  [receiver, receiverUrl] = await listen(async (req, res) => {
    await readBody(req);
    res.statusCode = req.url.startsWith("/gone") ? 410 : req.url.startsWith("/fail") ? 500 : 204;
    res.end();
  });
  ui = await start("settings");
  ({ page, api, shot } = ui);
});

after(async () => {
  await ui?.stop();
  receiver?.close();
});

const row = (name) => page.locator("[data-workspace]", { hasText: name });

test("workspaces: the empty state, create and rename", async () => {
  await ui.signIn("#/workspaces");
  await page.getByRole("heading", { name: "No workspaces yet" }).waitFor();
  await page.getByRole("button", { name: "Create workspace" }).click();
  await page.locator("[data-field-wrap=name] .field-error", { hasText: "name is required" }).waitFor();
  await page.getByLabel("New workspace").fill("Spring campaign");
  await page.getByRole("button", { name: "Create workspace" }).click();
  await row("Spring campaign").waitFor();
  await page.getByLabel("New workspace").fill("Autumn campaign");
  await page.getByRole("button", { name: "Create workspace" }).click();
  await row("Autumn campaign").waitFor();
  assert.equal(await page.locator("#workspace-switcher option").count(), 3, "the switcher knows them at once");

  await row("Autumn campaign").getByRole("button", { name: "Rename" }).click();
  await page.getByLabel('Rename "Autumn campaign"').fill("Winter campaign");
  await page.getByRole("button", { name: "Save" }).click();
  await row("Winter campaign").waitFor();
  assert.deepEqual((await api("workspaces-list")).workspaces.map((w) => w.name), ["Spring campaign", "Winter campaign"]);
});

test("saving an integration available in no workspace asks first", async () => {
  await page.getByRole("link", { name: "Integrations", exact: true }).click();
  await page.getByRole("button", { name: "+ Add New Integration" }).first().click();
  await page.getByRole("button", { name: /HubSpot/ }).click();
  await page.getByLabel("Integration Name").fill("Spring CRM");
  await page.getByLabel("API Key / Access Token").fill("pat-na1-ui");
  for (const name of ["Spring campaign", "Winter campaign"]) await page.locator("label.switch", { hasText: name }).getByRole("switch").uncheck();
  await page.getByRole("button", { name: "Save Changes" }).click();
  const dialog = page.getByRole("dialog", { name: "Available in no workspace" });
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Choose workspaces", "going back is the default");
  await shot("no-workspace-confirmation");
  await page.keyboard.press("Enter");
  await dialog.waitFor({ state: "detached" });
  assert.equal((await api("integrations-list")).integrations.length, 0, "nothing saved");
  await page.locator("label.switch", { hasText: "Spring campaign" }).getByRole("switch").check();
  await page.getByRole("button", { name: "Save Changes" }).click();
  await page.locator("[data-integration]", { hasText: "Spring CRM" }).waitFor();
  const [saved] = (await api("integrations-list")).integrations;
  assert.equal(saved.workspaces.length, 1);
});

test("deleting a workspace says what chose it and what would be left in none", async () => {
  const spring = (await api("workspaces-list")).workspaces.find((w) => w.name === "Spring campaign");
  await api("destinations-create", { name: "Everywhere", url: `${receiverUrl}/d` });
  await page.getByRole("link", { name: "Workspaces" }).click();
  await row("Spring campaign").getByText("Chosen by 1 integration").waitFor();
  assert.match(await row("Winter campaign").textContent(), /Not chosen by any integration, mailer or destination · 1 destination available in every workspace/);
  await shot("workspaces");
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok((await overflow(page)) <= 0);
  await shot("workspaces-phone");
  await page.setViewportSize({ width: 1280, height: 900 });

  await row("Spring campaign").getByRole("button", { name: "Delete" }).click();
  const dialog = page.getByRole("dialog", { name: "Delete workspace" });
  assert.deepEqual(await dialog.locator("[data-role=uses] li").allTextContents(), ["Spring CRM (integration) — then available in no workspace"]);
  await dialog.getByText("1 item would receive events from no workspace until you choose others.").waitFor();
  await shot("workspace-delete-confirmation");
  await dialog.getByRole("button", { name: "Delete" }).click();
  await row("Spring campaign").waitFor({ state: "detached" });
  assert.ok(!(await api("workspaces-list")).workspaces.some((w) => w.id === spring.id));
});

test("edit a webhook endpoint: URL, description, events and rate limit", async () => {
  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.getByRole("heading", { name: "No webhook endpoints yet" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Add Endpoint" }).count(), 2, "top-right and centred");
  await page.getByRole("button", { name: "Add Endpoint" }).first().click();
  await page.getByLabel("Endpoint URL").fill(`${receiverUrl}/fail`);
  await page.getByLabel("contact.created").check();
  await page.getByRole("button", { name: "Create endpoint" }).click();
  await page.getByRole("dialog", { name: "Signing secret" }).getByRole("button", { name: "Done" }).click();
  const endpoint = page.locator("[data-endpoint]");
  await endpoint.waitFor();

  await endpoint.getByRole("button", { name: "Edit" }).click();
  const dialog = page.getByRole("dialog", { name: "Edit Endpoint" });
  await dialog.getByText("Healthy: no failed attempt since the last success.").waitFor();
  await shot("webhook-edit");
  assert.equal(await dialog.getByLabel("Endpoint URL").inputValue(), `${receiverUrl}/fail`);
  assert.ok(await dialog.getByLabel("contact.created").isChecked());
  await dialog.getByLabel("Description").fill("Order system");
  await dialog.getByLabel("contact.updated").check();
  await dialog.getByLabel("Rate limit (requests per second)").fill("0");
  await dialog.getByRole("button", { name: "Save Changes" }).click();
  await dialog.locator("[data-field-wrap=rate_limit] .field-error").filter({ hasText: /rate_limit/ }).waitFor();
  await dialog.getByLabel("Rate limit (requests per second)").fill("20");
  await dialog.getByRole("button", { name: "Save Changes" }).click();
  await dialog.waitFor({ state: "detached" });
  await endpoint.getByText("Order system · contact.created, contact.updated · at most 20/s", { exact: false }).waitFor();
  const [saved] = (await api("webhooks-list")).endpoints;
  assert.deepEqual([saved.description, saved.events, saved.rate_limit], ["Order system", ["contact.created", "contact.updated"], 20]);
});

test("an endpoint's failure streak shows; one switched off shows why and is re-enabled", async () => {
  await api("events-send", { type: "contact.created", data: { email: "jane@example.com" } });
  const [endpoint] = (await api("webhooks-list")).endpoints;
  await until("the delivery to fail", async () => (await api("deliveries-list", { target_id: endpoint.id })).deliveries[0]?.status === "failed");
  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.locator("[data-endpoint] [data-role=health]", { hasText: /Failing since .*: 3 failed attempts without a success\./ }).waitFor();

  // A 410 Gone switches the endpoint off at once, saying why.
  await api("webhooks-update", { id: endpoint.id, url: `${receiverUrl}/gone` });
  await api("events-send", { type: "contact.created", data: { email: "joe@example.com" } });
  await until("the endpoint to be switched off", async () => (await api("webhooks-list")).endpoints[0].is_active === false);
  await page.getByRole("link", { name: "Webhooks" }).click();
  const health = page.locator("[data-endpoint] [data-role=health]");
  await health.getByText("Switched off:").waitFor();
  assert.match(await health.textContent(), /410/);
  await shot("webhooks-switched-off");
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok((await overflow(page)) <= 0);
  await shot("webhooks-switched-off-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
  await health.getByRole("button", { name: "Re-enable" }).click();
  await until("the endpoint to be enabled", async () => (await api("webhooks-list")).endpoints[0].is_active === true);
  await page.locator("[data-endpoint] label.switch", { hasText: "Enabled" }).waitFor();
  assert.equal(await page.locator("[data-endpoint] [data-role=health]", { hasText: "Switched off" }).count(), 0);
  const { health: after } = await api("webhooks-stats", { id: endpoint.id });
  assert.equal(after.disabled_reason, null);
});
