// Access: the account's API tokens (create with a scope and an expiry, the token shown once;
// revoke) and its audit trail (every change of configuration: who, when, what, the fields sent
// with secrets masked), paged by cursor.

import { api } from "../lib/api.js";
import { clearErrors, field, formError, h, pageHead, select, shortTime, showFormError, textInput } from "../lib/dom.js";
import { confirmThen } from "../lib/modal.js";
import { render } from "../lib/router.js";

const SCOPES = [["full", "Full access"], ["read_only", "Read only"], ["events_send", "Send events only"]];
const SCOPE_TITLE = Object.fromEntries(SCOPES);
const LIFETIMES = [["", "Never"], [String(30 * 86400), "30 days"], [String(90 * 86400), "90 days"], [String(365 * 86400), "1 year"]];
const AUDIT_PAGE = 25;
const FIELD_ERRORS = { "tokens.invalid_request": "name" };

export async function accessView() {
  return h("section", {}, pageHead("Access"),
    h("p", { class: "meta intro" }, "Who can call the API for this account, and every change made to its configuration."),
    await tokensPanel(), await auditPanel());
}

async function tokensPanel() {
  const panel = h("section", { class: "panel", "aria-labelledby": "tokens-title" }, h("h2", { id: "tokens-title" }, "API tokens"));
  let tokens;
  try {
    ({ tokens } = await api("tokens-list"));
  } catch (error) {
    if (error.code !== "auth.forbidden") throw error;
    panel.append(h("p", { class: "notice warn" }, "Managing tokens takes a token with full access; this one can only read."));
    return panel;
  }
  const shown = h("div", { "aria-live": "polite", "data-role": "new-token" });
  panel.append(createForm(shown), shown);
  if (!tokens.length) {
    panel.append(h("p", { class: "meta" }, "No tokens yet."));
    return panel;
  }
  panel.append(h("div", { class: "table-wrap" }, h("table", { class: "stack-table tokens-table" },
    h("thead", {}, h("tr", {}, ["Name", "Access", "Token", "Created", "Expires", "Last used", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, tokens.map(tokenRow)))));
  return panel;
}

function createForm(shown) {
  const name = textInput("", { placeholder: "Backend" });
  const scope = select(SCOPES, "full");
  const lifetime = select(LIFETIMES, "");
  const form = h("form", { class: "inline-form", novalidate: true, "aria-label": "Create a token" }, formError(),
    field("Token name", name, { name: "name" }), field("Access", scope), field("Expires", lifetime),
    h("button", { type: "submit", class: "primary" }, "Create token"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      const made = await api("tokens-create", { name: name.value, scope: scope.value, expires_in: lifetime.value ? Number(lifetime.value) : undefined });
      await render();
      showOnce(document.querySelector("[data-role=new-token]") || shown, made);
    } catch (error) {
      showFormError(form, error, FIELD_ERRORS);
    }
  });
  return form;
}

/** The new token, shown only this once, with a button that copies it. */
function showOnce(slot, made) {
  const value = h("input", { type: "text", readonly: true, value: made.token, "aria-label": `The new token "${made.info.name}"`, class: "mono" });
  const copy = h("button", { type: "button" }, "Copy");
  copy.addEventListener("click", async () => {
    value.select();
    await navigator.clipboard?.writeText(made.token).catch(() => {});
    copy.textContent = "Copied";
  });
  slot.replaceChildren(h("div", { class: "notice ok token-once" },
    h("p", {}, h("strong", {}, `Token "${made.info.name}" created. `), "Copy it now: it is not shown again."),
    h("div", { class: "copy-row" }, value, copy)));
  value.focus();
  value.select();
}

function tokenRow(t) {
  const revoke = h("button", { type: "button", class: "danger", "aria-label": `Revoke the token "${t.name}"` }, "Revoke");
  revoke.addEventListener("click", () => confirmThen(`Revoke the token "${t.name}" (${t.prefix})? Calls made with it fail from now on.`, async () => {
    await api("tokens-revoke", { id: t.id });
    render();
  }, { title: "Revoke token", confirm: "Revoke" }));
  return h("tr", { "data-token": t.id },
    h("td", { "data-label": "Name" }, h("strong", {}, t.name)),
    h("td", { "data-label": "Access" }, SCOPE_TITLE[t.scope] || t.scope),
    h("td", { "data-label": "Token", class: "mono" }, t.prefix || "—"),
    h("td", { "data-label": "Created" }, shortTime(t.created_at)),
    h("td", { "data-label": "Expires" }, t.expires_at ? shortTime(t.expires_at) : "Never"),
    h("td", { "data-label": "Last used" }, t.last_used_at ? shortTime(t.last_used_at) : "Never"),
    h("td", {}, revoke));
}

async function auditPanel() {
  const body = h("tbody");
  const more = h("button", { type: "button" }, "Load older changes");
  const pager = h("div", { class: "pager" }, more);
  let cursor = null;
  const add = (page) => {
    body.append(...page.entries.map(auditRow));
    cursor = page.next_cursor;
    pager.hidden = !cursor;
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    add(await api("audit-list", { limit: AUDIT_PAGE, cursor }));
    more.disabled = false;
  });
  const first = await api("audit-list", { limit: AUDIT_PAGE });
  const panel = h("section", { class: "panel", "aria-labelledby": "audit-title" }, h("h2", { id: "audit-title" }, "Audit log"));
  if (!first.entries.length) {
    panel.append(h("p", { class: "meta" }, "No changes yet. Creating, changing or deleting anything in this account is recorded here."));
    return panel;
  }
  add(first);
  panel.append(h("div", { class: "table-wrap" }, h("table", { class: "stack-table audit-table" },
    h("thead", {}, h("tr", {}, ["When", "Who", "Change", "Details"].map((t) => h("th", { scope: "col" }, t)))), body)), pager);
  return panel;
}

/** "webhooks-rotate-secret" → "Webhooks: rotate secret". */
function changeTitle(action) {
  const [resource, ...verb] = action.split("-");
  return `${resource[0].toUpperCase()}${resource.slice(1)}: ${verb.join(" ")}`;
}

function auditRow(e) {
  const who = e.actor.kind === "operator" ? "The platform (operator)" : e.actor.kind === "portal" ? "Portal session" : `Token "${e.actor.name}"`;
  // Filed before its change; unconfirmed when the server stopped while making it.
  const unconfirmed = e.confirmed ? null : h("span", { class: "badge warn", "data-role": "unconfirmed",
    title: "The server stopped while making this change (or is still making it): it may or may not have been made." }, "Unconfirmed");
  const fields = Object.keys(e.fields || {}).length ? JSON.stringify(e.fields, null, 2) : "";
  return h("tr", { "data-audit": e.id },
    h("td", { "data-label": "When" }, shortTime(e.at)),
    h("td", { "data-label": "Who" }, who),
    h("td", { "data-label": "Change" }, changeTitle(e.action), " ", unconfirmed, e.subject_id ? h("div", { class: "meta mono" }, e.subject_id) : null),
    h("td", { "data-label": "Details" }, fields ? h("details", {}, h("summary", {}, "Fields sent"), h("pre", { class: "fields" }, fields)) : "—"));
}
