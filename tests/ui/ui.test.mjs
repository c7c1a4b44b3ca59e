// Browser tests of the web UI: the real `switchyard` binary on 127.0.0.1, driven through headless
// Chromium (Debian's /usr/bin/chromium) with playwright-core. Local fakes stand in for a
// receiver and SendGrid. Screenshots of each main screen go to tests/ui/artifacts/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { listen, readBody, start, until } from "./harness.mjs";

let ui, base, token, page, api, shot;
let receiver, receiverUrl;
let receiverFails = true;
const received = [];
let sendgrid, sendgridUrl;

before(async () => {
  [receiver, receiverUrl] = await listen(async (req, res) => {
    const body = await readBody(req);
    received.push({ url: req.url, headers: req.headers, body });
    res.statusCode = req.url.startsWith("/fail") && receiverFails ? 500 : 204;
    res.end();
  });
  [sendgrid, sendgridUrl] = await listen(async (req, res) => {
    await readBody(req);
    const good = req.headers.authorization === "Bearer SG.good-key-0123456789" && req.url === "/v3/mail/send";
    res.statusCode = good ? 202 : 401;
    res.setHeader("content-type", "application/json");
    res.end(good ? "" : JSON.stringify({ errors: [{ message: "The provided authorization grant is invalid, expired, or revoked", field: null, help: null }] }));
  });
  ui = await start("ui", ["--sendgrid-base-url", sendgridUrl]);
  ({ base, token, page, api, shot } = ui);
  await api("workspaces-create", { name: "Spring campaign" });
  await api("workspaces-create", { name: "Autumn campaign" });
});

after(async () => {
  await ui?.stop();
  receiver?.close();
  sendgrid?.close();
});

test("sign in and see the empty integrations placeholder", async () => {
  await page.goto(base);
  await page.getByLabel("API token").fill("sy_wrong");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("That token was not accepted.").waitFor();
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "No webhook integrations yet" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "+ Add New Integration" }).count(), 2, "top-right and centred");
  assert.equal(await page.locator("#workspace-switcher option").count(), 3);
  await shot("integrations-empty");
});

test("the selector filters by category and closes with Escape", async () => {
  await page.getByRole("button", { name: "+ Add New Integration" }).first().click();
  const modal = page.getByRole("dialog", { name: "Select Webhook Integration" });
  await modal.waitFor();
  assert.equal(await modal.getByLabel("Category").inputValue(), "All");
  assert.deepEqual(await modal.locator(".tile strong").allTextContents(), ["Custom API", "HubSpot", "Salesforce"]);
  await modal.getByLabel("Category").selectOption("CRM & Marketing");
  assert.deepEqual(await modal.locator(".tile strong").allTextContents(), ["HubSpot", "Salesforce"]);
  await shot("integration-selector");
  await page.keyboard.press("Escape");
  await modal.waitFor({ state: "detached" });
});

