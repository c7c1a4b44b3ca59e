// Switchyard's web UI: a small single-page app on the public JSON API only.
// No build step: this file is embedded in the binary and served as is.

const app = document.getElementById("app");
const overlay = document.getElementById("overlay");
const TOKEN_KEY = "switchyard.token";
const WORKSPACE_KEY = "switchyard.workspace";

// ---------------------------------------------------------------- helpers

/** Creates an element: h("button", {class: "primary", onclick}, "Save"). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = true;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const TRASH_ICON = '<svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"><path d="M3 6h18M8 6V4h8v2M6 6l1 14h10l1-14M10 11v6M14 11v6"/></svg>';

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Calls `POST /api/<call>`; resolves to `result` or throws ApiError(code, message). A refused
 * token signs out, except while signing in (`signingIn`), where the form says so. */
async function api(call, body = {}, { signingIn = false } = {}) {
  const response = await fetch(`/api/${call}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` },
    body: JSON.stringify(body),
  });
  let answer;
  try {
    answer = await response.json();
  } catch {
    throw new ApiError("ui.bad_response", `The server answered HTTP ${response.status}.`);
  }
  if (!answer.ok) {
    if (response.status === 401 && !signingIn) signOut();
    throw new ApiError(answer.error.code, answer.error.message);
  }
  return answer.result;
}

/** A labelled input with a place for its error; `input` gets an id tied to the label. */
function field(label, input, { hint, name } = {}) {
  input.id = input.id || nextId("f");
  const errorId = `${input.id}-error`;
  const hintId = hint ? `${input.id}-hint` : null;
  input.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  if (name) input.dataset.field = name;
  // An error is about what was typed: editing the field clears it.
  input.addEventListener("input", () => {
    input.removeAttribute("aria-invalid");
    const slot = document.getElementById(errorId);
    if (slot) slot.textContent = "";
  });
  return h("div", { class: "field", "data-field-wrap": name || null },
    h("label", { for: input.id }, label),
    input,
    hint ? h("span", { class: "hint", id: hintId }, hint) : null,
    h("span", { class: "field-error", id: errorId, role: "alert" }));
}

function textInput(value = "", attrs = {}) {
  return h("input", { type: "text", value, ...attrs });
}

function select(options, value, attrs = {}) {
  const el = h("select", attrs, options.map(([v, label]) => h("option", { value: v }, label)));
  if (value !== undefined && value !== null) el.value = value;
  return el;
}

/** Shows API errors next to the field they concern (by code, or by a field named in the message). */
function showFormError(form, error, fieldsByCode = {}) {
  clearErrors(form);
  // "mapping row 2: …" concerns one row of a mapping editor: mark that row and its field.
  const row = /mapping row (\d+)/.exec(error.message);
  const editor = form.querySelector("[data-field=mapping]");
  if (row && editor?.markRow?.(Number(row[1]), error.message)) return;
  const named = Object.entries(fieldsByCode).find(([code]) => code === error.code);
  let target = named ? form.querySelector(`[data-field="${named[1]}"]`) : null;
  if (!target) {
    const mentioned = [...form.querySelectorAll("[data-field]")].find((el) => error.message.includes(el.dataset.field));
    target = mentioned || null;
  }
  if (target) {
    target.setAttribute("aria-invalid", "true");
    const slot = document.getElementById(`${target.id}-error`);
    if (slot) slot.textContent = error.message;
    target.focus();
  } else {
    const banner = form.querySelector(".form-error");
    banner.hidden = false;
    banner.textContent = error.message;
    banner.focus();
  }
}

function clearErrors(form) {
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  form.querySelectorAll(".field-error").forEach((el) => (el.textContent = ""));
  form.querySelectorAll(".mapping-row.invalid").forEach((el) => el.classList.remove("invalid"));
  const banner = form.querySelector(".form-error");
  if (banner) banner.hidden = true;
}

function formError() {
  return h("div", { class: "form-error", role: "alert", tabindex: "-1", hidden: true });
}

// The element that opened the modal: focus goes back to it when the modal closes.
let opener = null;

/** A modal dialog: the page behind is inert, Tab stays inside, Escape closes, and focus returns
 * to what opened it. */
