// Mailer Integrations (seed 001): eight providers, template parameters, rules, and Send Test
// Email with the settings as typed (before saving, as seed 001 asks).

import { api } from "../lib/api.js";
import { app, clearErrors, field, formError, h, pageHead, select, showFormError, textInput } from "../lib/dom.js";
import { closeModal, confirmThen, openModal } from "../lib/modal.js";
import { confirmWorkspaces, deliveriesLink, mappingEditor, workspaceToggles } from "../lib/parts.js";
import { render } from "../lib/router.js";
import { cache, eventTypes, inCurrentWorkspace, mailProviders, sourceFields } from "../lib/session.js";
import { rulesEditor } from "./mailer-rules.js";

const LABELS = {
  mailgun_region: "API Region",
  region: "Region", domain: "API Domain", host: "Host", port: "Port", login: "Login", security: "Security",
  access_key_id: "API Access Key", secret_access_key: "API Private Key", session_token: "Session Token (temporary credentials only)",
  api_key: "API Key", secret_key: "API Private Key", password: "Password",
};
const MAILER_FIELD_ERRORS = {
  "mailers.sender_email_required": "sender_email",
  "mailers.invalid_template_params": "mapping",
  "mailers.workspace_not_found": "workspaces",
  "mailers.invalid_rules": "rules",
  "mailers.invalid_fallback": "fallback_mailer_id",
};

export async function mailersView() {
  await Promise.all([mailProviders(), sourceFields(), eventTypes()]);
  // Any mailer of the account may be a fallback, whatever the workspace shown.
  const account = (await api("mailers-list")).mailers;
  const all = account.filter(inCurrentWorkspace);
  const showForm = (mailer) => showMailerForm(mailer, account);
  const add = () => h("button", { type: "button", class: "primary", onclick: () => showForm() }, "Add Mailer Integration");
  const page = h("section", {}, pageHead("Mailer Integrations", h("a", { class: "button", href: "#/suppressions" }, "Suppressions"), add()));
  if (!all.length) page.append(h("div", { class: "card placeholder" }, h("h2", {}, "No mailer integrations yet"),
    h("p", {}, "Send transactional e-mail through your own provider."), add()));
  for (const mailer of all) {
    const provider = cache.providers.find((p) => p.provider === mailer.provider);
    page.append(h("div", { class: "card list-row", "data-mailer": mailer.id },
      h("div", { class: "grow" }, h("strong", {}, mailer.name),
        h("div", { class: "meta" }, `${provider.title} · ${mailer.sender_email || mailer.reply_to || ""}`),
        h("div", { class: "meta", "data-role": "rules" }, mailer.rules.length
          ? `Sends on ${mailer.rules.map((r) => r.event_type).join(", ")}`
          : "No rules: sends only through the API"),
        mailer.fallback_mailer_id ? h("div", { class: "meta", "data-role": "fallback" },
          `Falls back to ${account.find((m) => m.id === mailer.fallback_mailer_id)?.name || "a deleted mailer"}`) : null),
      mailer.usable
        ? h("span", { class: "badge ok" }, "Verified")
        : h("span", { class: "badge bad", title: "Send Test Email must pass before it can be used" }, "Unverified — cannot send"),
      h("div", { class: "actions" },
        deliveriesLink(mailer.id, mailer.name),
        h("button", { type: "button", onclick: () => showForm(mailer) }, "Edit"),
        h("button", { type: "button", class: "danger", onclick: () => confirmThen(`Delete "${mailer.name}"?`, async () => {
          try {
            await api("mailers-delete", { id: mailer.id });
          } catch (error) {
            alertDialog(error.message);
            return;
          }
          render();
        }) }, "Delete"))));
  }
  return page;
}

/** Tells why something could not be done, in a dialog. */
function alertDialog(message) {
  const ok = h("button", { type: "button", class: "primary", onclick: closeModal }, "OK");
  openModal("Cannot delete", h("div", {}, h("p", { role: "alert" }, message), h("div", { class: "form-actions end" }, ok)));
  ok.focus();
}

