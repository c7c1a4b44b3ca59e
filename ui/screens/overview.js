// Overview: deliveries over time (succeeded, failed, pending) and attempts' latency, for the
// account or one target, and the targets ordered by health, the least healthy first.

import { api } from "../lib/api.js";
import { timeChart } from "../lib/charts.js";
import { field, h, pageHead, select, statTile } from "../lib/dom.js";
import { deliveriesLink } from "../lib/parts.js";

const RANGES = [["1h", "Last hour"], ["24h", "Last 24 hours"], ["7days", "Last 7 days"], ["30days", "Last 30 days"]];
const COLORS = { succeeded: "#1f7a3a", failed: "#b3261e", pending: "#d08a00", average: "#2454d6", slowest: "#5b6475" };
const KIND_TITLES = { webhook: "Webhook endpoint", custom_api: "Custom API", hubspot: "HubSpot", salesforce: "Salesforce",
  mailer: "Mailer", destination: "Query destination" };
// The range chosen last, kept while the tab is open.
let range = "24h";

/** `#/overview`, or `#/overview/target/<id>`: the same charts for one target. */
export async function overviewView(scope, targetId) {
  const names = await targetNames();
  const target = scope === "target" ? targetId : null;
  const choice = select(RANGES, range);
  const body = h("div", { "data-role": "overview" });
  const draw = async () => {
    range = choice.value;
    body.setAttribute("aria-busy", "true");
    const stats = await api("deliveries-stats", { since: range, target_id: target || undefined });
    body.replaceChildren(...(await overview(stats, names, Boolean(target))));
    body.removeAttribute("aria-busy");
  };
  choice.addEventListener("change", draw);
  await draw();
  const title = target ? `Overview · ${names.get(target)?.name || "target"}` : "Overview";
  return h("section", {}, pageHead(title, h("div", { class: "range" }, field("Time range", choice))),
    target ? h("p", { class: "intro" }, h("a", { href: "#/overview" }, "← All targets"), " · ", deliveriesLink(target, names.get(target)?.name || "this target")) : null,
    body);
}

/** Each target's name and kind, by id. */
async function targetNames() {
  const [{ endpoints }, { integrations }, { mailers }, { destinations }] = await Promise.all([api("webhooks-list"), api("integrations-list"),
    api("mailers-list"), api("destinations-list")]);
  return new Map([...endpoints.map((e) => [e.id, { name: e.url }]), ...integrations.map((i) => [i.id, { name: i.name }]),
    ...mailers.map((m) => [m.id, { name: m.name }]), ...destinations.map((d) => [d.id, { name: d.name }])]);
}

async function overview(stats, names, oneTarget) {
  const { totals } = stats;
  const span = RANGES.find(([value]) => value === range)[1].toLowerCase();
  if (!totals.succeeded && !totals.failed && !totals.pending && !totals.attempts) {
    return [h("div", { class: "card placeholder" }, h("h2", {}, `Nothing was sent in the ${span}`),
      h("p", {}, "Deliveries show here once events reach your webhook endpoints, integrations, mailers and destinations."))];
  }
  const times = stats.buckets.map((b) => Date.parse(b.start) / 1000);
  const values = (key) => stats.buckets.map((b) => b[key]);
  const deliveries = await timeChart({
    label: `Deliveries in the ${span}: ${totals.succeeded} succeeded, ${totals.failed} failed, ${totals.pending} pending.`,
    times,
    step: stats.bucket_seconds,
    series: [
      { label: "Succeeded", color: COLORS.succeeded, values: values("succeeded"), kind: "bar" },
      { label: "Failed", color: COLORS.failed, values: values("failed"), kind: "bar" },
      { label: "Pending", color: COLORS.pending, values: values("pending"), kind: "bar" },
    ],
  });
  const latency = await timeChart({
    label: `Attempt latency in the ${span}: ${totals.attempts} attempts, ${ms(totals.avg_latency_ms)} on average, ${ms(totals.max_latency_ms)} at most.`,
    times,
    step: stats.bucket_seconds,
    unit: " ms",
    series: [
      { label: "Average", color: COLORS.average, values: values("avg_latency_ms"), kind: "line" },
      { label: "Slowest", color: COLORS.slowest, values: values("max_latency_ms"), kind: "line", dash: [6, 4] },
    ],
  });
  const settled = totals.succeeded + totals.failed;
  return [
    h("div", { class: "stats overview-stats" },
      statTile("Succeeded", totals.succeeded, "succeeded"),
      statTile("Failed", totals.failed, "server"),
      statTile("Pending", totals.pending, "pending"),
      statTile("Success rate", settled ? `${Math.round((100 * totals.succeeded) / settled)}%` : "—", "total"),
      statTile("Average latency", ms(totals.avg_latency_ms), "latency")),
    h("div", { class: "chart-grid" },
      h("section", { class: "card", "aria-labelledby": "deliveries-chart" }, h("h2", { id: "deliveries-chart" }, "Deliveries"), deliveries),
      h("section", { class: "card", "aria-labelledby": "latency-chart" }, h("h2", { id: "latency-chart" }, "Latency"), latency)),
    oneTarget ? null : healthTable(stats.targets, names),
  ].filter(Boolean);
}

const ms = (v) => (v === null || v === undefined ? "—" : `${v.toLocaleString()} ms`);

/** The targets with deliveries in the window, the least healthy first. */
function healthTable(targets, names) {
  const rows = targets.map((t) => {
    const name = names.get(t.target_id)?.name || "(deleted)";
    const settled = t.succeeded + t.failed;
    const rate = settled ? Math.round((100 * t.succeeded) / settled) : null;
    const tone = rate === null ? "pending" : rate === 100 ? "ok" : rate >= 90 ? "warn" : "bad";
    return h("tr", { "data-target": t.target_id },
      h("td", { "data-label": "Target", class: "target-cell" }, h("a", { href: `#/overview/target/${t.target_id}` }, name),
        h("div", { class: "meta" }, KIND_TITLES[t.target_kind] || t.target_kind)),
      h("td", { "data-label": "Health" }, h("span", { class: `badge ${tone}` }, rate === null ? "waiting" : `${rate}% delivered`)),
      h("td", { "data-label": "Succeeded", class: "num" }, t.succeeded),
      h("td", { "data-label": "Failed", class: "num" }, t.failed),
      h("td", { "data-label": "Pending", class: "num" }, t.pending),
      h("td", { "data-label": "Avg latency", class: "num" }, ms(t.avg_latency_ms)),
      h("td", {}, deliveriesLink(t.target_id, name)));
  });
  return h("section", { class: "history", "aria-labelledby": "health-title" }, h("h2", { id: "health-title" }, "Targets by health"),
    h("div", { class: "table-wrap" }, h("table", { class: "stack-table" },
      h("thead", {}, h("tr", {}, ["Target", "Health", "Succeeded", "Failed", "Pending", "Avg latency", ""].map((t, i) =>
        h("th", { scope: "col", class: i >= 2 && i <= 5 ? "num" : null }, t)))),
      h("tbody", {}, rows))));
}
