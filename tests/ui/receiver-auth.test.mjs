// The Authentication section of the webhook endpoint, destination and Custom API forms (issue
// 18): headers with write-only secrets kept when left empty, OAuth 2.0 and client certificates
// shown when ticked, and the server's refusals next to the field they are about.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { listen, overflow, readBody, start, until } from "./harness.mjs";

let ui, page, api, shot;
let receiver, receiverUrl;
const received = [];

before(async () => {
  [receiver, receiverUrl] = await listen(async (req, res) => {
    await readBody(req);
    received.push(req.headers);
    res.statusCode = 204;
    res.end();
  });
  ui = await start("receiver-auth");
  ({ page, api, shot } = ui);
});

after(async () => {
  await ui?.stop();
  receiver?.close();
});

const SECRET = "k-0123456789abcdef";

/** Pictures the page at 1280 px, then at 390 px (where nothing may scroll sideways); `show`
 * brings what matters into view first. */
async function shots(name, show = async () => {}) {
  await show();
  await shot(name);
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok((await overflow(page)) <= 0);
  await show();
  await shot(`${name}-phone`);
  await page.setViewportSize({ width: 1280, height: 900 });
}

test("an endpoint's headers: a secret one is stored, shown only by its hint, and kept when left empty", async () => {
  await ui.signIn("#/webhooks");
  await page.getByRole("button", { name: "Add Endpoint" }).first().click();
  const dialog = page.getByRole("dialog", { name: "Add Endpoint" });
  await dialog.getByLabel("Endpoint URL").fill(`${receiverUrl}/hook`);
  await dialog.getByLabel("contact.created").check();
  await dialog.getByRole("button", { name: "+ Add header" }).click();
  await dialog.getByLabel("Header name").nth(0).fill("X-Tenant");
  await dialog.getByLabel("Header value").nth(0).fill("acme");
  await dialog.getByRole("button", { name: "+ Add header" }).click();
  await dialog.getByLabel("Header name").nth(1).fill("X-Api-Key");
  await dialog.getByLabel("Secret").nth(1).check();
  await dialog.getByLabel("Header value").nth(1).fill(SECRET);
  assert.equal(await dialog.getByLabel("Header value").nth(1).getAttribute("type"), "password");

  // A certificate that does not read is refused next to its field; nothing is created.
  await dialog.getByLabel("Client certificate (mutual TLS)").check();
  await dialog.getByLabel("Certificate (PEM)").fill("not a certificate");
  await dialog.getByLabel("Private key (PEM)").fill("not a key");
  await dialog.getByRole("button", { name: "Create endpoint" }).click();
  const certError = dialog.locator('[data-field-wrap="client_certificate.certificate_pem"] .field-error');
  await certError.filter({ hasText: "holds no certificate" }).waitFor();
  assert.equal(await dialog.getByLabel("Certificate (PEM)").getAttribute("aria-invalid"), "true");
  await shots("receiver-auth-endpoint-error");
  assert.equal((await api("webhooks-list")).endpoints.length, 0);

  await dialog.getByLabel("Client certificate (mutual TLS)").uncheck();
  await dialog.getByRole("button", { name: "Create endpoint" }).click();
  await page.getByRole("dialog", { name: "Signing secret" }).getByRole("button", { name: "Done" }).click();
  const [created] = (await api("webhooks-list")).endpoints;
  assert.deepEqual(created.receiver_auth.headers.map((h) => [h.name, h.value, h.value_hint]), [["X-Tenant", "acme", null], ["X-Api-Key", null, "k-…"]]);

  // Editing: the stored secret shows as a hint, and saving with it empty keeps it.
  await page.locator("[data-endpoint]").getByRole("button", { name: "Edit" }).click();
  const edit = page.getByRole("dialog", { name: "Edit Endpoint" });
  const stored = edit.getByLabel("Header value").nth(1);
  assert.equal(await stored.inputValue(), "");
  assert.match(await stored.getAttribute("placeholder"), /^Stored \(k-…\)$/);
  await edit.getByLabel("OAuth 2.0 client credentials").check();
  await edit.getByLabel("Token URL").waitFor();
  await shots("receiver-auth-endpoint-edit", () => edit.getByLabel("Token URL").scrollIntoViewIfNeeded());
  await edit.getByLabel("OAuth 2.0 client credentials").uncheck();
  await edit.getByLabel("Header value").nth(0).fill("globex");
  assert.equal(await edit.getByLabel("Send trace context").isChecked(), false);
  await edit.getByLabel("Send trace context").check();
  await edit.getByRole("button", { name: "Save Changes" }).click();
  await edit.waitFor({ state: "detached" });
  assert.equal((await api("webhooks-get", { id: created.id })).endpoint.propagate_trace, true);

  await api("events-send", { type: "contact.created", data: { n: 1 } });
  await until("the delivery", () => received.length === 1);
  assert.equal(received[0]["x-tenant"], "globex");
  assert.equal(received[0]["x-api-key"], SECRET, "the stored secret was kept");
});

test("a destination's OAuth 2.0 client secret is required, and the error sits next to it", async () => {
  await page.getByRole("link", { name: "Query Destinations" }).click();
  await page.getByRole("button", { name: "Add Destination" }).first().click();
  await page.getByLabel("Name").fill("CRM");
  await page.getByLabel("Base URL").fill(`${receiverUrl}/records`);
  await page.getByLabel("OAuth 2.0 client credentials").check();
  await page.getByLabel("Token URL").fill(`${receiverUrl}/token`);
  await page.getByLabel("Client ID").fill("switchyard");
  await page.getByRole("button", { name: "Save Changes" }).click();
  await page.locator('[data-field-wrap="oauth2.client_secret"] .field-error').filter({ hasText: "client_secret is required" }).waitFor();
  assert.equal(await page.getByLabel("Client secret").getAttribute("aria-invalid"), "true");
  await shots("receiver-auth-destination-error");
  await page.getByLabel("Client secret").fill("s3cret");
  await page.getByLabel("Send trace context").check();
  await page.getByRole("button", { name: "Save Changes" }).click();
  await page.locator("[data-destination]").waitFor();
  const [destination] = (await api("destinations-list")).destinations;
  assert.equal(destination.receiver_auth.oauth2.client_id, "switchyard");
  assert.equal(destination.receiver_auth.oauth2.client_secret_hint, "…");
  assert.equal(destination.propagate_trace, true);
});

test("a Custom API's header that Switchyard sets itself is refused on its row", async () => {
  await page.getByRole("link", { name: "Integrations", exact: true }).click();
  await page.getByRole("button", { name: "+ Add New Integration" }).first().click();
  await page.getByRole("button", { name: /Custom API/ }).click();
  await page.getByLabel("API Endpoint").fill(`${receiverUrl}/api`);
  await page.getByRole("button", { name: "+ Add header" }).click();
  await page.getByLabel("Header name", { exact: true }).fill("Content-Type");
  await page.getByLabel("Header value").fill("text/plain");
  await page.getByRole("button", { name: "Save Changes" }).click();
  const row = page.locator(".header-row.invalid");
  await row.locator(".row-error", { hasText: "sets itself" }).waitFor();
  assert.equal(await page.getByLabel("Header name", { exact: true }).getAttribute("aria-invalid"), "true");
  await shots("receiver-auth-integration-error");
  assert.equal((await api("integrations-list")).integrations.length, 0);
});