test("create a Custom API integration with mapping, workspaces and Verify Connection", async () => {
  await page.getByRole("button", { name: "+ Add New Integration" }).first().click();
  await page.getByRole("button", { name: /Custom API/ }).click();
  assert.equal(await page.getByLabel("Integration Name").inputValue(), "Custom API Integration");
  assert.equal(await page.getByLabel("Custom Header Name").isVisible(), false, "only for Custom Header");
  await page.getByLabel("API Key Type").selectOption("custom_header");
  await page.getByLabel("Custom Header Name").fill("X-Custom-Auth");
  await page.getByLabel("API Key", { exact: true }).fill("key-123");
  await page.getByLabel("HTTP Method").selectOption("PUT");
  await page.getByLabel("Integration Name").fill("Lead warehouse");

  // Save without an endpoint: the error shows next to the field and nothing typed is lost.
  await page.getByRole("button", { name: "Save Changes" }).click();
  await page.locator("[data-field-wrap=endpoint] .field-error", { hasText: "URL is required" }).waitFor();
  assert.equal(await page.getByLabel("Integration Name").inputValue(), "Lead warehouse");
  assert.equal(await page.getByLabel("API Endpoint").getAttribute("aria-invalid"), "true");

  await page.getByLabel("API Endpoint").fill(`${receiverUrl}/custom`);
  await page.getByRole("button", { name: "Verify Connection" }).click();
  await page.getByText(/Connected: the endpoint answered HTTP 204/).waitFor();
  const test = received.find((r) => r.url === "/custom");
  assert.equal(test.headers["x-switchyard-test"], "true");
  assert.equal(test.headers["x-custom-auth"], "key-123");

  for (let i = 0; i < 3; i++) await page.getByRole("button", { name: "+ Add Field" }).click();
  const outputs = page.getByLabel("Webhook field");
  const sources = page.getByLabel("Source field");
  await outputs.nth(0).fill("mail");
  await sources.nth(0).selectOption({ label: "Email" });
  await outputs.nth(1).fill("unused");
  await outputs.nth(2).fill("zip");
  await sources.nth(2).selectOption({ label: "Postal Code" });
  await page.getByRole("button", { name: "Remove mapping row" }).nth(1).click();
  assert.equal(await outputs.count(), 2);
  await page.getByRole("switch").filter({ hasText: "" }).first();
  await page.locator("label.switch", { hasText: "Autumn campaign" }).getByRole("switch").uncheck();
  await shot("integration-form-custom-api");
  await page.getByRole("button", { name: "Save Changes" }).click();
  await page.locator("[data-integration]", { hasText: "Lead warehouse" }).waitFor();

  const [saved] = (await api("integrations-list")).integrations;
  assert.deepEqual(saved.config, { endpoint: `${receiverUrl}/custom`, method: "PUT", auth_type: "custom_header", custom_header_name: "X-Custom-Auth" });
  assert.deepEqual(saved.mapping, [{ webhook_field: "mail", source_field: "email" }, { webhook_field: "zip", source_field: "cp" }]);
  assert.equal(saved.all_workspaces, false);
  assert.equal(saved.workspaces.length, 1);
});

test("create HubSpot and Salesforce integrations; Salesforce warns until Last Name and Email are mapped", async () => {
  await page.getByRole("button", { name: "+ Add New Integration" }).first().click();
  await page.getByRole("button", { name: /HubSpot/ }).click();
  assert.equal(await page.getByLabel("Integration Name").inputValue(), "HubSpot Integration");
  await page.getByLabel("API Key / Access Token").fill("pat-na1-ui-test");
  await page.getByRole("button", { name: "+ Add Field" }).click();
  await page.getByLabel("Webhook field").fill("email");
  await page.getByLabel("Source field").selectOption({ label: "Email" });
  await page.getByRole("button", { name: "Save Changes" }).click();
  await page.locator("[data-integration]", { hasText: "HubSpot Integration" }).waitFor();

  await page.getByRole("button", { name: "+ Add New Integration" }).first().click();
  await page.getByRole("button", { name: /Salesforce/ }).click();
  await page.getByLabel("Salesforce Domain").fill("acme.my.salesforce.com");
  await page.getByLabel("Consumer Key").fill("3MVG9-ui");
  await page.getByLabel("Consumer Secret").fill("sf-secret");
  await page.getByLabel("External ID Field Name").fill("Email_External_Id__c");
  await page.getByLabel("External ID Source").selectOption({ label: "Email" });
  const warning = page.locator("[data-role=salesforce-warning]");
  assert.ok(await warning.isVisible(), "warns with no mapping");
  await page.getByRole("button", { name: "+ Add Field" }).click();
  await page.getByLabel("Webhook field").nth(0).fill("LastName");
  await page.getByLabel("Source field").nth(0).selectOption({ label: "Last Name" });
  assert.ok(await warning.isVisible(), "still warns without Email");
  await page.getByRole("button", { name: "+ Add Field" }).click();
  await page.getByLabel("Webhook field").nth(1).fill("Email");
  await page.getByLabel("Source field").nth(1).selectOption({ label: "Email" });
  assert.equal(await warning.isVisible(), false);
  await shot("integration-form-salesforce");
  await page.getByRole("button", { name: "Save Changes" }).click();
  await page.locator("[data-integration]", { hasText: "Salesforce Integration" }).waitFor();
  assert.equal(await page.locator("[data-integration]").count(), 3);
  await shot("integrations-list");
});