function openModal(title, content) {
  if (overlay.hidden) opener = document.activeElement;
  const titleId = nextId("modal-title");
  const close = h("button", { type: "button", class: "link", "aria-label": "Close", onclick: closeModal }, "✕");
  const modal = h("div", { class: "modal", role: "dialog", "aria-modal": "true", "aria-labelledby": titleId },
    h("div", { class: "modal-head" }, h("h2", { id: titleId }, title), close), content);
  overlay.replaceChildren(modal);
  overlay.hidden = false;
  for (const behind of [app, document.querySelector(".topbar")]) behind.inert = true;
  (modal.querySelector("select, input, button:not(.link)") || close).focus();
  return modal;
}

function closeModal() {
  if (overlay.hidden) return;
  overlay.hidden = true;
  overlay.replaceChildren();
  for (const behind of [app, document.querySelector(".topbar")]) behind.inert = false;
  const back = opener;
  opener = null;
  if (back?.isConnected && back !== document.body) back.focus();
  else app.focus();
}

const FOCUSABLE = "button:not([disabled]), [href], input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

document.addEventListener("keydown", (event) => {
  if (overlay.hidden) return;
  if (event.key === "Escape") {
    closeModal();
  } else if (event.key === "Tab") {
    const focusable = [...overlay.querySelectorAll(FOCUSABLE)].filter((el) => !el.closest("[hidden]"));
    if (!focusable.length) return;
    const [first, last] = [focusable[0], focusable[focusable.length - 1]];
    const inside = overlay.contains(document.activeElement);
    if (event.shiftKey && (document.activeElement === first || !inside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  }
});

/** Asks before a destructive action. Cancel has the focus, so Enter never deletes. */
function confirmThen(message, action, { title = "Please confirm", confirm = "Delete", details = null } = {}) {
  const cancel = h("button", { type: "button", onclick: closeModal }, "Cancel");
  const yes = h("button", { type: "button", class: "destructive", onclick: async () => { closeModal(); await action(); } }, confirm);
  openModal(title, h("div", {}, h("p", {}, message), details, h("div", { class: "form-actions end" }, cancel, yes)));
  cancel.focus();
}

const time = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

// ---------------------------------------------------------------- session and shared data

const cache = { fields: null, kinds: null, providers: null, eventTypes: null, workspaces: [] };

async function load(name, call, key) {
  if (!cache[name]) cache[name] = (await api(call))[key];
  return cache[name];
}
const sourceFields = () => load("fields", "integrations-fields-list", "fields");
const integrationKinds = () => load("kinds", "integration-kinds-list", "kinds");
const mailProviders = () => load("providers", "mailer-providers-list", "providers");
const eventTypes = () => load("eventTypes", "event-types-list", "event_types");

function currentWorkspace() {
  return sessionStorage.getItem(WORKSPACE_KEY) || "";
}

/** Whether an object available in `workspaces`/`all_workspaces` shows in the current workspace. */
function inCurrentWorkspace(item) {
  const ws = currentWorkspace();
  return !ws || item.all_workspaces || (item.workspaces || []).includes(ws);
}

async function refreshWorkspaces() {
  cache.workspaces = (await api("workspaces-list")).workspaces;
  const switcher = document.getElementById("workspace-switcher");
  switcher.replaceChildren(h("option", { value: "" }, "All workspaces"),
    ...cache.workspaces.map((w) => h("option", { value: w.id }, w.name)));
  switcher.value = cache.workspaces.some((w) => w.id === currentWorkspace()) ? currentWorkspace() : "";
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(WORKSPACE_KEY);
  Object.keys(cache).forEach((k) => (cache[k] = k === "workspaces" ? [] : null));
  render();
}

document.getElementById("sign-out").addEventListener("click", signOut);
document.getElementById("workspace-switcher").addEventListener("change", (event) => {
  sessionStorage.setItem(WORKSPACE_KEY, event.target.value);
  render();
});

function signInView() {
  const token = h("input", { type: "password", autocomplete: "off", "data-field": "token" });
  const form = h("form", { class: "panel signin", novalidate: true },
    h("h1", {}, "Sign in to Switchyard"),
    h("p", { class: "meta" }, "Paste an API token (create one with ", h("code", {}, "switchyard token create --account NAME"),
      "). It is kept for this browser tab only."),
    formError(),
    field("API token", token, { name: "token" }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, token.value.trim());
    try {
      await api("workspaces-list", {}, { signingIn: true });
      render();
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      showFormError(form, new ApiError(error.code, "That token was not accepted."), { "auth.invalid_token": "token", "auth.missing_token": "token" });
    }
  });
  return form;
}

// ---------------------------------------------------------------- shared form parts

/** Mapping rows "Webhook field → Source field": a text input (output key) and a dropdown of the
 * 43 source fields, with a trash button; new rows start empty. On a phone each row stacks. */
function mappingEditor({ legend, outputLabel, rows, onChange }) {
  const list = h("div", { class: "mapping-rows" });
  const head = h("div", { class: "mapping-head", "aria-hidden": "true" },
    h("span", {}, outputLabel), h("span", { class: "arrow" }, "→"), h("span", {}, "Source field"), h("span"));
  const current = () => [...list.children].map((row) => ({
    output: row.querySelector("[data-role=output]").value.trim(),
    source: row.querySelector("[data-role=source]").value,
  }));
  const changed = () => {
    head.hidden = !list.children.length;
    onChange?.(current());
  };
  const addRow = (row = {}) => {
    const errorId = nextId("row-error");
    const output = textInput(row.output || "", { "aria-label": outputLabel, placeholder: outputLabel, "data-role": "output", "aria-describedby": errorId });
    const source = select([["", "Choose a source field…"], ...cache.fields.map((f) => [f.key, f.display_name])], row.source || "",
      { "aria-label": "Source field", "data-role": "source", "aria-describedby": errorId });
    const remove = h("button", { type: "button", class: "link danger icon", "aria-label": "Remove mapping row", title: "Remove" });
    remove.innerHTML = TRASH_ICON;
    const error = h("span", { class: "field-error row-error", id: errorId });
    const el = h("div", { class: "mapping-row" }, output, h("span", { class: "arrow", "aria-hidden": "true" }, "→"), source, remove, error);
    const clear = (input) => () => {
      input.removeAttribute("aria-invalid");
      el.classList.remove("invalid");
      error.textContent = "";
    };
    output.addEventListener("input", clear(output));
    source.addEventListener("change", clear(source));
    remove.addEventListener("click", () => { el.remove(); changed(); });
    source.addEventListener("change", changed);
    list.append(el);
    changed();
    return el;
  };
  rows.forEach(addRow);
  const add = h("button", { type: "button", onclick: () => addRow().querySelector("input").focus() }, "+ Add Field");
  const wrap = h("fieldset", { "data-field": "mapping", id: nextId("mapping"), tabindex: "-1", class: "mapping" }, h("legend", {}, legend));
  wrap.append(h("span", { class: "field-error", id: `${wrap.id}-error`, role: "alert" }), head, list, add);
  /** Marks row `n` (from 1) and the field the message is about; false when there is no such row. */
  wrap.markRow = (n, message) => {
    const el = list.children[n - 1];
    if (!el) return false;
    const input = el.querySelector(/source field/.test(message) ? "[data-role=source]" : "[data-role=output]");
    el.classList.add("invalid");
    input.setAttribute("aria-invalid", "true");
    el.querySelector(".row-error").textContent = message.replace(/^mapping row \d+: /, "");
    el.querySelector(".row-error").setAttribute("role", "alert");
    input.focus();
    return true;
  };
  /** Rows without a source field, marked before anything is sent; true when all have one. */
  const validate = () => {
    const missing = [...list.children].findIndex((el) => !el.querySelector("[data-role=source]").value);
    return missing < 0 || !wrap.markRow(missing + 1, `mapping row ${missing + 1}: choose a source field`);
  };
  changed();
  return { el: wrap, rows: current, validate };
}

/** "Available in Workspaces": one switch per workspace, and Select All. */
function workspaceToggles(item) {
  const all = item ? item.all_workspaces : !currentWorkspace();
  const chosen = new Set(item ? item.workspaces : currentWorkspace() ? [currentWorkspace()] : []);
  const boxes = cache.workspaces.map((w) => h("input", { type: "checkbox", role: "switch", value: w.id, checked: all || chosen.has(w.id) }));
  const selectAll = h("button", { type: "button", onclick: () => boxes.forEach((b) => (b.checked = true)) }, "Select All");
  const fs = h("fieldset", { "data-field": "workspaces", id: nextId("ws"), tabindex: "-1" },
    h("legend", {}, "Available in Workspaces"),
    cache.workspaces.length
      ? [selectAll, ...cache.workspaces.map((w, i) => h("label", { class: "switch" }, w.name, boxes[i]))]
      : h("p", { class: "meta" }, "No workspaces yet: it is available everywhere."));
  fs.append(h("span", { class: "field-error", id: `${fs.id}-error`, role: "alert" }));
  return {
    el: fs,
    value: () => {
      const ids = boxes.filter((b) => b.checked).map((b) => b.value);
      const everything = !cache.workspaces.length || ids.length === cache.workspaces.length;
      return everything ? { all_workspaces: true } : { all_workspaces: false, workspaces: ids };
    },
  };
}

/** Event checkboxes: the account's own events, then the operational ones (about deliveries
 * themselves) in a group apart. */
function eventChecks(selected, legend = "Events") {
  const boxes = cache.eventTypes.map((t) => h("input", { type: "checkbox", value: t.name, checked: selected.includes(t.name) }));
  const group = (title, operational) => {
    const titleId = nextId("events-group");
    const items = cache.eventTypes.flatMap((t, i) => (Boolean(t.operational) === operational
      ? [h("label", { title: t.description }, boxes[i], t.name)] : []));
    return items.length ? h("div", { class: "event-group", role: "group", "aria-labelledby": titleId, "data-group": operational ? "operational" : "business" },
      h("p", { class: "group-title", id: titleId }, title), h("div", { class: "checks" }, items)) : null;
  };
  const fs = h("fieldset", { "data-field": "events", id: nextId("events"), tabindex: "-1" }, h("legend", {}, legend),
    group("Your events", false),
    group("Operational events — about deliveries themselves", true));
  fs.append(h("span", { class: "field-error", id: `${fs.id}-error`, role: "alert" }));
  return { el: fs, value: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

function pageHead(title, ...actions) {
  return h("div", { class: "page-head" }, h("h1", {}, title), h("div", { class: "actions" }, actions));
}

// ---------------------------------------------------------------- integrations

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

async function integrationsView() {
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
    parts.push(field("API Endpoint", inputs.endpoint, { name: "endpoint", hint: "Must be an HTTPS endpoint." }),
      h("div", { class: "grid2" }, field("HTTP Method", inputs.method, { name: "method" }), field("API Key Type", inputs.auth_type, { name: "auth_type" })),
      headerField,
      keyField);
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
  const verifyResult = h("div", { role: "status", "aria-live": "polite", "data-role": "verify-result" });
  const verify = h("button", { type: "button" }, "Verify Connection");
  verify.addEventListener("click", async () => {
    verify.disabled = true;
    verifyResult.className = "notice";
    verifyResult.textContent = "Checking…";
    try {
      const body = { config: configValue(), ...secretValue() };
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
    };
    try {
      await api(existing ? "integrations-update" : "integrations-create", existing ? { id: existing.id, ...body } : { kind, ...body });
      location.hash = "#/integrations";
      render();
    } catch (error) {
      showFormError(form, error, INTEGRATION_FIELD_ERRORS);
    }
  });
  app.replaceChildren(form);
  name.focus();
}

// ---------------------------------------------------------------- mailers

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
};

async function mailersView() {
  await Promise.all([mailProviders(), sourceFields(), eventTypes()]);
  const all = (await api("mailers-list")).mailers.filter(inCurrentWorkspace);
  const add = () => h("button", { type: "button", class: "primary", onclick: () => showMailerForm() }, "Add Mailer Integration");
  const page = h("section", {}, pageHead("Mailer Integrations", add()));
  if (!all.length) page.append(h("div", { class: "card placeholder" }, h("h2", {}, "No mailer integrations yet"),
    h("p", {}, "Send transactional e-mail through your own provider."), add()));
  for (const mailer of all) {
    const provider = cache.providers.find((p) => p.provider === mailer.provider);
    page.append(h("div", { class: "card list-row", "data-mailer": mailer.id },
      h("div", { class: "grow" }, h("strong", {}, mailer.name),
        h("div", { class: "meta" }, `${provider.title} · ${mailer.sender_email || mailer.reply_to || ""}`)),
      mailer.usable
        ? h("span", { class: "badge ok" }, "Verified")
        : h("span", { class: "badge bad", title: "Send Test Email must pass before it can be used" }, "Unverified — cannot send"),
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => showMailerForm(mailer) }, "Edit"),
        h("button", { type: "button", class: "danger", onclick: () => confirmThen(`Delete "${mailer.name}"?`, async () => {
          await api("mailers-delete", { id: mailer.id });
          render();
        }) }, "Delete"))));
  }
  return page;
}

