// The suppression list (issue 18): addresses the account's mailers never send to again, because
// a provider reported a hard bounce or a complaint, or by hand. Search, add, remove.

import { api } from "../lib/api.js";
import { clearErrors, field, formError, h, pageHead, shortTime, showFormError, textInput } from "../lib/dom.js";
import { confirmThen } from "../lib/modal.js";
import { render } from "../lib/router.js";
import { cache, mailProviders } from "../lib/session.js";

const PAGE = 50;
const REASONS = { hard_bounce: "Hard bounce", complaint: "Complaint", manual: "Added by hand" };

export async function suppressionsView() {
  await mailProviders();
  const mailers = new Map((await api("mailers-list")).mailers.map((m) => [m.id, m.name]));
  const page = h("section", {}, pageHead("Suppressions", h("a", { class: "button", href: "#/mailers" }, "Back to Mailer Integrations")),
    h("p", { class: "meta" }, "Mail to these addresses ends without being sent: the provider reported a hard bounce or a spam complaint, or someone added it. Soft bounces are never suppressed. Remove an address to send to it again."));
  const list = h("div", { "data-role": "suppressions" });
  const search = h("input", { type: "search", placeholder: "Part of an address" });
  const filters = h("form", { class: "filters suppression-search", role: "search", onsubmit: (e) => { e.preventDefault(); draw(); } },
    field("Search addresses", search), h("div", { class: "form-actions" }, h("button", { type: "submit" }, "Search")));
  const draw = async () => list.replaceChildren(await suppressionList(search.value.trim(), mailers));
  page.append(addForm(), filters, list);
  await draw();
  return page;
}

/** The page of suppressions matching `address`, with more on demand. */
async function suppressionList(address, mailers) {
  const rows = h("div");
  const more = h("button", { type: "button" }, "Load more");
  const pager = h("div", { class: "pager" }, more);
  let cursor = null;
  const add = (found) => {
    rows.append(...found.suppressions.map((s) => suppressionRow(s, mailers)));
    cursor = found.next_cursor;
    pager.hidden = !cursor;
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    add(await api("suppressions-list", { address, cursor, limit: PAGE }));
    more.disabled = false;
  });
  const first = await api("suppressions-list", { address, limit: PAGE });
  if (!first.suppressions.length) {
    return h("div", { class: "card placeholder" }, h("h2", {}, address ? "No suppressed address matches" : "No suppressed addresses"),
      h("p", {}, address ? `Nothing on the list contains "${address}".`
        : "Hard bounces and complaints your providers report to the mailers' event webhooks appear here."));
  }
  add(first);
  return h("div", {}, rows, pager);
}

function suppressionRow(s, mailers) {
  const provider = cache.providers.find((p) => p.provider === s.provider)?.title;
  const source = s.provider ? `Reported by ${provider}${s.mailer_id ? ` to ${mailers.get(s.mailer_id) || "a deleted mailer"}` : ""}` : "Added by hand";
  const remove = h("button", { type: "button", class: "danger", "aria-label": `Remove ${s.address}` }, "Remove");
  remove.addEventListener("click", () => confirmThen(`Remove ${s.address} from the suppression list? Mail will be sent to it again.`, async () => {
    await api("suppressions-delete", { address: s.address });
    render();
  }, { title: "Remove suppression", confirm: "Remove" }));
  return h("div", { class: "card list-row", "data-suppression": s.address },
    h("div", { class: "grow" }, h("strong", {}, s.address),
      h("div", { class: "meta" }, `${source} · first ${shortTime(s.first_seen)} · last ${shortTime(s.last_event)}`),
      s.detail ? h("div", { class: "meta" }, s.detail) : null),
    h("span", { class: `badge ${s.reason === "manual" ? "pending" : "bad"}` }, REASONS[s.reason] || s.reason),
    h("div", { class: "actions" }, remove));
}

function addForm() {
  const address = h("input", { type: "email", autocomplete: "off" });
  const note = textInput("", { maxlength: "500" });
  const form = h("form", { class: "panel", novalidate: true, "aria-labelledby": "suppress-title" },
    h("h2", { id: "suppress-title" }, "Suppress an address"), formError(),
    field("Address", address, { name: "address" }), field("Note (optional)", note, { name: "note" }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary" }, "Suppress")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      await api("suppressions-create", { address: address.value, note: note.value || null });
      render();
    } catch (error) {
      showFormError(form, error, { "suppressions.invalid_address": "address" });
    }
  });
  return form;
}
