// The delivery log: filters (target, kind of target, event type, status, time), pages by
// cursor, each delivery with where it went and every attempt's answer in plain words, Retry,
// and Recover (re-send a target's failed deliveries of a time window).

import { api } from "../lib/api.js";
import { field, formError, h, pageHead, select, shortTime, showFormError, time } from "../lib/dom.js";
import { closeModal, openModal } from "../lib/modal.js";
import { go } from "../lib/router.js";
import { cache, eventTypes } from "../lib/session.js";

const PAGE = 50;
// Each kind of target: its name in the filter, and for one target.
const KINDS = [["webhook", "Webhook endpoints", "Webhook endpoint"], ["custom_api", "Custom API", "Custom API"], ["hubspot", "HubSpot", "HubSpot"],
  ["salesforce", "Salesforce", "Salesforce"], ["mailer", "Mailers", "Mailer"], ["destination", "Query destinations", "Query destination"]];
// Each kind of target's recovery call.
const RECOVER_CALL = { webhook: "webhooks-recover", custom_api: "integrations-recover", hubspot: "integrations-recover",
  salesforce: "integrations-recover", mailer: "mailers-recover", destination: "destinations-recover" };
const STATUS_BADGE = { delivered: "ok", failed: "bad", pending: "pending" };

/** `#/deliveries`, or `#/deliveries/target/<id>`: the log of one target, with Recover. */
export async function deliveriesView(scope, scopeId) {
  await eventTypes();
  const targets = await knownTargets();
  const chosen = scope === "target" ? targets.get(scopeId) : null;
  const target = select([["", "All targets"], ...[...targets].map(([id, t]) => [id, t.label])], chosen ? scopeId : "");
  // The filters live in the address (`?kind=…&status=…`), so a filtered log can be linked to.
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  const kind = select([["", "Any kind"], ...KINDS.map(([value, plural]) => [value, plural])], query.get("kind") || "");
  const eventType = select([["", "Any event"], ...cache.eventTypes.map((t) => [t.name, t.name]), ["mailer.send", "mailer.send (direct e-mails)"]], query.get("event") || "");
  const status = select([["", "Any status"], ["pending", "Pending"], ["delivered", "Delivered"], ["failed", "Failed"]], query.get("status") || "");
  const since = h("input", { type: "datetime-local", value: query.get("from") || "" });
  const until = h("input", { type: "datetime-local", value: query.get("until") || "" });
  const results = h("div", { "aria-live": "polite", "data-role": "log" });
  const filter = () => ({ target_id: target.value || undefined, target_kind: kind.value || undefined, event_type: eventType.value || undefined,
    status: status.value || undefined, since: iso(since), until: iso(until), limit: PAGE });
  // The log is marked busy while it is read again (what the browser tests wait on).
  const refresh = async () => {
    results.setAttribute("aria-busy", "true");
    try {
      results.replaceChildren(await logTable(filter(), targets, refresh));
    } finally {
      results.removeAttribute("aria-busy");
    }
  };
  // Filtering goes to the filtered log's address (drawn again from it); so does choosing a target.
  const address = () => {
    const base = target.value ? `#/deliveries/target/${target.value}` : "#/deliveries";
    const filters = Object.entries({ kind: kind.value, event: eventType.value, status: status.value, from: since.value, until: until.value });
    const search = new URLSearchParams(filters.filter(([, value]) => value)).toString();
    return search ? `${base}?${search}` : base;
  };
  target.addEventListener("change", () => go(address()));
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); go(address()); } },
    field("Target", target), field("Kind of target", kind), field("Event", eventType), field("Status", status),
    field("From", since), field("Until", until), h("div", { class: "field" }, h("button", { type: "submit" }, "Filter")));
  await refresh();
  const recover = chosen ? h("button", { type: "button", onclick: () => showRecover(scopeId, chosen, refresh) }, "Recover failed deliveries…") : null;
  return h("section", {}, pageHead(chosen ? `Deliveries · ${chosen.name}` : "Deliveries", recover),
    chosen ? h("p", { class: "meta intro" }, `${chosen.kindTitle} · ${chosen.sentTo}`) : null, form, results);
}

const iso = (input) => (input.value ? new Date(input.value).toISOString().replace(/\.\d{3}Z$/, "Z") : undefined);

/** Every target of the account by id: its name, kind, and where its requests go. */
async function knownTargets() {
  const [{ endpoints }, { integrations }, { mailers }, { destinations }] = await Promise.all([api("webhooks-list"), api("integrations-list"),
    api("mailers-list"), api("destinations-list")]);
  const kindTitle = Object.fromEntries(KINDS.map(([value, , singular]) => [value, singular]));
  const entry = (id, kind, name, sentTo) => [id, { kind, name, sentTo, kindTitle: kindTitle[kind], label: `${kindTitle[kind]} · ${name}` }];
  return new Map([
    ...endpoints.map((e) => entry(e.id, "webhook", e.url, `POST ${e.url}, signed (Standard Webhooks)`)),
    ...integrations.map((i) => entry(i.id, i.kind, i.name, i.kind === "custom_api"
      ? `${i.config.method || "POST"} ${i.config.endpoint}, the mapped record as JSON` : `${kindTitle[i.kind]} API: the contact, by its mapped fields`)),
    ...mailers.map((m) => entry(m.id, "mailer", m.name, `an e-mail from ${m.sender_email || m.reply_to || "the relay"}`)),
    ...destinations.map((d) => entry(d.id, "destination", d.name, `${d.method} ${d.url}, the record in the query string`)),
  ]);
}