function showMailerForm(existing) {
  const providerSelect = select(cache.providers.map((p) => [p.provider, p.title]), existing?.provider || "amazon_ses",
    { disabled: existing ? true : null });
  const body = h("div");
  const form = h("form", { class: "panel", novalidate: true, "aria-labelledby": "form-title" },
    h("h1", { id: "form-title" }, existing ? `Edit Mailer Integration · ${existing.name}` : "Add Mailer Integration"),
    formError(), field("Provider", providerSelect, { name: "provider" }), body);
  let collect = () => ({});
  let validate = () => true;
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
    const workspaces = workspaceToggles(existing);
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
      params ? params.el : null,
      workspaces.el,
      h("div", { class: "form-actions" },
        h("button", { type: "submit", class: "primary" }, "Save Changes"),
        h("button", { type: "button", onclick: () => render() }, "Cancel")),
      existing ? testSection(existing) : h("p", { class: "meta" }, "Save, then Send Test Email: the mailer can be used only once a test passes."),
    ].filter(Boolean));
    validate = () => !params || params.validate();
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
      return out;
    };
  };
  providerSelect.addEventListener("change", draw);
  draw();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!validate()) return;
    try {
      const saved = existing
        ? await api("mailers-update", { id: existing.id, ...collect() })
        : await api("mailers-create", { provider: providerSelect.value, ...collect() });
      showMailerForm(saved.mailer);
      form.ownerDocument.querySelector("[data-role=saved]")?.focus();
    } catch (error) {
      showFormError(form, error, MAILER_FIELD_ERRORS);
    }
  });
  app.replaceChildren(form);
  providerSelect.focus();
}

