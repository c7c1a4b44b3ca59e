// Activations (seed 004): the Running History of every run and one run's page, with live counts
// of 2xx / 4xx / 5xx-or-no-answer / cancelled, a bar of its progress, the per-record results
// (pageable, filtered by outcome) and Cancel while it runs; a sync run's counts (new, changed,
// unchanged, retried, deleted) and Retry rejected records.

import { api } from "../lib/api.js";
import { field, h, pageHead, select, shortTime, statTile, time } from "../lib/dom.js";
import { confirmThen } from "../lib/modal.js";
import { render } from "../lib/router.js";

const PAGE = 25;
const STATUS_BADGE = { running: "pending", finished: "ok", cancelled: "" };
const OUTCOMES = [["", "All records"], ["succeeded", "Succeeded (2xx)"], ["client_errors", "Client errors (4xx)"],
  ["server_errors", "Server errors or no answer (5xx)"], ["cancelled", "Cancelled"], ["pending", "Pending"]];

const OUTCOME_BADGE = {
  succeeded: ["ok", "succeeded"], client_errors: ["warn", "client error"], server_errors: ["bad", "server error"],
  cancelled: ["", "cancelled"], pending: ["pending", "pending"],
};

const plural = (n, one, many = `${one}s`) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

/** What a sync run made (or a dry run would make) of its upload, in one line. */
export const syncSummary = (c) => `${c.new.toLocaleString()} new · ${c.changed.toLocaleString()} changed · `
  + `${c.unchanged.toLocaleString()} unchanged · ${c.retried.toLocaleString()} retried · ${c.deleted.toLocaleString()} deleted`;

/** A bar of the run's progress: 2xx, 4xx, 5xx or no answer, cancelled; the rest is pending. */
export function progressBar(a) {
  const parts = [["succeeded", a.succeeded], ["client", a.client_errors], ["server", a.server_errors], ["cancelled", a.cancelled]];
  const settled = a.total - a.pending;
  const label = `${settled.toLocaleString()} of ${plural(a.total, "record")} settled: ${a.succeeded.toLocaleString()} succeeded, `
    + `${a.client_errors.toLocaleString()} client errors, ${a.server_errors.toLocaleString()} server errors or no answer, ${a.cancelled.toLocaleString()} cancelled`;
  return h("div", { class: "bar", role: "img", "aria-label": label, title: label },
    parts.filter(([, n]) => n > 0).map(([kind, n]) => h("span", { class: `bar-${kind}`, style: `width: ${(n / Math.max(a.total, 1)) * 100}%` })));
}

const statusBadge = (a) => h("span", { class: `badge ${STATUS_BADGE[a.status] ?? ""}`, "data-role": "status" }, a.status);

/** One run in the Running History. */
export function activationRow(a, destinationName) {
  return h("tr", { "data-activation": a.id },
    cellOf("Started", h("a", { href: `#/activations/${a.id}` }, shortTime(a.started_at || a.created_at))),
    cellOf("Destination", destinationName || "(deleted destination)"),
    cellOf("Status", statusBadge(a)),
    cellOf("Progress", progressBar(a), "bar-cell"),
    cellOf("Records", a.total.toLocaleString(), "num"),
    cellOf("2xx", a.succeeded.toLocaleString(), "num"),
    cellOf("4xx", a.client_errors.toLocaleString(), "num"),
    cellOf("5xx / no answer", a.server_errors.toLocaleString(), "num"),
    cellOf("Cancelled", a.cancelled.toLocaleString(), "num"),
    cellOf("Sync", a.sync ? syncSummary(a.sync) : "—"),
    cellOf("Ended", a.status === "running" ? "—" : shortTime(a.finished_at)));
}

/** A table cell that names its column, for the stacked layout of tables on a phone. */
const cellOf = (label, content, cls = null) => h("td", { "data-label": label, class: cls }, content);

/** The Running History's table around `body` (a tbody of activationRow rows). */
export function historyTable(body) {
  const heads = ["Started", "Destination", "Status", "Progress", "Records", "2xx", "4xx", "5xx / no answer", "Cancelled", "Sync", "Ended"];
  return h("div", { class: "table-wrap" }, h("table", { class: "history-table stack-table" },
    h("thead", {}, h("tr", {}, heads.map((t, i) => h("th", { scope: "col", class: i >= 4 && i <= 8 ? "num" : null }, t)))),
    body));
}

function summary(a) {
  return h("div", { class: "card", "data-role": "summary" },
    h("div", { class: "list-row" }, statusBadge(a),
      h("span", { class: "meta" }, `Started ${time(a.started_at || a.created_at)}`),
      h("span", { class: "meta" }, a.finished_at && a.status !== "running" ? `Ended ${time(a.finished_at)}` : "Running")),
    progressBar(a),
    a.sync ? h("p", { class: "meta", "data-role": "sync" },
      `Sync on “${a.sync.key}”${a.sync.mirror ? ", mirrored" : ""}: ${syncSummary(a.sync)}`) : null,
    h("div", { class: "stats" },
      statTile("Records", a.total, "total"),
      statTile("Pending", a.pending, "pending"),
      statTile("Succeeded (2xx)", a.succeeded, "succeeded"),
      statTile("Client errors (4xx)", a.client_errors, "client"),
      statTile("Server errors or no answer (5xx)", a.server_errors, "server"),
      statTile("Cancelled", a.cancelled, "cancelled")));
}

