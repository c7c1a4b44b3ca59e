// Integrations (seeds 000/001): Custom API, HubSpot and Salesforce, with field mapping.

import { api } from "../lib/api.js";
import { app, clearErrors, field, formError, h, pageHead, select, showFormError, textInput } from "../lib/dom.js";
import { closeModal, confirmThen, openModal } from "../lib/modal.js";
import { confirmWorkspaces, deliveriesLink, eventChecks, mappingEditor, traceToggle, workspaceToggles } from "../lib/parts.js";
import { receiverAuthEditor } from "../lib/receiver-auth.js";
import { go, render } from "../lib/router.js";
import { cache, eventTypes, inCurrentWorkspace, integrationKinds, sourceFields } from "../lib/session.js";

const AUTH_TYPES = [["none", "None"], ["api_key", "API Key (X-API-KEY)"], ["bearer", "Bearer Token"], ["basic", "Basic Auth"], ["custom_header", "Custom Header"]];
const AUTH_HINTS = {
  api_key: "Sent in an X-API-KEY header.",
  bearer: "Sent as Authorization: Bearer <key>.",
  basic: "Enter username:password; it is sent Base64-encoded as Authorization: Basic.",
  custom_header: "Sent in the header named above.",
};
const INTEGRATION_FIELD_ERRORS = {
  "integrations.url_required": "endpoint",
  "integrations.invalid_url": "endpoint",
  "integrations.secret_required": "secret",
  "integrations.invalid_mapping": "mapping",
  "integrations.missing_required_field": "mapping",
  "integrations.workspace_not_found": "workspaces",
};

export async function integrationsView() {
  await Promise.all([integrationKinds(), sourceFields(), eventTypes()]);
  const all = (await api("integrations-list")).integrations.filter(inCurrentWorkspace);
  const add = () => h("button", { type: "button", class: "primary", onclick: chooseIntegrationKind }, "+ Add New Integration");
  const page = h("section", {}, pageHead("Integrations", add()));
  if (!all.length) {
    page.append(h("div", { class: "card placeholder" }, h("h2", {}, "No webhook integrations yet"),
      h("p", {}, "Send participant data to a Custom API, HubSpot or Salesforce whenever something happens."), add()));
    return page;
  }
  for (const integration of all) {
    const kind = cache.kinds.find((k) => k.kind === integration.kind);
    page.append(h("div", { class: "card list-row", "data-integration": integration.id },
      h("div", { class: "grow" }, h("strong", {}, integration.name),
        h("div", { class: "meta" }, `${kind.title} · ${integration.events.join(", ")} · ${integration.mapping.length} mapped field(s)`)),
      h("span", { class: `badge ${integration.is_active ? "ok" : ""}` }, integration.is_active ? "Active" : "Paused"),
      h("div", { class: "actions" },
        deliveriesLink(integration.id, integration.name),
        h("button", { type: "button", onclick: () => showIntegrationForm(integration.kind, integration) }, "Edit"),
        h("button", { type: "button", class: "danger", onclick: () => confirmThen(`Delete "${integration.name}"? Its delivery log goes too.`, async () => {
          await api("integrations-delete", { id: integration.id });
          render();
        }) }, "Delete"))));
  }
  return page;
}

function chooseIntegrationKind() {
  const categories = ["All", ...new Set(cache.kinds.map((k) => k.category))];
  const filter = select(categories.map((c) => [c, c]), "All");
  const tiles = h("div", { class: "tiles" });
  const draw = () => tiles.replaceChildren(...cache.kinds
    .filter((k) => filter.value === "All" || k.category === filter.value)
    .map((k) => h("button", { type: "button", class: "tile", onclick: () => { closeModal(); showIntegrationForm(k.kind); } },
      h("strong", {}, k.title), h("span", { class: "meta" }, k.description))));
  filter.addEventListener("change", draw);
  draw();
  openModal("Select Webhook Integration", h("div", {}, field("Category", filter), tiles));
}