function testSection(mailer) {
  const to = h("input", { type: "email", placeholder: "you@example.com" });
  const result = h("div", { role: "status", "aria-live": "polite" });
  const send = h("button", { type: "button" }, "Send Test Email");
  send.addEventListener("click", async () => {
    send.disabled = true;
    result.className = "notice";
    result.textContent = "Sending…";
    try {
      const answer = await api("mailers-test", { id: mailer.id, to: to.value });
      result.className = `notice ${answer.ok ? "ok" : "bad"}`;
      result.textContent = answer.message;
      status.replaceWith(status = statusBadge(answer.mailer));
    } catch (error) {
      result.className = "notice bad";
      result.textContent = error.message;
    } finally {
      send.disabled = false;
    }
  });
  const statusBadge = (m) => h("span", { class: `badge ${m.usable ? "ok" : "bad"}`, "data-role": "saved", tabindex: "-1" },
    m.usable ? "Verified: ready to send" : "Unverified — cannot send until a test e-mail succeeds");
  let status = statusBadge(mailer);
  return h("fieldset", {}, h("legend", {}, "Test Your Connection"), status, field("Send a test e-mail to", to, { name: "to" }),
    h("div", { class: "form-actions" }, send), result);
}

// ---------------------------------------------------------------- webhook endpoints