const compact = (record) => {
  if (record === null) return "(deleted by retention)";
  const text = JSON.stringify(record);
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
};

/** One activation's page: `#/activations/<id>`. */
export async function activationView(id) {
  let { activation } = await api("activations-get", { id });
  const destination = await api("destinations-get", { id: activation.destination_id }).then((r) => r.destination, () => null);
  const head = pageHead(`Activation · ${destination?.name || "deleted destination"}`);
  const cancel = h("button", { type: "button", class: "danger", onclick: () => confirmThen(
    "Cancel this activation? Records not yet attempted are settled as cancelled; those being sent finish their attempt.",
    async () => {
      await api("activations-cancel", { id });
      render();
    }, { title: "Cancel activation", confirm: "Cancel activation", dismiss: "Keep running" }) }, "Cancel activation");
  const retry = h("button", { type: "button", onclick: async () => {
    await api("activations-retry-rejected", { id });
    render();
  } }, "Retry rejected records");
  const showActions = () => {
    cancel.hidden = activation.status !== "running";
    retry.hidden = activation.status === "running" || activation.client_errors === 0;
  };
  head.querySelector(".actions").append(retry, cancel);
  let card = summary(activation);

  // Per-record results, a page at a time; `cursors` holds the cursor of each page shown so far.
  const outcome = select(OUTCOMES, "", { "data-role": "outcome" });
  const table = h("div");
  const where = h("span", { class: "meta", "data-role": "page" });
  const previous = h("button", { type: "button" }, "Previous");
  const next = h("button", { type: "button" }, "Next");
  let cursors = [undefined];
  let nextCursor = null;
  // Only the page asked for last is shown: one read by the live counts just before Next or an
  // outcome was chosen may answer after it.
  let loading = 0;
  const loadPage = async () => {
    const mine = ++loading;
    const cursor = cursors[cursors.length - 1];
    const page = await api("activations-records", { id, limit: PAGE, outcome: outcome.value || undefined, cursor });
    if (mine !== loading) return;
    nextCursor = page.next_cursor ?? null;
    const first = (cursors.length - 1) * PAGE;
    where.textContent = page.records.length ? `Records ${first + 1}–${first + page.records.length}` : "No records match.";
    previous.disabled = cursors.length === 1;
    next.disabled = nextCursor === null;
    table.replaceChildren(page.records.length ? h("div", { class: "table-wrap" }, h("table", { class: "records-table stack-table" },
      h("thead", {}, h("tr", {}, ["#", "Outcome", "HTTP", "Attempts", "Error", "Record"].map((t) => h("th", { scope: "col", class: t === "#" || t === "Attempts" ? "num" : null }, t)))),
      h("tbody", {}, page.records.map((r) => h("tr", { "data-record": r.index },
        cellOf("#", r.index + 1, "num"),
        cellOf("Outcome", h("span", { class: `badge ${OUTCOME_BADGE[r.outcome][0]}`, "data-outcome": r.outcome }, OUTCOME_BADGE[r.outcome][1])),
        cellOf("HTTP", r.http_status_code ?? "—"),
        cellOf("Attempts", r.attempt_count, "num"),
        cellOf("Error", r.last_error || null, "error-cell"),
        cellOf("Record", h("code", { class: "record" }, compact(r.record)), "record-cell")))))) : h("p", { class: "meta" }, "No records match."));
  };
  outcome.addEventListener("change", () => { cursors = [undefined]; loadPage(); });
  previous.addEventListener("click", () => { cursors.pop(); loadPage(); });
  next.addEventListener("click", () => { cursors.push(nextCursor); loadPage(); });
  await loadPage();

  const page = h("section", { "data-activation-page": id },
    h("p", {}, h("a", { href: "#/destinations" }, "← Query Destinations")),
    head, card,
    h("section", { "aria-labelledby": "records-title" },
      h("div", { class: "page-head" }, h("h2", { id: "records-title" }, "Records"), h("div", { class: "records-filter" }, field("Outcome", outcome))),
      table,
      h("div", { class: "pager" }, previous, where, next)));
  showActions();

  // Live counts while it runs: read again every second until it ends or the page is left.
  let shown = false;
  const poll = async () => {
    if (!page.isConnected) {
      // Not drawn yet: wait for it; drawn and then left: stop.
      if (!shown) setTimeout(poll, 250);
      return;
    }
    shown = true;
    const latest = (await api("activations-get", { id })).activation;
    const changed = JSON.stringify(latest) !== JSON.stringify(activation);
    activation = latest;
    if (changed) {
      const fresh = summary(activation);
      card.replaceWith(fresh);
      card = fresh;
      showActions();
      await loadPage();
    }
    if (activation.status === "running") setTimeout(poll, 1000);
  };
  if (activation.status === "running") setTimeout(poll, 1000);
  return page;
}
