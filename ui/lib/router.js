// Routing: one screen per `#/…` address; drawing it again after each change.

import { TOKEN_KEY } from "./api.js";
import { app, h } from "./dom.js";
import { closeModal } from "./modal.js";
import { refreshWorkspaces } from "./session.js";
import { signInView } from "../screens/signin.js";

const ROUTES = {};

/** Adds the screen drawn at `hash` (an async function returning its element). */
export function route(hash, view) {
  ROUTES[hash] = view;
}

export async function render() {
  closeModal();
  const signedIn = Boolean(sessionStorage.getItem(TOKEN_KEY));
  document.querySelector(".topbar").hidden = !signedIn;
  if (!signedIn) {
    app.replaceChildren(signInView());
    app.querySelector("input").focus();
    return;
  }
  if (!ROUTES[location.hash]) {
    location.hash = Object.keys(ROUTES)[0];
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