async function webhooksView() {
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

// ---------------------------------------------------------------- deliveries

async function deliveriesView() {
  const [{ endpoints }, { integrations }, { mailers }] = await Promise.all([api("webhooks-list"), api("integrations-list"), api("mailers-list")]);
  const targets = [...endpoints.map((e) => [e.id, `Webhook · ${e.url}`]), ...integrations.map((i) => [i.id, `Integration · ${i.name}`]),
    ...mailers.map((m) => [m.id, `Mailer · ${m.name}`])];
  const names = Object.fromEntries(targets);
  const target = select([["", "All targets"], ...targets], "");
  const status = select([["", "Any status"], ["pending", "Pending"], ["delivered", "Delivered"], ["failed", "Failed"]], "");
  const since = h("input", { type: "datetime-local" });
  const until = h("input", { type: "datetime-local" });
  const results = h("div");
  const detail = h("div", { "aria-live": "polite" });
  const iso = (input) => (input.value ? new Date(input.value).toISOString().replace(/\.\d{3}Z$/, "Z") : undefined);
  const refresh = async () => {
    const filter = { limit: 200, target_id: target.value || undefined, status: status.value || undefined, since: iso(since), until: iso(until) };
    const { deliveries } = await api("deliveries-list", filter);
    if (!deliveries.length) {
      results.replaceChildren(h("p", { class: "meta" }, "No deliveries match."));
      return;
    }
    const rows = deliveries.map((d) => {
      const open = h("button", { type: "button", class: "link" }, "Attempts");
      const row = h("tr", { "data-delivery": d.id },
        h("td", {}, time(d.created_at)), h("td", {}, names[d.target_id] || d.target_kind), h("td", {}, d.event_type),
        h("td", {}, h("span", { class: `badge ${d.status === "delivered" ? "ok" : d.status === "failed" ? "bad" : "pending"}` }, d.status)),
        h("td", {}, d.attempt_count), h("td", {}, d.http_status_code ?? "—"), h("td", {}, open));
      open.addEventListener("click", () => {
        results.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected"));
        row.classList.add("selected");
        showAttempts(d, detail, refresh);
      });
      return row;
    });
    results.replaceChildren(h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Created", "Target", "Event", "Status", "Attempts", "Last code", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))));
  };
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); refresh(); } },
    field("Target", target), field("Status", status), field("From", since), field("Until", until),
    h("div", { class: "field" }, h("button", { type: "submit" }, "Filter")));
  await refresh();
  return h("section", {}, pageHead("Deliveries"), form, results, detail);
}

