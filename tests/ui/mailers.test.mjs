// Mailer rules and Send Test Email from the form as typed (seed 001: "after entering your
// credentials, click Send Test Email", then save): the test runs before anything is saved, the
// mailer saved with the tested settings is verified, and its rules send e-mails on events.
// A local fake stands in for SendGrid.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { listen, overflow, readBody, start, until } from "./harness.mjs";

const GOOD_KEY = "SG.good-key-0123456789";
let ui, page, api, shot;
let sendgrid, sendgridUrl;
const mails = [];

before(async () => {
  [sendgrid, sendgridUrl] = await listen(async (req, res) => {
    const body = await readBody(req);
    const good = req.headers.authorization === `Bearer ${GOOD_KEY}`;
    if (good) mails.push(JSON.parse(body));
    res.statusCode = good ? 202 : 401;
    res.setHeader("content-type", "application/json");
    res.end(good ? "" : JSON.stringify({ errors: [{ message: "The provided authorization grant is invalid" }] }));
  });
  ui = await start("mailers", ["--sendgrid-base-url", sendgridUrl]);
  ({ page, api, shot } = ui);
});

after(async () => {
  await ui?.stop();
  sendgrid?.close();
});

const rule = (n) => page.locator("[data-rule]").nth(n);

test("Send Test Email from the unsaved form; the mailer saved after it is verified", async () => {
  await ui.signIn("#/mailers");
  await page.getByRole("button", { name: "Add Mailer Integration" }).first().click();
  await page.getByLabel("Provider").selectOption("sendgrid");
  await page.getByLabel("Integration Name").fill("Prize mails");
  await page.getByLabel("Sender Email").fill("noreply@example.com");
  await page.getByLabel("API Key").fill("SG.bad");
  await page.getByLabel("Send a test e-mail to").fill("admin@example.com");
  await page.getByRole("button", { name: "Send Test Email" }).click();
  await page.getByText(/HTTP 401/).waitFor();
  assert.ok(await page.getByText("Unverified — cannot send until a test e-mail succeeds").isVisible());

  await page.getByLabel("API Key").fill(GOOD_KEY);
  await page.getByRole("button", { name: "Send Test Email" }).click();
  await page.getByText("Test email sent successfully").waitFor();
  await page.getByText("Test passed: Save Changes to keep these settings verified").waitFor();
  assert.equal(mails.length, 1, "a real test e-mail went out");
  assert.equal((await api("mailers-list")).mailers.length, 0, "testing saved nothing");
  await shot("mailer-tested-unsaved");

  await page.getByRole("button", { name: "Save Changes" }).click();
  await page.getByText("Verified: ready to send").waitFor();
  const [saved] = (await api("mailers-list")).mailers;
  assert.equal(saved.verified, true, "saved verified with the settings tested");
});

test("rules: which event sends which template to which field; errors marked on their rule", async () => {
  await page.getByText("No rules: this mailer sends only the e-mails your application asks for through the API (mailers-send).").waitFor();
  await page.getByRole("button", { name: "+ Add Rule" }).click();
  await page.getByRole("button", { name: "Save Changes" }).click();
  await rule(0).getByText("choose the event that sends it").waitFor();
  assert.equal(await page.getByText("Changes saved.").count(), 0, "the last save's notice goes when another save is asked for");
  await rule(0).getByLabel("When this event arrives").selectOption("participant.completed");
  assert.deepEqual(await rule(0).locator("optgroup").evaluateAll((groups) => groups.map((g) => g.label)),
    ["Your events", "Operational events"], "operational events apart");
  await page.getByRole("button", { name: "Save Changes" }).click();
  await rule(0).getByText("template is empty").waitFor();
  assert.equal(await rule(0).evaluate((el) => el.classList.contains("invalid")), true, "the rule is marked");
  assert.equal(await page.evaluate(() => document.activeElement?.placeholder), "d-…", "focus on the Template ID");
  await shot("mailer-rule-error");

  await rule(0).getByLabel("Template ID").fill("d-prize");
  await page.getByRole("button", { name: "+ Add Rule" }).click();
  await rule(1).getByLabel("When this event arrives").selectOption("contact.created");
  await rule(1).getByLabel("Send to the address in").selectOption({ label: "Email" });
  await rule(1).getByLabel("Template", { exact: true }).selectOption("inline");
  assert.ok(await rule(1).getByLabel("Template ID").isHidden());
  await rule(1).getByLabel("Subject").fill("Welcome {{firstName}}");
  await rule(1).getByLabel("Text body").fill("Hello {{firstName}}, welcome aboard.");
  await page.getByRole("button", { name: "Save Changes" }).click();
  // The form showed "Verified" before saving too: wait for what the save stores, and for the form
  // drawn again from it (its "Changes saved." went when the first save of this test was asked for).
  const mailer = await until("the rules to be saved", async () => (await api("mailers-list")).mailers.find((m) => m.rules.length === 2));
  await page.getByRole("status").getByText("Changes saved.").waitFor();
  await page.getByText("Verified: ready to send").waitFor();
  assert.deepEqual(mailer.rules, [
    { event_type: "participant.completed", template: "d-prize", recipient_field: "email" },
    { event_type: "contact.created", template: { subject: "Welcome {{firstName}}", text: "Hello {{firstName}}, welcome aboard.", html: null }, recipient_field: "email" },
  ]);
  assert.equal(mailer.verified, true, "rules are not provider settings");
  await shot("mailer-rules");

  // The rules send: an event of each type reaches SendGrid with its template.
  await api("events-send", { type: "participant.completed", data: { email: "jane@example.com", firstName: "Jane" } });
  await api("events-send", { type: "contact.created", data: { email: "max@example.com", firstName: "Max" } });
  await until("both rule e-mails", () => mails.length === 3);
  const prize = mails.find((m) => m.template_id === "d-prize");
  assert.deepEqual(prize.personalizations[0].to, [{ email: "jane@example.com" }]);
  const welcome = mails.find((m) => m.subject === "Welcome Max");
  assert.deepEqual(welcome.personalizations[0].to, [{ email: "max@example.com" }]);

  await page.getByRole("link", { name: "Mailer Integrations" }).click();
  await page.locator("[data-mailer] [data-role=rules]", { hasText: "Sends on participant.completed, contact.created" }).waitFor();
  await shot("mailers-with-rules");
});

test("the rules and the test read on a phone", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.locator("[data-mailer]").getByRole("button", { name: "Edit" }).click();
  await rule(1).waitFor();
  assert.ok((await overflow(page)) <= 0, "no sideways scrolling");
  await shot("mailer-rules-phone");
  await page.getByRole("link", { name: "Mailer Integrations" }).click();
  await page.locator("[data-mailer]").waitFor();
  assert.ok((await overflow(page)) <= 0);
  await shot("mailers-with-rules-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
});
