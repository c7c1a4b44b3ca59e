// The portal: the UI opened from a platform's one-time link (`/portal?code=…`), often inside the
// platform's own page. The code is spent for a session token kept in this tab; the platform's
// theme is applied; what a portal session cannot use (tokens, signing in and out) is not shown.

import { api, TOKEN_KEY } from "./api.js";
import { h } from "./dom.js";

const THEME_KEY = "switchyard.portal-theme";
const CONFINED_KEY = "switchyard.portal-workspace";

export const inPortal = () => location.pathname === "/portal";

/** The one workspace a portal session is confined to ("" when it is not). */
export const confinedWorkspace = () => (inPortal() && sessionStorage.getItem(CONFINED_KEY)) || "";

/** Spends the link's code (if the address holds one) and takes it out of the address, so a
 * reload or a copied address does not show it. False when there is no session to show. */
export async function openPortal() {
  const code = new URLSearchParams(location.search).get("code");
  history.replaceState(null, "", `/portal${location.hash || "#/webhooks"}`);
  if (code) {
    try {
      const session = await api("portal-sessions-exchange", { code }, { signingIn: true });
      sessionStorage.setItem(TOKEN_KEY, session.session_token);
      sessionStorage.setItem(THEME_KEY, JSON.stringify(session.theme || {}));
      sessionStorage.setItem(CONFINED_KEY, session.workspace_id || "");
    } catch {
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }
  document.body.classList.add("portal");
  // Confined to one workspace: there is no other to switch to, and none to manage.
  document.body.classList.toggle("confined", Boolean(confinedWorkspace()));
  applyTheme(JSON.parse(sessionStorage.getItem(THEME_KEY) || "{}"));
  return Boolean(sessionStorage.getItem(TOKEN_KEY));
}

function applyTheme(theme) {
  if (theme.brand_color) document.documentElement.style.setProperty("--accent", theme.brand_color);
  if (theme.mode === "dark") document.body.classList.add("dark");
  const brand = document.querySelector(".brand");
  if (theme.product_name) {
    brand.textContent = theme.product_name;
    document.title = theme.product_name;
  }
  if (theme.logo_url) brand.replaceChildren(h("img", { src: theme.logo_url, alt: theme.product_name || "Logo", class: "logo" }));
}

/** What a portal without a session shows: the link is spent or expired. */
export function portalEnded() {
  return h("section", { class: "panel signin" }, h("h1", {}, "This link has expired"),
    h("p", {}, "Portal links open once and their sessions end after a while. Open the settings again from the application that sent you here."));
}
