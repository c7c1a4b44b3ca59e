// Webhook endpoints (seed 003): events, the signing secret shown once, rotation.

import { api } from "../lib/api.js";
import { clearErrors, field, formError, h, pageHead, showFormError, textInput, time } from "../lib/dom.js";
import { closeModal, confirmThen, openModal } from "../lib/modal.js";
import { eventChecks } from "../lib/parts.js";
import { render } from "../lib/router.js";
import { eventTypes } from "../lib/session.js";

export async function webhooksView() {
  await eventTypes();
  const endpoints = (await api("webhooks-list")).endpoints;
  const page = h("section", {}, pageHead("Webhooks", h("button", { type: "button", class: "primary", onclick: showEndpointForm }, "Add Endpoint")));
  if (!endpoints.length) page.append(h("div", { class: "card placeholder" }, h("h2", {}, "No webhook endpoints yet"),
    h("p", {}, "Receive signed events at your own HTTPS endpoint.")));
  for (const endpoint of endpoints) {
    const toggle = h("input", { type: "checkbox", role: "switch", checked: endpoint.is_active, "aria-label": `Enabled: ${endpoint.url}` });
    toggle.addEventListener("change", async () => {
      await api("webhooks-update", { id: endpoint.id, is_active: toggle.checked });
      render();
    });
    page.append(h("div", { class: "card list-row", "data-endpoint": endpoint.id },
      h("div", { class: "grow" }, h("strong", {}, endpoint.url),
        h("div", { class: "meta" }, `${endpoint.description || "No description"} · ${endpoint.events.join(", ")} · secret ${endpoint.secret_prefix}…`)),
      h("label", { class: "switch" }, endpoint.is_active ? "Enabled" : "Disabled", toggle),
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: async () => {
          const rotated = await api("webhooks-rotate-secret", { id: endpoint.id });
          showSecret("New signing secret", rotated.signing_secret, `The previous secret keeps signing until ${time(rotated.previous_secret_expires_at)}.`);
        } }, "Rotate secret"),
        h("button", { type: "button", class: "danger", onclick: () => confirmThen(`Delete the endpoint ${endpoint.url}?`, async () => {
          await api("webhooks-delete", { id: endpoint.id });
          render();
        }) }, "Delete"))));
  }
  return page;
}

function showEndpointForm() {
  const url = h("input", { type: "url", placeholder: "https://your-app.com/webhooks" });
  const description = textInput("");
  const events = eventChecks([], "Events to send");
  const form = h("form", { class: "panel", novalidate: true }, formError(),
    field("Endpoint URL", url, { name: "url", hint: "Must be HTTPS." }),
    field("Description", description, { name: "description" }),
    events.el,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary" }, "Create endpoint"),
      h("button", { type: "button", onclick: closeModal }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      const created = await api("webhooks-create", { url: url.value.trim(), description: description.value, events: events.value() });
      showSecret("Signing secret", created.signing_secret, "Store it now: it is shown only this once.");
    } catch (error) {
      showFormError(form, error, { "webhooks.url_required": "url", "webhooks.invalid_url": "url", "webhooks.invalid_request": "events" });
    }
  });
  openModal("Add Endpoint", form);
  url.focus();
}

function showSecret(title, secret, note) {
  const copied = h("span", { role: "status", "aria-live": "polite", class: "meta" });
  const copy = h("button", { type: "button", onclick: async () => {
    try {
      await navigator.clipboard.writeText(secret);
      copied.textContent = "Copied.";
    } catch {
      copied.textContent = "Select the secret and copy it.";
    }
  } }, "Copy");
  openModal(title, h("div", {}, h("p", {}, note), h("div", { class: "secret-box" }, h("code", { "data-role": "secret" }, secret), copy), copied,
    h("div", { class: "form-actions" }, h("button", { type: "button", class: "primary", onclick: () => { closeModal(); render(); } }, "Done"))));
  copy.focus();
}
