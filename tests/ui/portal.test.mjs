// The embeddable portal in a real browser: a platform's page on an allowed origin frames a
// one-time link and its customer works in it, with the platform's theme; a page on another
// origin cannot frame it; a spent link says so; and a cross-site form post changes nothing.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { accessible, listen, readBody, start, until } from "./harness.mjs";

let ui, page, api, shot;
// The platform's page (an allowed origin) and another site (not allowed), each on its own port.
let host, hostOrigin, stranger, strangerOrigin;
const pages = new Map();

before(async () => {
  const serve = async (req, res) => {
    await readBody(req);
    res.setHeader("content-type", "text/html; charset=utf-8");
    res.end(pages.get(req.url) || "<!doctype html><title>nothing</title>");
  };
  [host, hostOrigin] = await listen(serve);
  [stranger, strangerOrigin] = await listen(serve);
  ui = await start("portal");
  ({ page, api, shot } = ui);
});

after(async () => {
  await ui?.stop();
  host?.close();
  stranger?.close();
});

const theme = { brand_color: "#0a7d5a", product_name: "Acme Hooks" };
const link = (body = {}) => api("portal-sessions-create", { allowed_origins: [hostOrigin], theme, ...body });
const framing = (url) => `<!doctype html><html lang="en"><head><title>Acme settings</title></head><body style="margin:0">
  <h1 style="font:600 18px system-ui;margin:12px">Acme · Webhook settings</h1>
  <iframe src="${url}" title="Webhook settings" style="width:100%;height:820px;border:0"></iframe></body></html>`;

test("the platform's page frames the portal, themed, and its customer works in it", async () => {
  const { url } = await link();
  pages.set("/settings", framing(url));
  await page.goto(`${hostOrigin}/settings`);
  const portal = page.frameLocator("iframe[title='Webhook settings']");
  await portal.getByRole("link", { name: "Webhooks" }).waitFor();
  assert.equal(await portal.locator(".brand").textContent(), "Acme Hooks", "the platform's product name");
  assert.equal(await portal.getByRole("link", { name: "Access" }).isVisible(), false, "no way to the account's tokens");
  assert.equal(await portal.getByRole("button", { name: "Sign out" }).isVisible(), false);
  // The Webhooks screen is already shown: following its link draws it again.
  await ui.redrawn(() => portal.getByRole("link", { name: "Webhooks" }).click(), page.frames()[1]);
  await portal.getByRole("heading", { name: "Webhooks" }).waitFor();
  const accent = await portal.locator("nav a[aria-current=page]").evaluate((a) => getComputedStyle(a).color);
  assert.equal(accent, "rgb(10, 125, 90)", "the platform's brand colour");
  await accessible(page.frames()[1], "the portal in its frame");
  await shot("portal-embedded");

  const dark = await link({ theme: { ...theme, mode: "dark" } });
  pages.set("/dark", framing(dark.url));
  await page.goto(`${hostOrigin}/dark`);
  const darkPortal = page.frameLocator("iframe[title='Webhook settings']");
  await darkPortal.getByRole("heading", { name: "Webhooks" }).waitFor();
  assert.equal(await darkPortal.locator("body").evaluate((b) => getComputedStyle(b).backgroundColor), "rgb(21, 25, 34)", "the dark theme");
  await accessible(page.frames()[1], "the dark portal in its frame");
  await shot("portal-dark");
});

test("a page on another origin cannot frame it", async () => {
  const { url } = await link();
  pages.set("/elsewhere", framing(url));
  await page.goto(`${strangerOrigin}/elsewhere`);
  const child = await until("the frame has loaded", async () => page.frames().find((f) => f !== page.mainFrame() && f.url() !== "about:blank"));
  assert.match(child.url(), /^chrome-error:/, "the browser refused to show it");
  // Nothing was spent: the link still opens where it may.
  pages.set("/settings", framing(url));
  await page.goto(`${hostOrigin}/settings`);
  await page.frameLocator("iframe[title='Webhook settings']").getByRole("link", { name: "Webhooks" }).waitFor();
});

test("a spent link says so, and a cross-site form post changes nothing", async () => {
  const { url } = await link();
  await page.goto(url);
  await page.getByRole("link", { name: "Webhooks" }).waitFor();
  assert.doesNotMatch(page.url(), /code=/, "the code leaves the address at once");
  // Opened again (another tab, or someone it was forwarded to): spent.
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(url);
  await page.getByRole("heading", { name: "This link has expired" }).waitFor();
  await shot("portal-link-spent");

  const before = (await api("webhooks-list")).endpoints.length;
  pages.set("/attack", `<!doctype html><html lang="en"><head><title>x</title></head><body>
    <form method="post" action="${ui.base}/api/webhooks-create" enctype="text/plain">
      <input name='{"url":"https://evil.example/hook","events":["contact.created"],"x":"' value='"}'>
    </form><script>document.forms[0].submit()</script></body></html>`);
  const answer = page.waitForResponse((r) => r.url() === `${ui.base}/api/webhooks-create`);
  await page.goto(`${strangerOrigin}/attack`);
  assert.equal((await answer).status(), 401, "without the session's bearer token the call is refused");
  assert.equal((await api("webhooks-list")).endpoints.length, before, "nothing was created");
});

test("a portal confined to a workspace shows and saves only what is in it", async () => {
  const { workspace: teamA } = await api("workspaces-create", { name: "Team A" });
  const { workspace: teamB } = await api("workspaces-create", { name: "Team B" });
  await api("webhooks-create", { url: "https://b.example.com/hook", events: ["contact.created"], workspaces: [teamB.id], all_workspaces: false });
  const { url } = await link({ workspace_id: teamA.id });
  await page.goto(url);
  await page.getByRole("heading", { name: "No webhook endpoints yet" }).waitFor();
  assert.equal(await page.locator(".workspace-switcher").isVisible(), false, "no other workspace to switch to");
  assert.equal(await page.getByRole("link", { name: "Workspaces" }).isVisible(), false, "none to manage");
  await page.getByRole("button", { name: "Add Endpoint" }).first().click();
  const dialog = page.getByRole("dialog", { name: "Add Endpoint" });
  await dialog.getByLabel("Endpoint URL").fill("https://a.example.com/hook");
  await dialog.getByRole("checkbox", { name: "contact.created" }).check();
  assert.equal(await dialog.locator("[data-field=workspaces] .meta").textContent(), "Team A only.");
  await accessible(page, "the confined portal's endpoint form");
  await shot("portal-confined-form");
  await dialog.getByRole("button", { name: "Create endpoint" }).click();
  await page.getByRole("dialog", { name: "Signing secret" }).getByRole("button", { name: "Done" }).click();
  await ui.settled();
  const saved = (await api("webhooks-list")).endpoints.find((e) => e.url === "https://a.example.com/hook");
  assert.deepEqual([saved.workspaces, saved.all_workspaces], [[teamA.id], false], "saved in the session's workspace");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByText("https://a.example.com/hook").first().waitFor();
  assert.equal(await page.getByText("https://b.example.com/hook").count(), 0, "Team B's endpoint is not shown");
  await shot("portal-confined-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
});

test("the demo page at /demo/portal frames the portal for a token's account", async () => {
  await page.goto(`${ui.base}/demo/portal`);
  await page.getByLabel("API token (full access)").fill(ui.token);
  await page.getByRole("button", { name: "Open the portal" }).click();
  const portal = page.frameLocator("iframe[title='Webhook settings']");
  await portal.getByRole("link", { name: "Webhooks" }).waitFor();
  assert.equal(await portal.locator(".brand").textContent(), "Acme CRM");
  await shot("portal-demo");
});
