// Webhook endpoints (seed 003): events, the signing secret shown once, rotation.

import { api } from "../lib/api.js";
import { clearErrors, field, formError, h, pageHead, showFormError, textInput, time } from "../lib/dom.js";
import { closeModal, confirmThen, openModal } from "../lib/modal.js";
import { confirmWorkspaces, deliveriesLink, eventChecks, traceToggle, workspaceToggles } from "../lib/parts.js";
import { receiverAuthEditor } from "../lib/receiver-auth.js";
import { render } from "../lib/router.js";
import { eventTypes } from "../lib/session.js";

export async function webhooksView() {
  await eventTypes();
  const endpoints = (await api("webhooks-list")).endpoints;
  // Each endpoint's health (failure streak, why it was switched off) and its last 24 hours.
  const stats = await Promise.all(endpoints.map((e) => api("webhooks-stats", { id: e.id })));
  const add = () => h("button", { type: "button", class: "primary", onclick: () => showEndpointForm() }, "Add Endpoint");
  const page = h("section", {}, pageHead("Webhooks", add()));
  if (!endpoints.length) page.append(h("div", { class: "card placeholder" }, h("h2", {}, "No webhook endpoints yet"),
    h("p", {}, "Receive signed events at your own HTTPS endpoint."), add()));
  endpoints.forEach((endpoint, i) => {
    const { health, stats: last } = stats[i];
    const toggle = h("input", { type: "checkbox", role: "switch", checked: endpoint.is_active, "aria-label": `Enabled: ${endpoint.url}` });
    toggle.addEventListener("change", async () => {
      await api("webhooks-update", { id: endpoint.id, is_active: toggle.checked });
      render();
    });
    page.append(h("div", { class: "card", "data-endpoint": endpoint.id },
      h("div", { class: "list-row" },
        h("div", { class: "grow" }, h("strong", { class: "url-line" }, endpoint.url),
          h("div", { class: "meta" }, [
            endpoint.description || "No description",
            endpoint.events.join(", "),
            endpoint.rate_limit ? `at most ${endpoint.rate_limit}/s` : "no rate limit",
            `secret ${endpoint.secret_prefix}…`,
          ].join(" · ")),
          h("div", { class: "meta" }, `Last 24 h: ${last.succeeded} delivered, ${last.failed} failed, ${last.pending} pending`)),
        h("label", { class: "switch" }, endpoint.is_active ? "Enabled" : "Disabled", toggle),
        h("div", { class: "actions" },
          deliveriesLink(endpoint.id, endpoint.url),
          h("button", { type: "button", onclick: () => showEndpointForm(endpoint, stats[i]) }, "Edit"),
          h("button", { type: "button", onclick: async () => {
            const rotated = await api("webhooks-rotate-secret", { id: endpoint.id });
            showSecret("New signing secret", rotated.signing_secret, `The previous secret keeps signing until ${time(rotated.previous_secret_expires_at)}.`);
          } }, "Rotate secret"),
          h("button", { type: "button", class: "danger", onclick: () => confirmThen(`Delete the endpoint ${endpoint.url}?`, async () => {
            await api("webhooks-delete", { id: endpoint.id });
            render();
          }) }, "Delete"))),
      healthNotice(endpoint, health)));
  });
  return page;
}

/** What is wrong with an endpoint, in words, with Re-enable when Switchyard switched it off. */
function healthNotice(endpoint, health) {
  if (!health.is_active && health.disabled_reason) {
    return h("div", { class: "notice bad health", "data-role": "health" },
      h("span", {}, h("strong", {}, "Switched off: "), health.disabled_reason, ". Its deliveries wait until it is enabled again."),
      h("button", { type: "button", onclick: async () => {
        await api("webhooks-update", { id: endpoint.id, is_active: true });
        render();
      } }, "Re-enable"));
  }
  if (health.failure_streak > 0) {
    return h("div", { class: "notice warn health", "data-role": "health" },
      `Failing since ${time(health.failing_since)}: ${health.failure_streak} failed attempt${health.failure_streak === 1 ? "" : "s"} without a success.`);
  }
  return null;
}

/** Adds an endpoint, or edits one (URL, description, events, workspaces, rate limit,
 * authentication) with its health shown. */
function showEndpointForm(existing, stats) {
  const e = existing || { url: "", description: "", events: [], rate_limit: null };
  const workspaces = workspaceToggles(existing);
  const url = h("input", { type: "url", value: e.url, placeholder: "https://your-app.com/webhooks" });
  const description = textInput(e.description);
  const events = eventChecks(e.events, "Events to send");
  const auth = receiverAuthEditor(e.receiver_auth);
  const trace = traceToggle(Boolean(e.propagate_trace));
  const rateLimit = h("input", { type: "number", min: "1", max: "100000", value: e.rate_limit ?? "", placeholder: "No limit" });
  const form = h("form", { class: "panel", novalidate: true }, formError(),
    existing && stats ? h("div", { class: "health-box" }, healthNotice(existing, stats.health)
      || h("p", { class: "notice ok", "data-role": "health" }, "Healthy: no failed attempt since the last success.")) : null,
    field("Endpoint URL", url, { name: "url", hint: "Must be HTTPS." }),
    field("Description", description, { name: "description" }),
    field("Rate limit (requests per second)", rateLimit, { name: "rate_limit", hint: "Optional; empty for no limit." }),
    events.el,
    workspaces.el,
    auth.el,
    trace.el,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary" }, existing ? "Save Changes" : "Create endpoint"),
      h("button", { type: "button", onclick: closeModal }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = {
      url: url.value.trim(),
      description: description.value,
      events: events.value(),
      rate_limit: rateLimit.value ? Number(rateLimit.value) : null,
      receiver_auth: auth.value(),
      propagate_trace: trace.value(),
      ...workspaces.value(),
    };
    confirmWorkspaces(body, async () => {
      try {
        if (existing) {
          await api("webhooks-update", { id: existing.id, ...body });
          closeModal();
          render();
        } else {
          const created = await api("webhooks-create", body);
          showSecret("Signing secret", created.signing_secret, "Store it now: it is shown only this once.");
        }
      } catch (error) {
        const fields = { "webhooks.url_required": "url", "webhooks.invalid_url": "url", "webhooks.invalid_request": "events",
          "webhooks.workspace_not_found": "workspaces" };
        if (/rate_limit/.test(error.message)) fields[error.code] = "rate_limit";
        showFormError(form, error, fields);
      }
    });
  });
  openModal(existing ? "Edit Endpoint" : "Add Endpoint", form);
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