async function showAttempts(delivery, container, refresh) {
  const { attempts } = await api("deliveries-attempts", { delivery_id: delivery.id });
  const note = h("div", { role: "status", "aria-live": "polite" });
  const retry = h("button", { type: "button", class: "primary" }, "Retry");
  retry.addEventListener("click", async () => {
    try {
      await api("deliveries-retry", { id: delivery.id });
      note.className = "notice ok";
      note.textContent = "Queued for another attempt.";
      setTimeout(async () => {
        await refresh();
        const latest = await api("deliveries-get", { id: delivery.id });
        showAttempts(latest.delivery, container, refresh);
      }, 800);
    } catch (error) {
      note.className = "notice bad";
      note.textContent = error.message;
    }
  });
  container.replaceChildren(h("div", { class: "card" },
    h("div", { class: "page-head" }, h("h2", {}, `Attempts of ${delivery.event_type} (${delivery.status})`), retry), note,
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["#", "Started", "Status code", "Duration", "Response"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, attempts.map((a) => h("tr", { "data-attempt": a.attempt_number },
        h("td", {}, a.attempt_number, a.manual ? " (manual)" : ""), h("td", {}, time(a.started_at)),
        h("td", {}, a.http_status_code ?? a.error_kind), h("td", {}, `${a.duration_ms} ms`),
        h("td", {}, h("pre", { class: "excerpt" }, a.response_excerpt || a.error_message || (a.payload_expired ? "(deleted by retention)" : ""))))))))));
}

// ---------------------------------------------------------------- routing

const ROUTES = { "#/integrations": integrationsView, "#/mailers": mailersView, "#/webhooks": webhooksView, "#/deliveries": deliveriesView };

async function render() {
  closeModal();
  const signedIn = Boolean(sessionStorage.getItem(TOKEN_KEY));
  document.querySelector(".topbar").hidden = !signedIn;
  if (!signedIn) {
    app.replaceChildren(signInView());
    app.querySelector("input").focus();
    return;
  }
  if (!ROUTES[location.hash]) {
    location.hash = "#/integrations";
    return;
  }
  document.querySelectorAll("nav a").forEach((a) => {
    if (a.getAttribute("href") === location.hash) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  try {
    await refreshWorkspaces();
    app.replaceChildren(await ROUTES[location.hash]());
  } catch (error) {
    app.replaceChildren(h("div", { class: "form-error", role: "alert" }, error.message));
  }
}

window.addEventListener("hashchange", render);
// Following the link of the page already shown (e.g. from an open form) goes back to its list.
document.querySelector("nav").addEventListener("click", (event) => {
  if (event.target.closest("a")?.getAttribute("href") === location.hash) render();
});
render();
