// Time charts drawn by uPlot (vendored in ui/vendor/, MIT; its version is recorded in
// src/api/ui.rs), loaded the first time a chart is shown so other screens do not pay for it.

import { h } from "./dom.js";

let loading = null;

function loadUplot() {
  loading ||= new Promise((resolve, reject) => {
    document.head.append(h("link", { rel: "stylesheet", href: "/ui/vendor/uPlot.min.css" }));
    const script = h("script", { src: "/ui/vendor/uPlot.iife.min.js" });
    script.addEventListener("load", () => resolve(window.uPlot));
    script.addEventListener("error", () => {
      loading = null;
      reject(new Error("The chart library did not load."));
    });
    document.head.append(script);
  });
  return loading;
}

/**
 * A chart over time, described in words for screen readers (`label`), with a key of its series.
 * `times` are the buckets' starts in seconds, `step` their length; each series is {label, color, values, kind: "bar" | "line", dash}. Bars
 * are stacked in the order given (the first at the bottom). It fills its container's width and
 * follows it when the window is resized.
 */
export async function timeChart({ label, times, step, series, height = 220, unit = "" }) {
  const uPlot = await loadUplot();
  const box = h("div", { class: "chart", role: "img", "aria-label": label });
  const stacked = stack(series.filter((s) => s.kind === "bar"));
  // uPlot paints series in order: the tallest stacked bar first, so the shorter ones show over it.
  const drawn = [...stacked.reverse(), ...series.filter((s) => s.kind !== "bar").map((s) => ({ ...s, drawn: s.values }))];
  const options = {
    width: 300,
    height,
    legend: { show: false },
    cursor: { show: false },
    // Each bucket's bar is centred on its start: half a bucket of room on either side.
    scales: { x: { time: true, range: () => [times[0] - step / 2, times[times.length - 1] + step / 2] }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] } },
    axes: [
      { stroke: "#5b6475", grid: { stroke: "#eceff4" } },
      { stroke: "#5b6475", grid: { stroke: "#eceff4" }, size: 56, values: (u, ticks) => ticks.map((t) => `${formatNumber(t)}${unit}`) },
    ],
    series: [{}, ...drawn.map((s) => ({
      label: s.label,
      stroke: s.color,
      fill: s.kind === "bar" ? s.color : undefined,
      width: s.kind === "bar" ? 0 : 2,
      dash: s.dash,
      spanGaps: false,
      // A line's points show too: a bucket alone between empty ones has no line to draw.
      points: s.kind === "bar" ? { show: false } : { show: true, size: 6, fill: s.color },
      paths: s.kind === "bar" ? uPlot.paths.bars({ size: [0.8, 48], gap: 1 }) : undefined,
    }))],
  };
  const plot = new uPlot(options, [times, ...drawn.map((s) => s.drawn)], box);
  // Drawn at the container's width once it is laid out, and again whenever that changes.
  new ResizeObserver(([entry]) => {
    const width = Math.floor(entry.contentRect.width);
    if (width > 0 && width !== plot.width) plot.setSize({ width, height });
  }).observe(box);
  const key = h("ul", { class: "chart-key", "aria-hidden": "true" },
    series.map((s) => h("li", {}, h("span", { class: `swatch ${s.dash ? "dashed" : ""}`, style: `--swatch: ${s.color}` }), s.label)));
  return h("figure", { class: "chart-figure" }, box, key);
}

/** Stacked bars: each series' bar drawn from zero to the sum of it and those below it. */
function stack(bars) {
  let below = null;
  return bars.map((s) => {
    const drawn = s.values.map((v, i) => (v ?? 0) + (below ? below[i] : 0));
    below = drawn;
    return { ...s, drawn };
  });
}

export const formatNumber = (n) => (n >= 1000 ? `${+(n / 1000).toFixed(1)}k` : `${+n.toFixed(1)}`);
