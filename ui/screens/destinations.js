// Query destinations (seed 004): a base URL with static query parameters, a method, and dynamic
// parameters taken from each record's columns; the URL one sample record produces, built as the
// user types; starting an activation by uploading a file; the Running History of every run.

import { api, upload } from "../lib/api.js";
import { app, clearErrors, field, formError, h, nextId, pageHead, select, showFormError, textInput, TRASH_ICON } from "../lib/dom.js";
import { closeModal, confirmThen, openModal } from "../lib/modal.js";
import { cell, confirmWorkspaces, deliveriesLink, eventChecks, traceToggle, workspaceToggles } from "../lib/parts.js";
import { receiverAuthEditor } from "../lib/receiver-auth.js";
import { go, render } from "../lib/router.js";
import { eventTypes, inCurrentWorkspace } from "../lib/session.js";
import { activationRow, historyTable, syncSummary } from "./activations.js";

// Seed 004's methods, each with what it is for.
const METHODS = [["POST", "POST (recommended)"], ["PUT", "PUT"], ["PATCH", "PATCH"], ["DELETE", "DELETE"]];
const METHOD_HINTS = {
  POST: "Creates a record, triggers an event or sends a notification.",
  PUT: "Replaces an existing resource: update a full object or overwrite a record.",
  PATCH: "Partially updates a resource: modify a specific field of a record.",
  DELETE: "Removes a resource: delete or deactivate an entity remotely.",
};
const HISTORY_PAGE = 50;
// The most runs the API lists at once: each destination's count and the history come from them.
const MAX_RUNS = 1000;
const FIELD_ERRORS = {
  "destinations.url_required": "url",
  "destinations.invalid_url": "url",
  "destinations.workspace_not_found": "workspaces",
  "destinations.unknown_event_type": "events",
};

/** A record's value as the server puts it in a query string (domain::mapping::as_text). */
function asText(value) {
  if (typeof value === "string") return value;
  if (value === null) return "";
  if (Array.isArray(value)) return value.map(asText).join(";");
  return JSON.stringify(value);
}

/** The URL one record produces: the base URL with its own query kept, then each dynamic
 * parameter whose column the record has, form-encoded (domain::destination::request_url). */
export function previewUrl(base, params, record) {
  const url = new URL(base);
  const pairs = new URLSearchParams();
  for (const { column, query_key: key } of params) {
    if (!column || !key) continue;
    const value = record[column];
    if (value === undefined || value === null) continue;
    pairs.append(key, asText(value));
  }
  const extra = pairs.toString();
  if (extra) {
    const own = url.search.slice(1);
    url.search = own ? `${own}&${extra}` : extra;
  }
  return url.href;
}

/** A sample value for a column, guessed from its name. */
function sampleValue(column) {
  if (/e-?mail/i.test(column)) return "jane@example.com";
  if (/(^|[._])id$/i.test(column)) return 123;
  if (/name/i.test(column)) return "Jane Doe";
  return "example";
}

// ---------------------------------------------------------------- list

export async function destinationsView() {
  await eventTypes();
  const [{ destinations }, { activations }] = await Promise.all([api("destinations-list"), api("activations-list", { limit: MAX_RUNS })]);
  const shown = destinations.filter(inCurrentWorkspace);
  const add = () => h("button", { type: "button", class: "primary", onclick: () => showDestinationForm() }, "Add Destination");
  const page = h("section", {}, pageHead("Query Destinations", add()));
  if (!shown.length) {
    page.append(h("div", { class: "card placeholder" }, h("h2", {}, "No query destinations yet"),
      h("p", {}, "Send one HTTP request per record to any URL, with static and record-based query parameters."), add()));
  }
  for (const destination of shown) {
    const runs = activations.filter((a) => a.destination_id === destination.id);
    page.append(h("div", { class: "card list-row", "data-destination": destination.id },
      h("div", { class: "grow" }, h("strong", {}, destination.name),
        h("div", { class: "meta url-line" }, h("span", { class: "method" }, destination.method), " ", destination.url),
        h("div", { class: "meta" }, [
          `${destination.query_params.length} dynamic parameter${destination.query_params.length === 1 ? "" : "s"}`,
          destination.events.length ? `triggered by ${destination.events.join(", ")}` : "activations only",
          `${runs.length}${activations.length === MAX_RUNS ? "+" : ""} activation${runs.length === 1 ? "" : "s"}`,
        ].join(" · "))),
      h("span", { class: `badge ${destination.is_active ? "ok" : ""}` }, destination.is_active ? "Active" : "Paused"),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "primary", onclick: () => startActivation(destination) }, "Activate"),
        deliveriesLink(destination.id, destination.name),
        h("button", { type: "button", onclick: () => showDestinationForm(destination) }, "Edit"),
        h("button", { type: "button", class: "danger", onclick: () => confirmThen(
          `Delete "${destination.name}"? Its ${runs.length}${activations.length === MAX_RUNS ? "+" : ""} activation${runs.length === 1 ? "" : "s"} and delivery log go too.`,
          async () => {
            await api("destinations-delete", { id: destination.id });
            render();
          }) }, "Delete"))));
  }
  const names = Object.fromEntries(destinations.map((d) => [d.id, d.name]));
  const history = h("section", { class: "history", "aria-labelledby": "history-title" },
    h("h2", { id: "history-title" }, "Running History"));
  if (activations.length) {
    const rows = h("tbody");
    // The newest runs first, older ones on demand.
    const more = h("button", { type: "button", class: "more" }, "Show older runs");
    const fill = () => {
      const shown = rows.children.length;
      rows.append(...activations.slice(shown, shown + HISTORY_PAGE).map((a) => activationRow(a, names[a.destination_id])));
      more.hidden = rows.children.length >= activations.length;
      return shown;
    };
    more.addEventListener("click", () => rows.children[fill()]?.querySelector("a")?.focus());
    history.append(historyTable(rows), h("div", { class: "pager" }, more));
    fill();
  } else {
    history.append(h("p", { class: "meta" }, "No activations yet: choose Activate on a destination and upload a CSV, NDJSON or JSON file of records."));
  }
  page.append(history);
  return page;
}

