// The "Authentication" section of the webhook endpoint, Custom API and destination forms: how
// requests prove themselves to the receiver (static headers, OAuth 2.0 client credentials, a
// client certificate, a CA of its own). Secrets are write-only: a stored one shows its hint and
// is kept while its field stays empty.

import { field, h, nextId, textInput, TRASH_ICON } from "./dom.js";
import { cell } from "./parts.js";

/** The placeholder of a stored secret's empty field: its hint, if it shows anything. */
const stored = (hint) => `Stored${hint && hint !== "…" ? ` (${hint})` : ""}`;

/** A section that shows its fields only while its box is ticked. */
function optional(label, on, ...fields) {
  const box = h("input", { type: "checkbox", checked: on });
  const body = h("div", { class: "auth-part" }, ...fields);
  const toggle = () => { body.hidden = !box.checked; };
  box.addEventListener("change", toggle);
  toggle();
  return { el: h("div", {}, h("label", { class: "check" }, box, label), body), on: () => box.checked };
}

/** Static header rows: name, value, and whether the value is a secret. */
function headerRows(headers) {
  const list = h("div", { class: "header-rows" });
  const addRow = (header = {}) => {
    const errorId = nextId("row-error");
    const name = textInput(header.name || "", { "aria-label": "Header name", placeholder: "X-Api-Key", "data-role": "name", "aria-describedby": errorId });
    const value = h("input", { type: header.sensitive ? "password" : "text", value: header.value ?? "", autocomplete: "off", "aria-label": "Header value",
      "data-role": "value", "aria-describedby": errorId, placeholder: header.sensitive ? stored(header.value_hint) : "" });
    const secret = h("input", { type: "checkbox", checked: header.sensitive, "data-role": "sensitive" });
    secret.addEventListener("change", () => { value.type = secret.checked ? "password" : "text"; });
    const remove = h("button", { type: "button", class: "link danger icon", "aria-label": "Remove header", title: "Remove" });
    remove.innerHTML = TRASH_ICON;
    const el = h("div", { class: "header-row" }, cell("Header name", name), cell("Header value", value, "second"),
      h("label", { class: "check secret" }, secret, "Secret"), remove, h("span", { class: "field-error row-error", id: errorId }));
    el.dataset.stored = header.sensitive ? "yes" : "";
    el.addEventListener("input", () => {
      el.classList.remove("invalid");
      el.querySelectorAll("[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
      el.querySelector(".row-error").textContent = "";
    });
    remove.addEventListener("click", () => el.remove());
    list.append(el);
    return el;
  };
  (headers || []).forEach(addRow);
  const value = () => [...list.children].map((row) => {
    const header = { name: row.querySelector("[data-role=name]").value.trim(), sensitive: row.querySelector("[data-role=sensitive]").checked };
    const typed = row.querySelector("[data-role=value]").value;
    // An empty secret that is stored under this name is kept by leaving the value out.
    if (typed || !(header.sensitive && row.dataset.stored)) header.value = typed;
    return header;
  });
  const el = h("div", { class: "field" }, h("span", { class: "label" }, "Headers"),
    h("span", { class: "hint" }, "A secret value is stored encrypted and never shown again; leave a stored one empty to keep it."), list,
    h("button", { type: "button", onclick: () => addRow().querySelector("input").focus() }, "+ Add header"));
  return { el, list, value };
}

/** The section; `auth` is the saved `receiver_auth` (or null). Returns its element and value. */
export function receiverAuthEditor(auth) {
  const a = auth || {};
  const headers = headerRows(a.headers);
  const o = a.oauth2 || {};
  const oauthInputs = {
    token_url: h("input", { type: "url", value: o.token_url || "", placeholder: "https://auth.example.com/oauth/token" }),
    client_id: textInput(o.client_id || ""),
    client_secret: h("input", { type: "password", autocomplete: "off", placeholder: a.oauth2 ? stored(o.client_secret_hint) : "" }),
    scope: textInput(o.scope || "", { placeholder: "Optional" }),
    audience: textInput(o.audience || "", { placeholder: "Optional" }),
  };
  const oauth = optional("OAuth 2.0 client credentials", Boolean(a.oauth2),
    field("Token URL", oauthInputs.token_url, { name: "oauth2.token_url", hint: "A token is asked for here and sent as Authorization: Bearer." }),
    h("div", { class: "grid2" }, field("Client ID", oauthInputs.client_id, { name: "oauth2.client_id" }),
      field("Client secret", oauthInputs.client_secret, { name: "oauth2.client_secret", hint: a.oauth2 ? "Leave empty to keep the stored one." : null })),
    h("div", { class: "grid2" }, field("Scope", oauthInputs.scope, { name: "oauth2.scope" }), field("Audience", oauthInputs.audience, { name: "oauth2.audience" })));
  const certificate = h("textarea", { rows: "4", spellcheck: "false", class: "code", placeholder: "-----BEGIN CERTIFICATE-----" });
  certificate.value = a.client_certificate?.certificate_pem || "";
  const key = h("textarea", { rows: "4", spellcheck: "false", class: "code", autocomplete: "off",
    placeholder: a.client_certificate ? "Stored: leave empty to keep it" : "-----BEGIN PRIVATE KEY-----" });
  const mtls = optional("Client certificate (mutual TLS)", Boolean(a.client_certificate),
    field("Certificate (PEM)", certificate, { name: "client_certificate.certificate_pem", hint: "The certificate, then any intermediates." }),
    field("Private key (PEM)", key, { name: "client_certificate.private_key_pem", hint: "Unencrypted PKCS#8, PKCS#1 or SEC1. Stored encrypted, never shown again." }));
  const ca = h("textarea", { rows: "3", spellcheck: "false", class: "code", placeholder: "-----BEGIN CERTIFICATE-----" });
  ca.value = a.ca_certificate_pem || "";
  const el = h("fieldset", { "data-field": "receiver_auth", id: nextId("auth"), tabindex: "-1", class: "receiver-auth" },
    h("legend", {}, "Authentication"),
    h("p", { class: "hint" }, "How requests prove themselves to the receiver. All optional."),
    headers.el, oauth.el, mtls.el,
    field("Trusted CA certificates (PEM)", ca, { name: "ca_certificate_pem", hint: "Optional: for a receiver whose certificate a private CA signed." }));
  el.insertBefore(h("span", { class: "field-error", id: `${el.id}-error`, role: "alert" }), headers.el);

  const value = () => {
    const body = {};
    const rows = headers.value().filter((row) => row.name || row.value);
    if (rows.length) body.headers = rows;
    if (oauth.on()) {
      body.oauth2 = Object.fromEntries(Object.entries(oauthInputs).map(([k, input]) => [k, input.value.trim()]).filter(([k, v]) => v || k === "token_url" || k === "client_id"));
    }
    if (mtls.on()) {
      body.client_certificate = { certificate_pem: certificate.value.trim() };
      if (key.value.trim()) body.client_certificate.private_key_pem = key.value.trim();
    }
    if (ca.value.trim()) body.ca_certificate_pem = ca.value.trim();
    return Object.keys(body).length ? body : null;
  };

  /** Shows an error about receiver_auth next to the field (or header row) it names. */
  el.markError = (message) => {
    const row = /headers\[(\d+)\]/.exec(message);
    if (row) {
      const rowEl = headers.list.children[Number(row[1])];
      if (!rowEl) return false;
      const input = rowEl.querySelector(/value/.test(message) ? "[data-role=value]" : "[data-role=name]");
      rowEl.classList.add("invalid");
      input.setAttribute("aria-invalid", "true");
      rowEl.querySelector(".row-error").textContent = message.replace(/^receiver_auth: headers\[\d+\](\.value)?: /, "");
      rowEl.querySelector(".row-error").setAttribute("role", "alert");
      input.focus();
      return true;
    }
    // The longest field name the message mentions; a key that does not fit its certificate is the key's.
    const names = [...el.querySelectorAll("[data-field]")].map((f) => f.dataset.field).filter((n) => n !== "receiver_auth");
    const named = names.filter((n) => message.includes(n)).sort((x, y) => y.length - x.length)[0]
      || (/client_certificate/.test(message) ? "client_certificate.private_key_pem" : null);
    const target = named ? el.querySelector(`[data-field="${named}"]`) : el;
    target.setAttribute("aria-invalid", "true");
    document.getElementById(`${target.id}-error`).textContent = message.replace(/^receiver_auth[:.] ?/, "");
    target.focus();
    return true;
  };
  return { el, value };
}
