// A mailer's rules: which event sends which template to the address in which source field.
// Without a rule a verified mailer sends only what the API asks (mailers-send), so the form
// says so.

import { field, h, nextId, select, textInput, TRASH_ICON } from "../lib/dom.js";
import { cache } from "../lib/session.js";

// Providers that keep templates themselves, and what their template ids look like.
const STORED_TEMPLATE_HINTS = {
  amazon_ses: "The name of a template stored in Amazon SES.",
  brevo: "The template's number in Brevo.",
  mailgun: "The name of a template stored in Mailgun.",
  mailjet: "The template's number in Mailjet.",
  mandrill: "The template's name (slug) in Mandrill.",
  sendgrid: "A dynamic template id, such as d-1234abcd….",
};

/** The rules editor of a mailer of `provider`: one box per rule, "+ Add Rule", and what a rule
 * error ("rules[1]: …") concerns marked on its rule. */
export function rulesEditor(provider, rules) {
  const list = h("div", { class: "rules" });
  const empty = h("p", { class: "meta" }, "No rules: this mailer sends only the e-mails your application asks for through the API (mailers-send).");
  const renumber = () => {
    empty.hidden = list.children.length > 0;
    [...list.children].forEach((box, i) => (box.querySelector(".rule-title").textContent = `Rule ${i + 1}`));
  };
  const add = (rule) => {
    const box = ruleBox(provider, rule, () => { box.remove(); renumber(); });
    list.append(box);
    renumber();
    return box;
  };
  rules.forEach(add);
  const addButton = h("button", { type: "button", onclick: () => add().querySelector("select").focus() }, "+ Add Rule");
  const wrap = h("fieldset", { "data-field": "rules", id: nextId("rules"), tabindex: "-1", class: "rules-editor" },
    h("legend", {}, "Rules"),
    h("p", { class: "hint" }, "When an event arrives in a workspace this mailer is available in, send a template to the address in a field of the event's data."));
  wrap.append(h("span", { class: "field-error", id: `${wrap.id}-error`, role: "alert" }), empty, list, addButton);
  renumber();
  /** Marks rule `n` (from 1) with the message; false when there is no such rule. */
  wrap.markRow = (n, message) => {
    const box = list.children[n - 1];
    if (!box) return false;
    box.classList.add("invalid");
    const slot = box.querySelector(".row-error");
    slot.textContent = message.replace(/^rules\[\d+\]: /, "");
    // Focus what the message is about: the template's part, or else the event.
    const about = /template|subject|body/.test(message) ? ".template-part:not([hidden]) :is(input, textarea)" : "select";
    box.querySelector(about).focus();
    return true;
  };
  /** Rules without an event, marked before anything is sent; true when every rule has one. */
  const validate = () => {
    const missing = [...list.children].findIndex((box) => !box.value().event_type);
    return missing < 0 || !wrap.markRow(missing + 1, "choose the event that sends it");
  };
  return { el: wrap, value: () => [...list.children].map((box) => box.value()), validate };
}

function ruleBox(provider, rule = {}, onRemove) {
  const stored = typeof rule.template === "string";
  const inline = rule.template && !stored ? rule.template : {};
  const events = eventSelect(rule.event_type || "");
  const recipient = select(cache.fields.map((f) => [f.key, f.display_name]), rule.recipient_field || "email");
  const canStore = provider in STORED_TEMPLATE_HINTS;
  const mode = select([["stored", "Stored at the provider"], ["inline", "Written here"]],
    canStore && (stored || !rule.template) ? "stored" : "inline");
  const templateId = textInput(stored ? rule.template : "", { placeholder: provider === "sendgrid" ? "d-…" : "" });
  const subject = textInput(inline.subject || "");
  const text = h("textarea", { rows: 4 }, inline.text || "");
  const html = h("textarea", { rows: 3, class: "code" }, inline.html || "");
  const storedPart = h("div", { class: "template-part" }, field("Template ID", templateId, { hint: STORED_TEMPLATE_HINTS[provider] }));
  const inlinePart = h("div", { class: "template-part" }, field("Subject", subject),
    field("Text body", text, { hint: "{{firstName}}, {{email}}…: replaced by the event's values." }),
    field("HTML body (optional)", html));
  const showMode = () => {
    storedPart.hidden = mode.value !== "stored";
    inlinePart.hidden = mode.value !== "inline";
  };
  mode.addEventListener("change", showMode);
  showMode();
  const remove = h("button", { type: "button", class: "link danger icon", "aria-label": "Remove rule", title: "Remove rule", onclick: onRemove });
  remove.innerHTML = TRASH_ICON;
  const error = h("span", { class: "field-error row-error", role: "alert" });
  const box = h("div", { class: "rule", "data-rule": "" },
    h("div", { class: "rule-head" }, h("strong", { class: "rule-title" }), remove),
    h("div", { class: "grid2" }, field("When this event arrives", events), field("Send to the address in", recipient)),
    canStore ? field("Template", mode) : null,
    storedPart, inlinePart, error);
  box.addEventListener("input", () => { box.classList.remove("invalid"); error.textContent = ""; });
  box.value = () => ({
    event_type: events.value,
    recipient_field: recipient.value,
    template: mode.value === "stored" ? templateId.value.trim()
      : { subject: subject.value, text: text.value || null, html: html.value || null },
  });
  return box;
}

/** The account's event types, its own first, the operational ones in a group apart. */
function eventSelect(value) {
  const option = (t) => h("option", { value: t.name }, t.name);
  const el = h("select", {},
    h("option", { value: "" }, "Choose an event…"),
    h("optgroup", { label: "Your events" }, cache.eventTypes.filter((t) => !t.operational).map(option)),
    h("optgroup", { label: "Operational events" }, cache.eventTypes.filter((t) => t.operational).map(option)));
  el.value = value;
  return el;
}