function showIntegrationForm(kind, existing) {
  const meta = cache.kinds.find((k) => k.kind === kind);
  const config = existing?.config || {};
  const name = textInput(existing ? existing.name : meta.default_name, { "data-field": "name" });
  const secret = h("input", { type: "password", autocomplete: "off", placeholder: existing?.secret_hint ? `Stored (${existing.secret_hint}) — leave empty to keep` : "" });
  const parts = [field("Integration Name", name, { name: "name" })];
  const inputs = {};
  // Custom API only: how its requests authenticate besides the API key.
  let receiverAuth = null;
  let trace = null;
  if (kind === "custom_api") {
    inputs.endpoint = h("input", { type: "url", value: config.endpoint || "", placeholder: "https://api.example.com/webhook" });
    inputs.method = select([["POST", "POST"], ["PUT", "PUT"], ["PATCH", "PATCH"]], config.method || "POST");
    inputs.auth_type = select(AUTH_TYPES, config.auth_type || "none");
    inputs.custom_header_name = textInput(config.custom_header_name || "", { placeholder: "X-Custom-Auth" });
    const headerField = field("Custom Header Name", inputs.custom_header_name, { name: "custom_header_name" });
    const keyField = field("API Key", secret, { name: "secret", hint: " " });
    const keyHint = keyField.querySelector(".hint");
    // Only what the chosen API Key Type uses is shown, with what is sent.
    const toggleAuth = () => {
      const type = inputs.auth_type.value;
      headerField.hidden = type !== "custom_header";
      keyField.hidden = type === "none";
      keyHint.textContent = AUTH_HINTS[type] || "";
    };
    inputs.auth_type.addEventListener("change", toggleAuth);
    toggleAuth();
    receiverAuth = receiverAuthEditor(existing?.receiver_auth);
    trace = traceToggle(Boolean(existing?.propagate_trace));
    parts.push(field("API Endpoint", inputs.endpoint, { name: "endpoint", hint: "Must be an HTTPS endpoint." }),
      h("div", { class: "grid2" }, field("HTTP Method", inputs.method, { name: "method" }), field("API Key Type", inputs.auth_type, { name: "auth_type" })),
      headerField,
      keyField,
      receiverAuth.el,
      trace.el);
  } else if (kind === "hubspot") {
    parts.push(field("API Key / Access Token", secret, { name: "secret", hint: "A HubSpot Private App access token (Settings → Integrations → Private Apps)." }));
  } else {
    inputs.domain = textInput(config.domain || "", { placeholder: "yourcompany.my.salesforce.com" });
    inputs.consumer_key = textInput(config.consumer_key || "");
    inputs.object = select([["Contact", "Contact"], ["Lead", "Lead"]], config.object || "Contact");
    inputs.external_id_field = textInput(config.external_id_field || "", { placeholder: "Email_External_Id__c" });
    inputs.external_id_source = select(cache.fields.map((f) => [f.key, f.display_name]), config.external_id_source || "email");
    parts.push(field("Salesforce Domain", inputs.domain, { name: "domain" }),
      h("div", { class: "grid2" }, field("Consumer Key", inputs.consumer_key, { name: "consumer_key" }), field("Consumer Secret", secret, { name: "secret" })),
      h("div", { class: "grid2" }, field("Object", inputs.object, { name: "object" }), field("External ID Field Name", inputs.external_id_field, { name: "external_id_field" })),
      field("External ID Source", inputs.external_id_source, { name: "external_id_source" }));
  }
  const configValue = () => {
    if (kind === "custom_api") {
      const c = { endpoint: inputs.endpoint.value.trim(), method: inputs.method.value, auth_type: inputs.auth_type.value };
      if (c.auth_type === "custom_header") c.custom_header_name = inputs.custom_header_name.value.trim();
      return c;
    }
    if (kind === "hubspot") return {};
    return Object.fromEntries(["domain", "consumer_key", "object", "external_id_field", "external_id_source"].map((k) => [k, inputs[k].value.trim()]));
  };

  const usesSecret = () => kind !== "custom_api" || inputs.auth_type.value !== "none";
  const secretValue = () => (secret.value && usesSecret() ? { secret: secret.value } : {});
  const authValue = () => (receiverAuth ? { receiver_auth: receiverAuth.value() } : {});
  const verifyResult = h("div", { role: "status", "aria-live": "polite", "data-role": "verify-result" });
  const verify = h("button", { type: "button" }, "Verify Connection");
  verify.addEventListener("click", async () => {
    verify.disabled = true;
    verifyResult.className = "notice";
    verifyResult.textContent = "Checking…";
    try {
      const body = { config: configValue(), ...secretValue(), ...authValue() };
      const result = await api("integrations-verify", existing ? { id: existing.id, ...body } : { kind, ...body });
      verifyResult.className = `notice ${result.ok ? "ok" : "bad"}`;
      verifyResult.textContent = result.message;
    } catch (error) {
      verifyResult.className = "notice bad";
      verifyResult.textContent = error.message;
    } finally {
      verify.disabled = false;
    }
  });

  const warning = h("div", { class: "notice warn", role: "status", hidden: true, "data-role": "salesforce-warning" },
    "⚠️ Salesforce needs at least Last Name and Email mapped: without Last Name the record is not created, without Email records cannot be matched.");
  const mapping = mappingEditor({
    legend: "Field Mapping",
    outputLabel: "Webhook field",
    rows: (existing?.mapping || []).map((r) => ({ output: r.webhook_field, source: r.source_field })),
    onChange: (rows) => {
      const sources = rows.map((r) => r.source);
      warning.hidden = kind !== "salesforce" || (sources.includes("lastName") && sources.includes("email"));
    },
  });
  mapping.el.append(warning);
  warning.hidden = kind !== "salesforce" || ["lastName", "email"].every((k) => mapping.rows().some((r) => r.source === k));
  const events = eventChecks(existing ? existing.events : ["participant.completed"], "Triggered by");
  const workspaces = workspaceToggles(existing);
  const active = h("input", { type: "checkbox", role: "switch", checked: existing ? existing.is_active : true });

  // A Verify result is about what was typed then: changing the connection settings clears it.
  const connection = h("div", {}, ...parts);
  const stale = () => {
    verifyResult.className = "";
    verifyResult.textContent = "";
  };
  connection.addEventListener("input", stale);
  connection.addEventListener("change", stale);
  const form = h("form", { class: "panel", novalidate: true, "aria-labelledby": "form-title" },
    h("h1", { id: "form-title" }, `${existing ? "Edit" : "Add"} Integration · ${meta.title}`),
    formError(), connection,
    h("div", { class: "form-actions" }, verify), verifyResult,
    mapping.el, events.el, workspaces.el,
    h("label", { class: "switch" }, "Active", active),
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "primary" }, "Save Changes"),
      h("button", { type: "button", onclick: () => render() }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!mapping.validate()) return;
    const body = {
      name: name.value,
      config: configValue(),
      mapping: mapping.rows().map((r) => ({ webhook_field: r.output, source_field: r.source })),
      events: events.value(),
      is_active: active.checked,
      ...workspaces.value(),
      ...secretValue(),
      ...authValue(),
      ...(trace ? { propagate_trace: trace.value() } : {}),
    };
    confirmWorkspaces(body, async () => {
      try {
        await api(existing ? "integrations-update" : "integrations-create", existing ? { id: existing.id, ...body } : { kind, ...body });
        go("#/integrations");
      } catch (error) {
        showFormError(form, error, INTEGRATION_FIELD_ERRORS);
      }
    });
  });
  app.replaceChildren(form);
  name.focus();
}
