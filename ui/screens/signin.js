// Signing in with an API token, kept for the browser tab only.

import { api, ApiError, TOKEN_KEY } from "../lib/api.js";
import { field, formError, h, showFormError } from "../lib/dom.js";
import { render } from "../lib/router.js";

export function signInView() {
  const token = h("input", { type: "password", autocomplete: "off", "data-field": "token" });
  const form = h("form", { class: "panel signin", novalidate: true },
    h("h1", {}, "Sign in to Switchyard"),
    h("p", { class: "meta" }, "Paste an API token (create one with ", h("code", {}, "switchyard token create --account NAME"),
      "). It is kept for this browser tab only."),
    formError(),
    field("API token", token, { name: "token" }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, token.value.trim());
    try {
      await api("workspaces-list", {}, { signingIn: true });
      render();
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      showFormError(form, new ApiError(error.code, "That token was not accepted."), { "auth.invalid_token": "token", "auth.missing_token": "token" });
    }
  });
  return form;
}
