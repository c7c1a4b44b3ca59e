// Routing: one screen per `#/…` address; drawing it again after each change.

import { TOKEN_KEY } from "./api.js";
import { app, h } from "./dom.js";
import { closeModal } from "./modal.js";
import { refreshWorkspaces } from "./session.js";
import { signInView } from "../screens/signin.js";
import { inPortal, portalEnded } from "./portal.js";

const ROUTES = {};
let drawing = 0;

/** Adds the screen drawn at `hash` and below it (`#/activations/<id>`): an async function given
 * the address's further parts and returning its element. `nav` names the link marked current. */
export function route(hash, view, { nav = hash } = {}) {
  ROUTES[hash] = { view, nav };
}

/** Goes to an address (drawn by the hashchange listener). */
export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

export async function render() {
  closeModal();
  const signedIn = Boolean(sessionStorage.getItem(TOKEN_KEY));
  document.querySelector(".topbar").hidden = !signedIn;
  if (!signedIn) {
    drawing++;
    app.removeAttribute("aria-busy");
    if (inPortal()) {
      app.replaceChildren(portalEnded());
      return;
    }
    app.replaceChildren(signInView());
    app.querySelector("input").focus();
    return;
  }
  // `?…` after the path holds a screen's filters (read by the screen itself).
  const [, name, ...args] = location.hash.split("?")[0].split("/");
  const screen = ROUTES[`#/${name}`];
  if (!screen) {
    location.hash = Object.keys(ROUTES)[0];
    return;
  }
  document.querySelectorAll("nav a").forEach((a) => {
    if (a.getAttribute("href") === screen.nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  // Only the latest drawing is shown: one that finishes after a newer one started is dropped, so
  // the page never goes back to older data. The page is marked busy while it is drawn.
  const mine = ++drawing;
  app.setAttribute("aria-busy", "true");
  let content;
  try {
    await refreshWorkspaces();
    content = await screen.view(...args.map(decodeURIComponent));
  } catch (error) {
    content = h("div", { class: "form-error", role: "alert" }, error.message);
  }
  if (mine !== drawing) return;
  app.replaceChildren(content);
  app.removeAttribute("aria-busy");
}