test("edit an integration and delete one with confirmation", async () => {
  await page.locator("[data-integration]", { hasText: "Lead warehouse" }).getByRole("button", { name: "Edit" }).click();
  assert.match(await page.getByLabel("API Key", { exact: true }).getAttribute("placeholder"), /Stored \(…\)/);
  await page.getByLabel("Integration Name").fill("Lead warehouse v2");
  await page.getByRole("button", { name: "Save Changes" }).click();
  await page.locator("[data-integration]", { hasText: "Lead warehouse v2" }).waitFor();
  const custom = (await api("integrations-list")).integrations.find((i) => i.kind === "custom_api");
  assert.equal(custom.secret_hint, "…", "the stored key was kept");

  await page.locator("[data-integration]", { hasText: "HubSpot Integration" }).getByRole("button", { name: "Delete" }).click();
  await page.getByRole("dialog", { name: "Please confirm" }).getByRole("button", { name: "Delete" }).click();
  await page.locator("[data-integration]", { hasText: "HubSpot Integration" }).waitFor({ state: "detached" });
  assert.equal((await api("integrations-list")).integrations.length, 2);
});

test("a mailer whose test fails stays unusable; after a passing test it is verified", async () => {
  await page.getByRole("link", { name: "Mailer Integrations" }).click();
  await page.getByRole("button", { name: "Add Mailer Integration" }).first().click();
  await page.getByLabel("Provider").selectOption("sendgrid");
  assert.ok(await page.getByRole("group", { name: "Template Parameter Fields" }).isVisible());
  await page.getByLabel("Provider").selectOption("smtp");
  assert.equal(await page.getByRole("group", { name: "Template Parameter Fields" }).count(), 0, "not for SMTP");
  await page.getByLabel("Provider").selectOption("sendgrid");
  await page.getByLabel("Integration Name").fill("Prize mails");
  await page.getByLabel("Sender Name").fill("Brand");
  await page.getByLabel("Sender Email").fill("noreply@example.com");
  await page.getByLabel("BCC Email (optional)").fill("archive@example.com");
  await page.getByLabel("API Key").fill("SG.bad");
  await page.getByRole("button", { name: "+ Add Field" }).click();
  await page.getByLabel("Parameter name").fill("firstName");
  await page.getByLabel("Source field").selectOption({ label: "First Name" });
  await page.getByRole("button", { name: "Save Changes" }).click();
  // The form is drawn again from the saved mailer (the new form shows the same badge): wait for it.
  await page.getByRole("heading", { name: "Edit Mailer Integration · Prize mails" }).waitFor();
  await page.getByText("Unverified — cannot send until a test e-mail succeeds").waitFor();

  await page.getByLabel("Send a test e-mail to").fill("admin@example.com");
  await page.getByRole("button", { name: "Send Test Email" }).click();
  await page.getByText(/HTTP 401/).waitFor();
  assert.ok(await page.getByText("Unverified — cannot send until a test e-mail succeeds").isVisible());
  await shot("mailer-test-failed");

  await page.getByLabel("API Key").fill("SG.good-key-0123456789");
  await page.getByRole("button", { name: "Save Changes" }).click();
  // The form is drawn again from the saved mailer: wait for it before typing into it.
  await page.getByPlaceholder("Stored (SG…) — leave empty to keep").waitFor();
  await page.getByLabel("Send a test e-mail to").fill("admin@example.com");
  await page.getByRole("button", { name: "Send Test Email" }).click();
  await page.getByText("Test email sent successfully").waitFor();
  await page.getByText("Verified: ready to send").waitFor();
  await page.getByRole("link", { name: "Mailer Integrations" }).click();
  await page.locator("[data-mailer]", { hasText: "Prize mails" }).getByText("Verified", { exact: true }).waitFor();
  await shot("mailers-list");
});

