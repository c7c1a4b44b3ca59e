// Switchyard's web UI: a small single-page app on the public JSON API only.
// No build step: these ES modules are embedded in the binary and served as they are
// (src/api/ui.rs); each screen is a module of screens/, the shared parts are in lib/.

import { render, route } from "./lib/router.js";
import { inPortal, openPortal } from "./lib/portal.js";
import { chooseWorkspace, signOut } from "./lib/session.js";
import { accessView } from "./screens/access.js";
import { activationView } from "./screens/activations.js";
import { deliveriesView } from "./screens/deliveries.js";
import { destinationsView } from "./screens/destinations.js";
import { integrationsView } from "./screens/integrations.js";
import { mailersView } from "./screens/mailers.js";
import { overviewView } from "./screens/overview.js";
import { suppressionsView } from "./screens/suppressions.js";
import { webhooksView } from "./screens/webhooks.js";
import { workspacesView } from "./screens/workspaces.js";

route("#/integrations", integrationsView);
route("#/mailers", mailersView);
route("#/suppressions", suppressionsView, { nav: "#/mailers" });
route("#/webhooks", webhooksView);
route("#/destinations", destinationsView);
route("#/activations", activationView, { nav: "#/destinations" });
route("#/deliveries", deliveriesView);
route("#/workspaces", workspacesView);
route("#/overview", overviewView);
route("#/access", accessView);

document.getElementById("sign-out").addEventListener("click", signOut);
document.getElementById("workspace-switcher").addEventListener("change", (event) => {
  chooseWorkspace(event.target.value);
  render();
});
window.addEventListener("hashchange", render);
if (inPortal()) await openPortal();
// Following the link of the page already shown (e.g. from an open form) goes back to its list.
document.querySelector("nav").addEventListener("click", (event) => {
  if (event.target.closest("a")?.getAttribute("href") === location.hash) render();
});
render();