/** The mailer form; `justSaved` says so at its top after a save kept the user on it. */
function showMailerForm(existing, account, justSaved = false) {
  const providerSelect = select(cache.providers.map((p) => [p.provider, p.title]), existing?.provider || "amazon_ses",
    { disabled: existing ? true : null });
  const body = h("div");
  // Shown until the next save is asked for: that one says how it went.
  const savedNotice = justSaved ? h("p", { class: "notice ok", role: "status" }, "Changes saved.") : null;
  const form = h("form", { class: "panel", novalidate: true, "aria-labelledby": "form-title" },
    h("h1", { id: "form-title" }, existing ? `Edit Mailer Integration · ${existing.name}` : "Add Mailer Integration"),
    savedNotice, formError(), field("Provider", providerSelect, { name: "provider" }), body);
  let collect = () => ({});
  let validate = () => true;
  // A passed test of the settings as typed: saving them with it saves them verified.
  let testProof = null;
  const draw = () => {
    const provider = cache.providers.find((p) => p.provider === providerSelect.value);
    const m = existing || {};
    const name = textInput(m.name || `${provider.title} Mailer`);
    const senderName = textInput(m.sender_name || "");
    const senderEmail = h("input", { type: "email", value: m.sender_email || "" });
    const replyTo = h("input", { type: "email", value: m.reply_to || "" });
    const bcc = h("input", { type: "email", value: m.bcc || "" });
    const config = {};
    const secrets = {};
    for (const key of provider.config_fields) {
      const current = m.config?.[key];
      config[key] = key === "region" && provider.provider === "mailgun" ? select([["us", "US"], ["eu", "EU"]], current || "us")
        : key === "security" ? select([["", "By port (587 STARTTLS, 465 TLS)"], ["starttls", "STARTTLS"], ["tls", "TLS"], ["none", "None"]], current || "")
        : h("input", { type: key === "port" ? "number" : "text", value: current ?? (key === "port" ? "587" : "") });
    }
    for (const key of provider.credential_fields) {
      const hint = m.credential_hints?.[key];
      secrets[key] = h("input", { type: "password", autocomplete: "off", placeholder: hint ? `Stored (${hint}) — leave empty to keep` : "" });
    }
    const params = provider.supports_template_params
      ? mappingEditor({ legend: "Template Parameter Fields", outputLabel: "Parameter name",
        rows: (m.template_params || []).map((p) => ({ output: p.parameter_name, source: p.source_field })) })
      : null;
    const rules = rulesEditor(provider.provider, m.rules || []);
    const workspaces = workspaceToggles(existing);
    const fallback = select([["", "None"], ...account.filter((o) => o.id !== m.id).map((o) => [o.id, o.name])], m.fallback_mailer_id || "");
    const webhookKey = h("input", { type: "password", autocomplete: "off",
      placeholder: m.webhook_key_hint ? `Stored (${m.webhook_key_hint}) — leave empty to keep` : "" });
    // replaceChildren would write a null as the text "null": parts a provider lacks are left out.
    body.replaceChildren(...[
      h("fieldset", {}, h("legend", {}, "General Settings"),
        field("Integration Name", name, { name: "name" }),
        field("Sender Name", senderName, { name: "sender_name" }),
        provider.has_sender_email ? field("Sender Email", senderEmail, { name: "sender_email" }) : null,
        field("Reply-To Email", replyTo, { name: "reply_to", hint: provider.has_sender_email ? "Optional." : "Replies go here; the built-in relay sends from the server's own address." }),
        field("BCC Email (optional)", bcc, { name: "bcc", hint: "Receives a copy of every outgoing e-mail." })),
      provider.config_fields.length || provider.credential_fields.length
        ? h("fieldset", {}, h("legend", {}, "Authentication"),
          ...provider.config_fields.map((k) => field(LABELS[`${provider.provider}_${k}`] || LABELS[k], config[k], { name: k })),
          ...provider.credential_fields.map((k) => field(LABELS[k], secrets[k], { name: k })))
        : h("p", { class: "meta" }, "No authentication required."),
      testSection(form, existing, () => ({ ...collect(), ...(existing ? { id: existing.id } : { provider: providerSelect.value }) }),
        (proof) => (testProof = proof)),
      params ? params.el : null,
      rules.el,
      h("fieldset", {}, h("legend", {}, "Failover"),
        field("Fallback mailer", fallback, { name: "fallback_mailer_id",
          hint: "Sends this mailer's e-mails when its provider fails (no connection, timeout, 5xx, 429, refused credentials), if it passed its own test. Not for bad recipients." })),
      provider.has_event_webhook ? eventWebhook(provider, m, webhookKey) : null,
      workspaces.el,
      h("div", { class: "form-actions" },
        h("button", { type: "submit", class: "primary" }, "Save Changes"),
        h("button", { type: "button", onclick: () => render() }, "Cancel")),
    ].filter(Boolean));
    validate = () => (!params || params.validate()) && rules.validate();
    collect = () => {
      const out = {
        name: name.value, sender_name: senderName.value, reply_to: replyTo.value, bcc: bcc.value, ...workspaces.value(),
        config: Object.fromEntries(provider.config_fields.filter((k) => config[k].value !== "")
          .map((k) => [k, k === "port" ? Number(config[k].value) : config[k].value.trim()])),
      };
      if (provider.has_sender_email) out.sender_email = senderEmail.value;
      const typed = provider.credential_fields.filter((k) => secrets[k].value);
      if (!existing || typed.length) out.credentials = Object.fromEntries(typed.map((k) => [k, secrets[k].value]));
      if (params) out.template_params = params.rows().map((r) => ({ parameter_name: r.output, source_field: r.source }));
      out.rules = rules.value();
      out.fallback_mailer_id = fallback.value || null;
      if (provider.webhook_key && webhookKey.value) out.webhook_key = webhookKey.value.trim();
      return out;
    };
  };
  providerSelect.addEventListener("change", () => {
    testProof = null;
    draw();
  });
  draw();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    savedNotice?.remove();
    if (!validate()) return;
    const body = { ...collect(), ...(testProof ? { test_proof: testProof } : {}) };
    confirmWorkspaces(body, async () => {
      try {
        const saved = existing
          ? await api("mailers-update", { id: existing.id, ...body })
          : await api("mailers-create", { provider: providerSelect.value, ...body });
        showMailerForm(saved.mailer, account, true);
        form.ownerDocument.querySelector("[data-role=saved]")?.focus();
      } catch (error) {
        showFormError(form, error, MAILER_FIELD_ERRORS);
      }
    });
  });
  app.replaceChildren(form);
  providerSelect.focus();
}