test("a webhook endpoint's secret is shown once with a copy button", async () => {
  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.getByRole("button", { name: "Add Endpoint" }).first().click();
  await page.getByLabel("Endpoint URL").fill(`${receiverUrl}/fail`);
  await page.getByLabel("Description").fill("Flaky receiver");
  await page.getByLabel("contact.created").check();
  await page.getByRole("button", { name: "Create endpoint" }).click();
  const dialog = page.getByRole("dialog", { name: "Signing secret" });
  const secret = await dialog.locator("[data-role=secret]").textContent();
  assert.match(secret, /^whsec_/);
  assert.ok(await dialog.getByRole("button", { name: "Copy" }).isVisible());
  await shot("webhook-secret-once");
  await dialog.getByRole("button", { name: "Done" }).click();
  await ui.settled();
  await page.locator("[data-endpoint]", { hasText: "Flaky receiver" }).waitFor();
  assert.equal(await page.getByText(secret).count(), 0, "never shown again");
  await shot("webhooks-list");

  // Rotate: a new secret, shown once; the old one keeps signing for its grace period.
  const row = page.locator("[data-endpoint]", { hasText: "Flaky receiver" });
  await row.getByRole("button", { name: "Rotate secret" }).click();
  const rotated = page.getByRole("dialog", { name: "New signing secret" });
  const second = await rotated.locator("[data-role=secret]").textContent();
  assert.ok(second.startsWith("whsec_") && second !== secret);
  await rotated.getByRole("button", { name: "Done" }).click();
  await ui.settled();

  // Disable and enable again with the switch.
  await row.getByRole("switch").uncheck();
  await until("the endpoint to be disabled", async () => (await api("webhooks-list")).endpoints[0].is_active === false);
  // The list is drawn again once the browser has the answer, which may be after the API says so.
  await row.locator("label.switch", { hasText: "Disabled" }).waitFor();
  await page.locator("[data-endpoint]", { hasText: "Flaky receiver" }).getByRole("switch").check();
  await until("the endpoint to be enabled", async () => (await api("webhooks-list")).endpoints[0].is_active === true);
  await row.locator("label.switch", { hasText: "Enabled" }).waitFor();
});

test("a failed delivery is retried from the log", async () => {
  await api("events-send", { type: "contact.created", data: { first_name: "Jane" } });
  const [endpoint] = (await api("webhooks-list")).endpoints;
  await until("the delivery to fail", async () => {
    const { deliveries } = await api("deliveries-list", { target_id: endpoint.id });
    return deliveries[0]?.status === "failed";
  });
  await page.getByRole("link", { name: "Deliveries", exact: true }).click();
  await page.getByLabel("Status").selectOption("failed");
  // The unfiltered log shows this failed delivery too: wait for the filtered one to replace it.
  await ui.redrawn(() => page.getByRole("button", { name: "Filter" }).click());
  const row = page.locator("[data-delivery]").first();
  await row.getByText("failed").waitFor();
  await row.getByRole("button", { name: /^Details/ }).click();
  await page.locator("[data-attempt]").nth(2).waitFor();
  assert.deepEqual(await page.locator("[data-attempt] [data-role=code]").allTextContents(), ["500", "500", "500"]);
  await shot("deliveries-failed");

  receiverFails = false;
  await page.getByRole("button", { name: "Retry now" }).click();
  await page.locator("[data-attempt='4']", { hasText: "(manual)" }).waitFor();
  assert.equal(await page.locator("[data-attempt='4'] [data-role=code]").textContent(), "204");
  await page.keyboard.press("Escape");
  await page.getByLabel("Status").selectOption("delivered");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.locator("[data-delivery]", { hasText: "delivered" }).first().waitFor();
  await shot("deliveries-retried");
});

test("works at phone width", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole("link", { name: "Integrations", exact: true }).click();
  await page.locator("[data-integration]").first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling (${overflow}px)`);
  await shot("integrations-phone");
});
