// Workspaces: create, rename and delete the partitions of the account, saying what uses one
// before it is deleted.

import { api } from "../lib/api.js";
import { clearErrors, field, formError, h, pageHead, showFormError, textInput } from "../lib/dom.js";
import { confirmThen } from "../lib/modal.js";
import { render } from "../lib/router.js";
import { cache } from "../lib/session.js";

const FIELD_ERRORS = { "workspaces.name_required": "name", "workspaces.invalid_request": "name" };

/** Everything that can be limited to workspaces, with its kind for the user. */
async function scopedItems() {
  const [{ integrations }, { mailers }, { destinations }] = await Promise.all([api("integrations-list"), api("mailers-list"), api("destinations-list")]);
  return [
    ...integrations.map((i) => ({ ...i, noun: "integration" })),
    ...mailers.map((m) => ({ ...m, noun: "mailer" })),
    ...destinations.map((d) => ({ ...d, noun: "destination" })),
  ];
}

const count = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;

/** "2 integrations, 1 mailer": what a list of items is made of. */
function tally(items) {
  const by = {};
  for (const item of items) by[item.noun] = (by[item.noun] || 0) + 1;
  return ["integration", "mailer", "destination"].filter((n) => by[n]).map((n) => count(by[n], n)).join(", ");
}

export async function workspacesView() {
  const items = await scopedItems();
  const everywhere = items.filter((i) => i.all_workspaces);
  const name = textInput("", { placeholder: "Spring campaign" });
  const create = h("form", { class: "panel inline-form", novalidate: true, "aria-label": "Create a workspace" }, formError(),
    field("New workspace", name, { name: "name" }), h("button", { type: "submit", class: "primary" }, "Create workspace"));
  create.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(create);
    try {
      await api("workspaces-create", { name: name.value });
      render();
    } catch (error) {
      showFormError(create, error, FIELD_ERRORS);
    }
  });
  const page = h("section", {}, pageHead("Workspaces"),
    h("p", { class: "meta intro" }, "An event happens in one workspace; integrations, mailers and destinations are available in the workspaces you choose."),
    create);
  if (!cache.workspaces.length) {
    page.append(h("div", { class: "card placeholder" }, h("h2", {}, "No workspaces yet"),
      h("p", {}, "Without workspaces everything is available everywhere. Create one above to partition the account.")));
    return page;
  }
  for (const workspace of cache.workspaces) {
    const only = items.filter((i) => !i.all_workspaces && (i.workspaces || []).includes(workspace.id));
    const uses = only.length ? `Chosen by ${tally(only)}` : "Not chosen by any integration, mailer or destination";
    const row = h("div", { class: "card list-row", "data-workspace": workspace.id },
      h("div", { class: "grow" }, h("strong", { "data-role": "name" }, workspace.name),
        h("div", { class: "meta" }, `${uses}${everywhere.length ? ` · ${tally(everywhere)} available in every workspace` : ""}`)),
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => rename(row, workspace) }, "Rename"),
        h("button", { type: "button", class: "danger", onclick: () => remove(workspace, only) }, "Delete")));
    page.append(row);
  }
  return page;
}

/** The row becomes a small form: the name, Save and Cancel. */
function rename(row, workspace) {
  const name = textInput(workspace.name);
  const form = h("form", { class: "list-row rename", novalidate: true }, formError(),
    h("div", { class: "grow" }, field(`Rename "${workspace.name}"`, name, { name: "name" })),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save"),
      h("button", { type: "button", onclick: () => render() }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      await api("workspaces-update", { id: workspace.id, name: name.value });
      render();
    } catch (error) {
      showFormError(form, error, FIELD_ERRORS);
    }
  });
  row.replaceChildren(form);
  name.select();
}

/** Asks before deleting, naming what chose the workspace and what would be left in none. */
function remove(workspace, only) {
  const orphans = only.filter((i) => i.workspaces.length === 1);
  const details = only.length
    ? h("div", {},
      h("p", {}, `It is chosen by ${tally(only)}:`),
      h("ul", { class: "uses", "data-role": "uses" }, only.map((i) => h("li", {}, `${i.name} (${i.noun})`,
        orphans.includes(i) ? h("strong", { class: "warn-text" }, " — then available in no workspace") : null))),
      orphans.length ? h("p", { class: "notice warn" }, `${count(orphans.length, "item")} would receive events from no workspace until you choose others.`) : null)
    : h("p", { class: "meta" }, "Nothing has chosen it; integrations, mailers and destinations available in every workspace stay so.");
  confirmThen(`Delete the workspace "${workspace.name}"? Events already sent in it keep its id.`, async () => {
    await api("workspaces-delete", { id: workspace.id });
    render();
  }, { title: "Delete workspace", details });
}
