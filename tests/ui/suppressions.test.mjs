// Suppressions and failover in the UI (issue 18): the mailer form names a fallback mailer and
// shows the event webhook URL to paste into the provider; the Suppressions screen lists what
// providers reported (here: a Brevo hard bounce posted to that URL), searches, and removes an
// address after a confirmation, down to its empty state.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { overflow, start } from "./harness.mjs";

let ui, page, api, shot;
let primary, backup;

before(async () => {
  ui = await start("suppressions");
  ({ page, api, shot } = ui);
  const mailer = (name, provider, credentials) => api("mailers-create", { provider, name, sender_email: "noreply@example.com", credentials });
  primary = (await mailer("Prize mails", "sendgrid", { api_key: "SG.key" })).mailer;
  backup = (await mailer("Backup relay", "brevo", { api_key: "xkeysib-key" })).mailer;
});

after(async () => {
  await ui?.stop();
});

test("the mailer form names a fallback mailer and shows the event webhook URL", async () => {
  await ui.signIn("#/mailers");
  await page.locator(`[data-mailer="${primary.id}"]`).getByRole("button", { name: "Edit" }).click();
  const url = page.getByLabel("Event webhook URL");
  assert.equal(await url.inputValue(), `${ui.base}${primary.inbound_path}`);
  await page.getByLabel("Fallback mailer").selectOption({ label: "Backup relay" });
  await page.getByLabel(/Webhook key/).fill("not a key");
  await page.getByRole("button", { name: "Save Changes" }).click();
  await page.getByText(/a base64 P-256 public key/).waitFor();
  await page.getByLabel(/Webhook key/).fill("");
  await shot("mailer-failover-form");
  await page.getByRole("button", { name: "Save Changes" }).click();
  await page.getByRole("status").getByText("Changes saved.").waitFor();
  await page.getByText("Unverified — cannot send until a test e-mail succeeds").waitFor();
  const saved = (await api("mailers-get", { id: primary.id })).mailer;
  assert.equal(saved.fallback_mailer_id, backup.id);
  await page.getByRole("link", { name: "Mailer Integrations" }).click();
  await page.locator(`[data-mailer="${primary.id}"] [data-role=fallback]`).getByText("Falls back to Backup relay").waitFor();

  // The fallback cannot go while it is one.
  await page.locator(`[data-mailer="${backup.id}"]`).getByRole("button", { name: "Delete" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
  await page.getByRole("alert").getByText(/is the fallback of "Prize mails"/).waitFor();
  await shot("mailer-fallback-in-use");
  await page.getByRole("button", { name: "OK" }).click();
});

test("Suppressions: reported and manual entries, search, removal with confirmation, empty state", async () => {
  const bounce = { event: "hard_bounce", email: "Jane@Example.com", id: 1, date: "2026-12-03 10:00:00", ts: 1764700000,
    "message-id": "<1@smtp-relay.mailin.fr>", subject: "You won", reason: "550 5.1.1 unknown user" };
  const posted = await fetch(`${ui.base}${backup.inbound_path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(bounce) });
  assert.equal(posted.status, 200);
  await api("suppressions-create", { address: "joe@example.org", note: "asked us to stop" });

  await page.getByRole("link", { name: "Suppressions" }).click();
  await page.locator("[data-suppression='jane@example.com']").getByText("Reported by Brevo to Backup relay", { exact: false }).waitFor();
  assert.equal(await page.locator("[data-suppression]").count(), 2);
  assert.equal(await page.locator("nav a[aria-current=page]").textContent(), "Mailer Integrations");
  await shot("suppressions-list");
  await page.setViewportSize({ width: 390, height: 844 });
  assert.equal(await overflow(page), 0, "nothing scrolls sideways on a phone");
  await shot("suppressions-list-phone");
  await page.setViewportSize({ width: 1280, height: 900 });

  await page.getByLabel("Search addresses").fill("EXAMPLE.ORG");
  await page.getByRole("button", { name: "Search" }).click();
  // Both rows were listed before the search: wait for the one it leaves out to go.
  await page.locator("[data-suppression='jane@example.com']").waitFor({ state: "detached" });
  await page.locator("[data-suppression]").first().waitFor();
  assert.deepEqual(await page.locator("[data-suppression]").evaluateAll((rows) => rows.map((r) => r.dataset.suppression)), ["joe@example.org"]);

  await page.getByLabel("Search addresses").fill("");
  await page.getByRole("button", { name: "Search" }).click();
  for (const address of ["jane@example.com", "joe@example.org"]) {
    await page.getByRole("button", { name: `Remove ${address}` }).click();
    await page.getByRole("dialog").getByText(`Remove ${address} from the suppression list?`).waitFor();
    await page.getByRole("dialog").getByRole("button", { name: "Remove" }).click();
    await page.locator(`[data-suppression='${address}']`).waitFor({ state: "detached" });
  }
  await page.getByText("No suppressed addresses").waitFor();
  assert.deepEqual((await api("suppressions-list")).suppressions, []);
  await shot("suppressions-empty");

  await page.getByLabel("Address", { exact: true }).fill("not an address");
  await page.getByRole("button", { name: "Suppress", exact: true }).click();
  await page.getByText("'not an address' is not an e-mail address").waitFor();
  await page.getByLabel("Address", { exact: true }).fill("ann@example.com");
  await page.getByRole("button", { name: "Suppress", exact: true }).click();
  await page.locator("[data-suppression='ann@example.com']").waitFor();
});