// ---------------------------------------------------------------- form

/** Dynamic query parameters: rows "Column → Query key" with a trash button. */
function paramRows(rows, onChange) {
  const list = h("div", { class: "mapping-rows" });
  const head = h("div", { class: "mapping-head", "aria-hidden": "true" },
    h("span", {}, "Column"), h("span", { class: "arrow" }, "→"), h("span", {}, "Query key"), h("span"));
  const current = () => [...list.children].map((row) => ({
    column: row.querySelector("[data-role=column]").value.trim(),
    query_key: row.querySelector("[data-role=key]").value.trim(),
  }));
  const changed = () => {
    head.hidden = !list.children.length;
    onChange();
  };
  const addRow = (row = {}) => {
    const errorId = nextId("row-error");
    const column = textInput(row.column || "", { "aria-label": "Column", placeholder: "contacts.email", "data-role": "column", "aria-describedby": errorId });
    const key = textInput(row.query_key || "", { "aria-label": "Query key", placeholder: "email", "data-role": "key", "aria-describedby": errorId });
    const remove = h("button", { type: "button", class: "link danger icon", "aria-label": "Remove query parameter", title: "Remove" });
    remove.innerHTML = TRASH_ICON;
    const error = h("span", { class: "field-error row-error", id: errorId });
    const el = h("div", { class: "mapping-row" }, cell("Column", column), h("span", { class: "arrow", "aria-hidden": "true" }, "→"),
      cell("Query key", key, "second"), remove, error);
    for (const input of [column, key]) {
      input.addEventListener("input", () => {
        el.classList.remove("invalid");
        el.querySelectorAll("[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
        error.textContent = "";
        changed();
      });
    }
    remove.addEventListener("click", () => { el.remove(); changed(); });
    list.append(el);
    changed();
    return el;
  };
  const wrap = h("fieldset", { "data-field": "query_params", id: nextId("params"), tabindex: "-1", class: "mapping" },
    h("legend", {}, "Query parameters"),
    h("p", { class: "hint" }, "Each record's column value is added to the URL under the query key."));
  wrap.append(h("span", { class: "field-error", id: `${wrap.id}-error`, role: "alert" }), head, list,
    h("button", { type: "button", onclick: () => addRow().querySelector("input").focus() }, "+ Add a mapping"));
  rows.forEach(addRow);
  changed();
  /** Marks row `n` (from 1): the empty one of its two fields, or the column. */
  wrap.markRow = (n, message) => {
    const el = list.children[n - 1];
    if (!el) return false;
    const input = [...el.querySelectorAll("input")].find((i) => !i.value.trim()) || el.querySelector("input");
    el.classList.add("invalid");
    input.setAttribute("aria-invalid", "true");
    const error = el.querySelector(".row-error");
    error.textContent = message.replace(/^query_params\[\d+\]: /, "");
    error.setAttribute("role", "alert");
    input.focus();
    return true;
  };
  return { el: wrap, rows: current };
}

function showDestinationForm(existing) {
  const d = existing || { name: "", url: "", method: "POST", query_params: [], events: [] };
  const name = textInput(d.name, { placeholder: "Webhook destination" });
  const url = h("input", { type: "url", value: d.url, placeholder: "https://example.com/webhook?foo=bar" });
  const method = select(METHODS, d.method);
  const rateLimit = h("input", { type: "number", min: "1", max: "100000", value: d.rate_limit ?? "", placeholder: "No limit" });
  const sample = h("textarea", { rows: "4", spellcheck: "false", class: "code" });
  let sampleEdited = false;
  const preview = h("output", { class: "preview", "data-role": "preview" });
  let params_ = null;
  const refreshPreview = () => {
    if (!params_) return;
    const params = params_.rows();
    if (!sampleEdited) {
      sample.value = JSON.stringify(Object.fromEntries(params.filter((p) => p.column).map((p) => [p.column, sampleValue(p.column)])), null, 1)
        .replace(/\n\s*/g, " ");
    }
    let record;
    try {
      record = JSON.parse(sample.value || "{}");
      if (typeof record !== "object" || record === null || Array.isArray(record)) throw new Error();
    } catch {
      preview.className = "preview bad";
      preview.textContent = "The sample record is not a JSON object.";
      return;
    }
    try {
      preview.className = "preview";
      preview.replaceChildren(h("span", { class: "method" }, method.value), " ", previewUrl(url.value.trim(), params, record));
    } catch {
      preview.className = "preview bad";
      preview.textContent = url.value.trim() ? "The base URL is not a complete URL yet." : "Enter the base URL to see a request.";
    }
  };
  params_ = paramRows(d.query_params, () => refreshPreview());
  sample.addEventListener("input", () => { sampleEdited = true; refreshPreview(); });
  url.addEventListener("input", refreshPreview);
  method.addEventListener("change", () => {
    form.querySelector("[data-field-wrap=method] .hint").textContent = METHOD_HINTS[method.value];
    refreshPreview();
  });
  const events = eventChecks(d.events, "Triggered by");
  const auth = receiverAuthEditor(d.receiver_auth);
  const trace = traceToggle(Boolean(d.propagate_trace));
  const workspaces = workspaceToggles(existing);
  const active = h("input", { type: "checkbox", role: "switch", checked: existing ? existing.is_active : true });

  const form = h("form", { class: "panel", novalidate: true, "aria-labelledby": "form-title" },
    h("h1", { id: "form-title" }, existing ? `Edit Destination · ${existing.name}` : "Add Destination"),
    formError(),
    field("Name", name, { name: "name" }),
    field("Base URL", url, { name: "url", hint: "Where each request goes; static query parameters (?foo=bar) are kept for every record." }),
    h("div", { class: "grid2" },
      field("HTTP Method", method, { name: "method", hint: METHOD_HINTS[method.value] }),
      field("Rate limit (requests per second)", rateLimit, { name: "rate_limit", hint: "Optional; empty for no limit." })),
    params_.el,
    h("fieldset", { class: "preview-box" }, h("legend", {}, "Preview"),
      field("Sample record (JSON)", sample, { name: "sample", hint: "Not saved: only for the preview below." }),
      h("div", { class: "field" }, h("span", { class: "label", id: "preview-label" }, "Request for this record"), preview)),
    auth.el, trace.el, events.el, workspaces.el,
    h("label", { class: "switch" }, "Active", active),
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "primary" }, "Save Changes"),
      h("button", { type: "button", onclick: () => render() }, "Cancel")));
  preview.setAttribute("aria-labelledby", "preview-label");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = {
      name: name.value.trim() || undefined,
      url: url.value.trim(),
      method: method.value,
      query_params: params_.rows(),
      events: events.value(),
      is_active: active.checked,
      rate_limit: rateLimit.value ? Number(rateLimit.value) : null,
      receiver_auth: auth.value(),
      propagate_trace: trace.value(),
      ...workspaces.value(),
    };
    confirmWorkspaces(body, async () => {
      try {
        await api(existing ? "destinations-update" : "destinations-create", existing ? { id: existing.id, ...body } : body);
        go("#/destinations");
      } catch (error) {
        const row = /query_params\[(\d+)\]/.exec(error.message);
        if (row && params_.el.markRow(Number(row[1]) + 1, error.message)) return;
        if (error.message.startsWith("rate_limit")) return showFormError(form, error, { [error.code]: "rate_limit" });
        showFormError(form, error, FIELD_ERRORS);
      }
    });
  });
  app.replaceChildren(form);
  refreshPreview();
  name.focus();
}