/** The first page of the log for `filter`, with Load older deliveries while there are more. */
async function logTable(filter, targets, refresh) {
  const page = await api("deliveries-list", filter);
  if (!page.deliveries.length) {
    return h("div", { class: "card placeholder" }, h("h2", {}, "No deliveries match"),
      h("p", {}, "Deliveries appear here as soon as an event is sent to one of your targets."));
  }
  const body = h("tbody");
  const more = h("button", { type: "button" }, "Load older deliveries");
  const pager = h("div", { class: "pager" }, more);
  let cursor = null;
  const add = ({ deliveries, next_cursor }) => {
    body.append(...deliveries.map((d) => logRow(d, targets, refresh)));
    cursor = next_cursor;
    pager.hidden = !cursor;
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    add(await api("deliveries-list", { ...filter, cursor }));
    more.disabled = false;
  });
  add(page);
  return h("div", {}, h("div", { class: "table-wrap" }, h("table", { class: "stack-table log-table" },
    h("thead", {}, h("tr", {}, ["Created", "Target", "Event", "Status", "Attempts", "Last answer", ""].map((t) => h("th", { scope: "col" }, t)))),
    body)), pager);
}

function logRow(d, targets, refresh) {
  const where = targets.get(d.target_id);
  const open = h("button", { type: "button", class: "link", "aria-label": `Details of the ${d.event_type} delivery to ${where?.name || d.target_kind}` }, "Details");
  open.addEventListener("click", () => showDelivery(d, where, refresh));
  return h("tr", { "data-delivery": d.id },
    h("td", { "data-label": "Created" }, shortTime(d.created_at)),
    h("td", { "data-label": "Target", class: "target-cell" }, where ? where.label : d.target_kind),
    h("td", { "data-label": "Event" }, d.event_type),
    h("td", { "data-label": "Status" }, h("span", { class: `badge ${STATUS_BADGE[d.status]}` }, d.status)),
    h("td", { "data-label": "Attempts", class: "num" }, d.attempt_count),
    h("td", { "data-label": "Last answer" }, d.http_status_code ?? (d.last_error ? "no answer" : "—")),
    h("td", {}, open));
}

/** One delivery: where it went, its state, Retry, and every attempt's answer. */
async function showDelivery(delivery, where, refresh) {
  const [{ attempts }, request] = await Promise.all([api("deliveries-attempts", { delivery_id: delivery.id }), requestOf(delivery)]);
  const note = h("div", { role: "status", "aria-live": "polite" });
  const retry = h("button", { type: "button", class: "primary" }, "Retry now");
  retry.addEventListener("click", async () => {
    retry.disabled = true;
    try {
      await api("deliveries-retry", { id: delivery.id });
      note.className = "notice ok";
      note.textContent = "Queued for another attempt.";
      const settled = await afterAttempt(delivery);
      refresh();
      showDelivery(settled, where, refresh);
    } catch (error) {
      note.className = "notice bad";
      note.textContent = error.message;
      retry.disabled = false;
    }
  });
  const facts = [
    ["Target", where ? where.label : delivery.target_kind],
    ["Event", `${delivery.event_type} · ${delivery.event_id}`],
    ["Status", delivery.status],
    ["Created", time(delivery.created_at)],
    delivery.status === "pending" ? ["Next attempt", time(delivery.next_attempt_at)] : ["Settled", time(delivery.completed_at)],
    delivery.last_error ? ["Last error", delivery.last_error] : null,
    delivery.payload_expired ? ["Payload", "Deleted by retention: it can no longer be retried."] : null,
  ].filter(Boolean);
  openModal(`Delivery of ${delivery.event_type}`, h("div", { class: "delivery-detail" },
    h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("div", { class: "form-actions" }, retry), note,
    h("h3", {}, "Request"), requestView(request, where),
    h("h3", {}, attempts.length ? "Attempts" : "No attempt yet"),
    h("ol", { class: "attempts" }, attempts.map(attemptItem))));
}

/** The request the delivery's attempts send (or why it cannot be shown). */
async function requestOf(delivery) {
  try {
    return (await api("deliveries-request", { id: delivery.id })).request;
  } catch (error) {
    return { error: error.message };
  }
}

/** What the request view adds for a kind whose request is not the whole story. */
const REQUEST_NOTES = {
  salesforce: "An OAuth token request (not shown: it carries the consumer secret) precedes this upsert; the instance URL is the last token's.",
  hubspot: "This contact's part of the upsert: contacts due together go up to 100 per request, and a batch HubSpot refuses is split until the contact it refused goes alone, so this delivery's error is its own.",
  mailer: "For SMTP mailers this is the SMTP transaction: the envelope's sender and recipients, then the message.",
};

