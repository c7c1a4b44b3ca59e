// What the signed-in tab keeps: the catalogs read once, the workspaces, the chosen workspace.

import { api, TOKEN_KEY } from "./api.js";
import { h } from "./dom.js";
import { confinedWorkspace } from "./portal.js";
import { render } from "./router.js";

const WORKSPACE_KEY = "switchyard.workspace";

export const cache = { fields: null, kinds: null, providers: null, eventTypes: null, workspaces: [] };

async function load(name, call, key) {
  if (!cache[name]) cache[name] = (await api(call))[key];
  return cache[name];
}
export const sourceFields = () => load("fields", "integrations-fields-list", "fields");
export const integrationKinds = () => load("kinds", "integration-kinds-list", "kinds");
export const mailProviders = () => load("providers", "mailer-providers-list", "providers");
export const eventTypes = () => load("eventTypes", "event-types-list", "event_types");

export function currentWorkspace() {
  return confinedWorkspace() || sessionStorage.getItem(WORKSPACE_KEY) || "";
}

/** Whether an object available in `workspaces`/`all_workspaces` shows in the current workspace. */
export function inCurrentWorkspace(item) {
  const ws = currentWorkspace();
  return !ws || item.all_workspaces || (item.workspaces || []).includes(ws);
}

export async function refreshWorkspaces() {
  cache.workspaces = (await api("workspaces-list")).workspaces;
  const switcher = document.getElementById("workspace-switcher");
  switcher.replaceChildren(h("option", { value: "" }, "All workspaces"),
    ...cache.workspaces.map((w) => h("option", { value: w.id }, w.name)));
  switcher.value = cache.workspaces.some((w) => w.id === currentWorkspace()) ? currentWorkspace() : "";
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(WORKSPACE_KEY);
  Object.keys(cache).forEach((k) => (cache[k] = k === "workspaces" ? [] : null));
  render();
}

export function chooseWorkspace(id) {
  sessionStorage.setItem(WORKSPACE_KEY, id);
}