/** Where the provider posts bounces and complaints, and the key it signs them with. */
function eventWebhook(provider, mailer, keyInput) {
  const url = mailer.inbound_path ? h("input", { type: "text", readonly: true, value: `${location.origin}${mailer.inbound_path}` }) : null;
  return h("fieldset", { "data-role": "event-webhook" }, h("legend", {}, "Bounces and complaints"),
    h("p", { class: "hint" }, `Paste this URL into ${provider.title}'s event webhook settings${provider.provider === "amazon_ses" ? " (an HTTPS subscription of the SNS topic SES reports to)" : ""}: hard bounces and spam complaints then go on the suppression list. Keep it secret.`),
    url ? field("Event webhook URL", url, { name: "inbound_url" }) : h("p", { class: "meta" }, "Save the mailer to get its URL."),
    provider.webhook_key ? field(`Webhook key (${provider.title}'s ${provider.webhook_key})`, keyInput, { name: "webhook_key" }) : null);
}

/** "Test Your Connection": Send Test Email with the settings as typed, saved or not. A pass on
 * the saved settings verifies the mailer at once; a pass on unsaved ones gives a proof (`onProof`)
 * that saving them with it verifies them. */
function testSection(form, existing, settings, onProof) {
  const to = h("input", { type: "email", placeholder: "you@example.com" });
  const result = h("div", { role: "status", "aria-live": "polite" });
  const send = h("button", { type: "button" }, "Send Test Email");
  const statusBadge = (usable, tested = false) => h("span", { class: `badge ${usable || tested ? "ok" : "bad"}`, "data-role": "saved", tabindex: "-1" },
    usable ? "Verified: ready to send"
      : tested ? "Test passed: Save Changes to keep these settings verified"
        : "Unverified — cannot send until a test e-mail succeeds");
  let status = statusBadge(Boolean(existing?.usable));
  send.addEventListener("click", async () => {
    clearErrors(form);
    send.disabled = true;
    result.className = "notice";
    result.textContent = "Sending…";
    try {
      const answer = await api("mailers-test", { ...settings(), to: to.value });
      result.className = `notice ${answer.ok ? "ok" : "bad"}`;
      result.textContent = answer.message;
      onProof(answer.test_proof || null);
      status.replaceWith(status = statusBadge(Boolean(answer.mailer?.usable), Boolean(answer.test_proof)));
    } catch (error) {
      result.className = "";
      result.textContent = "";
      const aboutRecipient = error.code === "mailers.invalid_address" && /^to /.test(error.message);
      showFormError(form, error, aboutRecipient ? { [error.code]: "to" } : MAILER_FIELD_ERRORS);
    } finally {
      send.disabled = false;
    }
  });
  return h("fieldset", {}, h("legend", {}, "Test Your Connection"),
    h("p", { class: "hint" }, "Sends a real e-mail with the settings above, saved or not. The mailer can send only once a test passes."),
    status, field("Send a test e-mail to", to, { name: "to" }), h("div", { class: "form-actions" }, send), result);
}