function requestView(request, where) {
  if (request.error) return h("p", { class: "meta", "data-role": "request" }, request.error);
  return h("div", { class: "request", "data-role": "request" },
    h("p", { class: "url-line" }, h("span", { class: "method" }, request.method), " ", request.url),
    h("dl", { class: "headers" }, request.headers.flatMap((x) => [h("dt", {}, x.name), h("dd", {}, x.value)])),
    request.body ? h("pre", { class: "excerpt", tabindex: "0", "aria-label": "Request body" }, request.body) : h("p", { class: "meta" }, "No body."),
    h("p", { class: "meta" }, [REQUEST_NOTES[where?.kind], "Built from the stored event and the target's current settings; timestamps and signatures change at each attempt. Credentials read ••••••."].filter(Boolean).join(" ")));
}

function attemptItem(a) {
  const ok = a.http_status_code >= 200 && a.http_status_code < 300;
  return h("li", { class: `attempt ${ok ? "ok" : "bad"}`, "data-attempt": a.attempt_number },
    h("div", { class: "attempt-head" },
      h("strong", {}, `#${a.attempt_number}${a.manual ? " (manual)" : ""}`),
      h("span", { class: `badge ${ok ? "ok" : "bad"}`, "data-role": "code" }, a.http_status_code ?? a.error_kind),
      h("span", { class: "meta" }, `${time(a.started_at)} · ${a.duration_ms} ms`)),
    h("p", { class: "summary" }, a.summary),
    a.sent_by ? h("p", { class: "meta", "data-role": "sent-by" }, `Sent by the fallback mailer ${a.sent_by}: this mailer's provider failed.`) : null,
    a.error_message ? h("p", { class: "meta" }, a.error_message) : null,
    a.response_headers?.length ? h("details", { class: "response-headers", "data-role": "response-headers" },
      h("summary", {}, `Response headers (${a.response_headers.length})`),
      h("dl", { class: "headers" }, a.response_headers.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]))) : null,
    a.response_excerpt ? h("pre", { class: "excerpt", tabindex: "0", "aria-label": `Response of attempt ${a.attempt_number}` }, a.response_excerpt)
      : h("p", { class: "meta" }, a.payload_expired ? "Response deleted by retention." : "No response body."));
}

/** The delivery once the attempt a retry asked for is on record (polled, with a generous bound). */
async function afterAttempt(delivery) {
  for (let i = 0; i < 120; i++) {
    const { delivery: now } = await api("deliveries-get", { id: delivery.id });
    if (now.attempt_count > delivery.attempt_count && now.status !== "pending") return now;
    await new Promise((r) => setTimeout(r, 250));
  }
  return (await api("deliveries-get", { id: delivery.id })).delivery;
}

/** Recover: re-send a target's failed deliveries created in a window (at most 14 days), as a
 * background task whose progress is shown. */
function showRecover(id, target, refresh) {
  const dayAgo = new Date(Date.now() - 24 * 3600e3);
  const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60e3).toISOString().slice(0, 16);
  const since = h("input", { type: "datetime-local", value: local(dayAgo) });
  // Empty means now: a minute-precise "now" would leave out what failed in the last minute.
  const until = h("input", { type: "datetime-local" });
  const progress = h("div", { role: "status", "aria-live": "polite" });
  const start = h("button", { type: "submit", class: "primary" }, "Recover");
  const form = h("form", { novalidate: true }, formError(),
    h("p", {}, `Every failed delivery to ${target.name} created in this window is sent again, as a manual retry. The window is at most 14 days.`),
    h("div", { class: "grid2" }, field("From", since, { name: "since" }), field("Until", until, { name: "until", hint: "Empty: until now." })),
    progress,
    h("div", { class: "form-actions end" }, h("button", { type: "button", onclick: closeModal }, "Done"), start));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    start.disabled = true;
    try {
      let { task } = await api(RECOVER_CALL[target.kind], { id, since: iso(since), until: iso(until) });
      // Polls while the dialog is open; the task goes on in the background either way.
      while (task.status === "running" && form.isConnected) {
        progress.className = "notice";
        progress.textContent = `Re-queued ${task.done} of ${task.total}…`;
        await new Promise((r) => setTimeout(r, 250));
        ({ task } = await api("tasks-get", { id: task.id }));
      }
      progress.className = `notice ${task.status === "done" ? "ok" : "bad"}`;
      progress.textContent = task.status === "done"
        ? `${task.total - task.skipped} failed ${task.total - task.skipped === 1 ? "delivery" : "deliveries"} queued again${task.skipped ? ` (${task.skipped} skipped: deleted by retention)` : ""}.`
        : `The recovery stopped: ${task.error || task.status}.`;
      refresh();
    } catch (error) {
      showFormError(form, error);
    } finally {
      start.disabled = false;
    }
  });
  openModal(`Recover failed deliveries · ${target.name}`, form);
}
