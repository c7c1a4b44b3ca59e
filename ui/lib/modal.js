// Modal dialogs and the confirmation before a destructive action.

import { app, h, nextId } from "./dom.js";

const overlay = document.getElementById("overlay");

// The element that opened the modal: focus goes back to it when the modal closes.
let opener = null;
// Called once when the open modal closes, however it closes.
let onClosed = null;

/** A modal dialog: the page behind is inert, Tab stays inside, Escape closes, and focus returns
 * to what opened it. */
export function openModal(title, content, { onClose = null } = {}) {
  if (overlay.hidden) opener = document.activeElement;
  onClosed = onClose;
  const titleId = nextId("modal-title");
  const close = h("button", { type: "button", class: "link", "aria-label": "Close", onclick: closeModal }, "✕");
  const modal = h("div", { class: "modal", role: "dialog", "aria-modal": "true", "aria-labelledby": titleId },
    h("div", { class: "modal-head" }, h("h2", { id: titleId }, title), close), content);
  overlay.replaceChildren(modal);
  overlay.hidden = false;
  for (const behind of [app, document.querySelector(".topbar")]) behind.inert = true;
  (modal.querySelector("select, input, button:not(.link)") || close).focus();
  return modal;
}

export function closeModal() {
  if (overlay.hidden) return;
  overlay.hidden = true;
  overlay.replaceChildren();
  const closed = onClosed;
  onClosed = null;
  closed?.();
  for (const behind of [app, document.querySelector(".topbar")]) behind.inert = false;
  const back = opener;
  opener = null;
  if (back?.isConnected && back !== document.body) back.focus();
  else app.focus();
}

const FOCUSABLE = "button:not([disabled]), [href], input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

document.addEventListener("keydown", (event) => {
  if (overlay.hidden) return;
  if (event.key === "Escape") {
    closeModal();
  } else if (event.key === "Tab") {
    const focusable = [...overlay.querySelectorAll(FOCUSABLE)].filter((el) => !el.closest("[hidden]"));
    if (!focusable.length) return;
    const [first, last] = [focusable[0], focusable[focusable.length - 1]];
    const inside = overlay.contains(document.activeElement);
    if (event.shiftKey && (document.activeElement === first || !inside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  }
});

/** Asks before a destructive action. Cancel has the focus, so Enter never deletes. */
export function confirmThen(message, action, { title = "Please confirm", confirm = "Delete", dismiss = "Cancel", details = null, tone = "destructive" } = {}) {
  const cancel = h("button", { type: "button", onclick: closeModal }, dismiss);
  const yes = h("button", { type: "button", class: tone, onclick: async () => { closeModal(); await action(); } }, confirm);
  openModal(title, h("div", {}, h("p", {}, message), details, h("div", { class: "form-actions end" }, cancel, yes)));
  cancel.focus();
}
