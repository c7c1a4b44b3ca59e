// The delivery log: filters, each delivery's attempts, Retry.

import { api } from "../lib/api.js";
import { field, h, pageHead, select, time } from "../lib/dom.js";

export async function deliveriesView() {
  const [{ endpoints }, { integrations }, { mailers }, { destinations }] = await Promise.all([api("webhooks-list"), api("integrations-list"),
    api("mailers-list"), api("destinations-list")]);
  const targets = [...endpoints.map((e) => [e.id, `Webhook · ${e.url}`]), ...integrations.map((i) => [i.id, `Integration · ${i.name}`]),
    ...mailers.map((m) => [m.id, `Mailer · ${m.name}`]), ...destinations.map((d) => [d.id, `Destination · ${d.name}`])];
  const names = Object.fromEntries(targets);
  const target = select([["", "All targets"], ...targets], "");
  const status = select([["", "Any status"], ["pending", "Pending"], ["delivered", "Delivered"], ["failed", "Failed"]], "");
  const since = h("input", { type: "datetime-local" });
  const until = h("input", { type: "datetime-local" });
  const results = h("div");
  const detail = h("div", { "aria-live": "polite" });
  const iso = (input) => (input.value ? new Date(input.value).toISOString().replace(/\.\d{3}Z$/, "Z") : undefined);
  const refresh = async () => {
    const filter = { limit: 200, target_id: target.value || undefined, status: status.value || undefined, since: iso(since), until: iso(until) };
    const { deliveries } = await api("deliveries-list", filter);
    if (!deliveries.length) {
      results.replaceChildren(h("p", { class: "meta" }, "No deliveries match."));
      return;
    }
    const rows = deliveries.map((d) => {
      const open = h("button", { type: "button", class: "link" }, "Attempts");
      const row = h("tr", { "data-delivery": d.id },
        h("td", {}, time(d.created_at)), h("td", {}, names[d.target_id] || d.target_kind), h("td", {}, d.event_type),
        h("td", {}, h("span", { class: `badge ${d.status === "delivered" ? "ok" : d.status === "failed" ? "bad" : "pending"}` }, d.status)),
        h("td", {}, d.attempt_count), h("td", {}, d.http_status_code ?? "—"), h("td", {}, open));
      open.addEventListener("click", () => {
        results.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected"));
        row.classList.add("selected");
        showAttempts(d, detail, refresh);
      });
      return row;
    });
    results.replaceChildren(h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Created", "Target", "Event", "Status", "Attempts", "Last code", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))));
  };
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); refresh(); } },
    field("Target", target), field("Status", status), field("From", since), field("Until", until),
    h("div", { class: "field" }, h("button", { type: "submit" }, "Filter")));
  await refresh();
  return h("section", {}, pageHead("Deliveries"), form, results, detail);
}

async function showAttempts(delivery, container, refresh) {
  const { attempts } = await api("deliveries-attempts", { delivery_id: delivery.id });
  const note = h("div", { role: "status", "aria-live": "polite" });
  const retry = h("button", { type: "button", class: "primary" }, "Retry");
  retry.addEventListener("click", async () => {
    try {
      await api("deliveries-retry", { id: delivery.id });
      note.className = "notice ok";
      note.textContent = "Queued for another attempt.";
      setTimeout(async () => {
        await refresh();
        const latest = await api("deliveries-get", { id: delivery.id });
        showAttempts(latest.delivery, container, refresh);
      }, 800);
    } catch (error) {
      note.className = "notice bad";
      note.textContent = error.message;
    }
  });
  container.replaceChildren(h("div", { class: "card" },
    h("div", { class: "page-head" }, h("h2", {}, `Attempts of ${delivery.event_type} (${delivery.status})`), retry), note,
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["#", "Started", "Status code", "Duration", "Response"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, attempts.map((a) => h("tr", { "data-attempt": a.attempt_number },
        h("td", {}, a.attempt_number, a.manual ? " (manual)" : ""), h("td", {}, time(a.started_at)),
        h("td", {}, a.http_status_code ?? a.error_kind), h("td", {}, `${a.duration_ms} ms`),
        h("td", {}, h("pre", { class: "excerpt" }, a.response_excerpt || a.error_message || (a.payload_expired ? "(deleted by retention)" : ""))))))))));
}
