// Building the page: elements, labelled fields and their errors, and small formatters.

export const app = document.getElementById("app");

/** Creates an element: h("button", {class: "primary", onclick}, "Save"). */
export function h(tag, attrs = {}, ...children) {
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

export const TRASH_ICON = '<svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"><path d="M3 6h18M8 6V4h8v2M6 6l1 14h10l1-14M10 11v6M14 11v6"/></svg>';

let uid = 0;
export const nextId = (prefix) => `${prefix}-${++uid}`;

/** A labelled input with a place for its error; `input` gets an id tied to the label. */
export function field(label, input, { hint, name } = {}) {
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

export function textInput(value = "", attrs = {}) {
  return h("input", { type: "text", value, ...attrs });
}

export function select(options, value, attrs = {}) {
  const el = h("select", attrs, options.map(([v, label]) => h("option", { value: v }, label)));
  if (value !== undefined && value !== null) el.value = value;
  return el;
}

/** Shows API errors next to the field they concern (by code, or by a field named in the message). */
export function showFormError(form, error, fieldsByCode = {}) {
  clearErrors(form);
  // "mapping row 2: …" and "rules[1]: …" concern one row of an editor: mark that row.
  const mappingRow = /mapping row (\d+)/.exec(error.message);
  const rule = /^rules\[(\d+)\]/.exec(error.message);
  const [editor, n] = mappingRow ? [form.querySelector("[data-field=mapping]"), Number(mappingRow[1])]
    : rule ? [form.querySelector("[data-field=rules]"), Number(rule[1]) + 1] : [null, 0];
  if (editor?.markRow?.(n, error.message)) return;
  // "receiver_auth: headers[0]: …", "receiver_auth.oauth2.token_url: …": the Authentication section's field.
  if (/^receiver_auth[:.]/.test(error.message) && form.querySelector("[data-field=receiver_auth]")?.markError?.(error.message)) return;
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

export function clearErrors(form) {
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  form.querySelectorAll(".field-error").forEach((el) => (el.textContent = ""));
  form.querySelectorAll(".mapping-row.invalid, .rule.invalid").forEach((el) => el.classList.remove("invalid"));
  const banner = form.querySelector(".form-error");
  if (banner) banner.hidden = true;
}

export function formError() {
  return h("div", { class: "form-error", role: "alert", tabindex: "-1", hidden: true });
}


export const time = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
/** A time for tables: "Dec 2, 18:24". */
export const shortTime = (iso) => (iso
  ? new Date(iso).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" })
  : "—");

/** A number with its label, in a tile whose edge is coloured by `kind`. */
export function statTile(label, value, kind) {
  return h("div", { class: `stat ${kind || ""}`, "data-stat": kind || label },
    h("span", { class: "stat-value" }, value.toLocaleString()), h("span", { class: "stat-label" }, label));
}

export function pageHead(title, ...actions) {
  return h("div", { class: "page-head" }, h("h1", {}, title), h("div", { class: "actions" }, actions));
}
