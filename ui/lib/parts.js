// Parts the screens share: field-mapping rows, workspace toggles, event checkboxes, the link
// from a target to its deliveries.

import { h, nextId, select, textInput, TRASH_ICON } from "./dom.js";
import { confirmThen } from "./modal.js";
import { confinedWorkspace } from "./portal.js";
import { cache, currentWorkspace } from "./session.js";

/** Mapping rows "Webhook field → Source field": a text input (output key) and a dropdown of the
 * 43 source fields, with a trash button; new rows start empty. On a phone each row stacks. */
export function mappingEditor({ legend, outputLabel, rows, onChange }) {
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
    const el = h("div", { class: "mapping-row" }, cell(outputLabel, output), h("span", { class: "arrow", "aria-hidden": "true" }, "→"),
      cell("Source field", source, "second"), remove, error);
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

/** A mapping row's input with its caption, shown only where the row stacks (on a phone), when
 * the column headings are hidden. */
export function cell(caption, input, extra = "") {
  return h("div", { class: `cell ${extra}` }, h("span", { class: "cell-label", "aria-hidden": "true" }, caption), input);
}

/** "Available in Workspaces": one switch per workspace, and Select All; in a portal confined to
 * one workspace, that workspace, said in words. */
export function workspaceToggles(item) {
  const confined = confinedWorkspace();
  if (confined) {
    const name = cache.workspaces.find((w) => w.id === confined)?.name || "this workspace";
    return {
      el: h("fieldset", { "data-field": "workspaces" }, h("legend", {}, "Available in Workspaces"), h("p", { class: "meta" }, `${name} only.`)),
      value: () => ({ all_workspaces: false, workspaces: [confined] }),
    };
  }
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

/** Saves at once, unless `scope` (a workspaceToggles value) is no workspace at all: that is
 * asked first, since nothing would reach it. */
export function confirmWorkspaces(scope, save) {
  if (scope.all_workspaces || scope.workspaces.length) return save();
  confirmThen("It is available in no workspace, so no event will reach it. Save it anyway?", save,
    { title: "Available in no workspace", confirm: "Save anyway", dismiss: "Choose workspaces", tone: "primary" });
}

/** Event checkboxes: the account's own events, then the operational ones (about deliveries
 * themselves) in a group apart. */
export function eventChecks(selected, legend = "Events") {
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

/** "Send trace context": whether a target's requests carry their attempt's W3C `traceparent`. */
export function traceToggle(on) {
  const box = h("input", { type: "checkbox", checked: on });
  const hint = h("span", { class: "hint", id: nextId("hint") },
    "Each request carries the W3C traceparent header of its attempt, so the receiver's traces continue this server's. Needs traces exported (--otlp-endpoint).");
  box.setAttribute("aria-describedby", hint.id);
  const el = h("div", { class: "field", "data-field": "propagate_trace" }, h("label", { class: "check" }, box, "Send trace context"), hint);
  return { el, value: () => box.checked };
}

/** The link from a target (endpoint, integration, mailer, destination) to its deliveries. */
export function deliveriesLink(targetId, name) {
  return h("a", { class: "button", href: `#/deliveries/target/${targetId}`, "aria-label": `Deliveries of ${name}` }, "Deliveries");
}