// ---------------------------------------------------------------- activate

const FORMATS = [["text/csv", "CSV with a header row"], ["application/x-ndjson", "NDJSON (one JSON object per line)"], ["application/json", "JSON array of objects"]];

function formatOf(file) {
  if (/\.csv$/i.test(file.name) || file.type === "text/csv") return "text/csv";
  if (/\.(ndjson|jsonl)$/i.test(file.name)) return "application/x-ndjson";
  if (/\.json$/i.test(file.name) || file.type === "application/json") return "application/json";
  return "";
}

/** Upload a file of records to start an activation: upload progress, then its live counts. A
 * sync key makes it a sync (Mirror: DELETEs for keys that left); Dry run shows what it would send. */
function startActivation(destination) {
  const file = h("input", { type: "file", accept: ".csv,.ndjson,.jsonl,.json,text/csv,application/json" });
  const format = select([["", "Choose the file's format…"], ...FORMATS], "");
  const syncKey = textInput("", { placeholder: "contacts.id" });
  const mirror = h("input", { type: "checkbox", role: "switch", disabled: true });
  const progress = h("progress", { max: "100", value: "0", "aria-label": "Upload progress" });
  const status = h("p", { class: "meta", role: "status", "aria-live": "polite", "data-role": "upload-status" });
  const progressBox = h("div", { class: "upload-progress", hidden: true }, progress, status);
  const dryRun = h("div", { class: "dry-run", "data-role": "dry-run", "aria-live": "polite", hidden: true });
  const dry = h("button", { type: "button" }, "Dry run");
  const start = h("button", { type: "submit", class: "primary" }, "Start activation");
  file.addEventListener("change", () => {
    const chosen = file.files[0];
    if (chosen && formatOf(chosen)) format.value = formatOf(chosen);
  });
  syncKey.addEventListener("input", () => {
    mirror.disabled = !syncKey.value.trim();
    if (mirror.disabled) mirror.checked = false;
  });
  const form = h("form", { novalidate: true }, formError(),
    h("p", {}, "Sends one ", h("strong", {}, destination.method), " request per record to ", h("code", {}, destination.url), "."),
    field("Records file", file, { name: "file", hint: "CSV with a header row, NDJSON or a JSON array; the columns are the record's keys." }),
    field("Format", format, { name: "format" }),
    field("Sync key (optional)", syncKey, { name: "sync_key", hint: "The column naming each record: only records new or changed since the last run, or rejected then, are sent." }),
    h("label", { class: "switch" }, "Mirror: send DELETE for keys sent before that the file no longer has", mirror),
    progressBox, dryRun,
    h("div", { class: "form-actions end" }, h("button", { type: "button", onclick: closeModal }, "Cancel"), dry, start));
  // The upload's query: the destination and, for a sync, its key and mirror.
  const options = () => ({ destination_id: destination.id, ...(syncKey.value.trim() ? { sync_key: syncKey.value.trim(), mirror: mirror.checked } : {}) });
  const chosenFile = () => {
    clearErrors(form);
    const chosen = file.files[0];
    if (!chosen) showFormError(form, { code: "ui.file", message: "Choose a file of records." }, { "ui.file": "file" });
    else if (!format.value) showFormError(form, { code: "ui.format", message: "Choose the file's format." }, { "ui.format": "format" });
    return chosen && format.value ? chosen : null;
  };
  const sync = { "activations.invalid_request": "sync_key" };
  dry.addEventListener("click", async () => {
    const chosen = chosenFile();
    if (!chosen) return;
    dry.disabled = true;
    try {
      const { preview } = await upload("activations-preview", { ...options(), requests: 5 }, chosen, format.value, null, stop.signal);
      dryRun.replaceChildren(...dryRunView(preview));
      dryRun.hidden = false;
    } catch (error) {
      if (error.code !== "ui.aborted") showFormError(form, error, sync);
    } finally {
      dry.disabled = false;
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = chosenFile();
    if (!chosen) return;
    start.disabled = true;
    progressBox.hidden = false;
    status.textContent = "Uploading… 0%";
    try {
      const { activation } = await upload("activations-create", options(), chosen, format.value, (sent, total) => {
        const percent = total ? Math.floor((sent / total) * 100) : 0;
        progress.value = percent;
        status.textContent = percent < 100 ? `Uploading… ${percent}% of ${size(total)}` : "Uploaded: storing the records…";
      }, stop.signal);
      go(`#/activations/${activation.id}`);
    } catch (error) {
      if (error.code === "ui.aborted") return;
      start.disabled = false;
      progressBox.hidden = true;
      showFormError(form, error, sync);
    }
  });
  // Closing the dialog (Cancel, ✕, Escape) during the upload stops it: nothing is sent.
  const stop = new AbortController();
  openModal(`Activate · ${destination.name}`, form, { onClose: () => stop.abort() });
}

/** A dry run's answer: what would be sent, a sync's counts, the first requests. */
function dryRunView(preview) {
  return [
    h("p", {}, h("strong", {}, `Dry run: ${preview.sends.toLocaleString()} requests would be sent`),
      ` for ${preview.records.toLocaleString()} records; nothing was sent.`),
    preview.sync ? h("p", { class: "meta", "data-role": "dry-run-counts" }, syncSummary(preview.sync)) : null,
    preview.requests.length ? h("ol", { class: "dry-run-requests" },
      preview.requests.map((r) => h("li", {}, h("code", {}, `${r.method} ${r.url}`)))) : null,
  ];
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
