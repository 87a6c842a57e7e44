// A bar chart as SVG (no library): one bar per label, a tooltip per bar, the scale's top value
// on the axis, and the same numbers in a table for screen readers and keyboard users.
import { h, table } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 200;
const PAD = { left: 48, right: 8, top: 10, bottom: 24 };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  for (const child of children) el.append(child);
  return el;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

// labels: strings; values: numbers; format(value) → text. Returns a <figure>.
export function barChart({ title, labels, values, format = String, testid, shortLabel }) {
  const max = niceMax(Math.max(0, ...values));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / Math.max(labels.length, 1);
  const bars = values.map((value, i) => {
    const height = (value / max) * plotH;
    const rect = svg("rect", {
      class: "bar",
      x: (PAD.left + i * step + step * 0.15).toFixed(1),
      y: (PAD.top + plotH - height).toFixed(1),
      width: (step * 0.7).toFixed(1),
      height: Math.max(height, value > 0 ? 1 : 0).toFixed(1),
    });
    rect.append(svg("title", {}, `${labels[i]}: ${format(value)}`));
    return rect;
  });
  const ticks = [];
  const every = Math.max(1, Math.ceil(labels.length / 6));
  labels.forEach((label, i) => {
    if (i % every !== 0 && i !== labels.length - 1) return;
    const x = PAD.left + i * step + step / 2;
    ticks.push(svg("text", { x: x.toFixed(1), y: H - 6, "text-anchor": "middle" }, shortLabel ? shortLabel(label) : label));
  });
  const total = values.reduce((a, b) => a + b, 0);
  const chart = svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}: ${labels.length} bars, total ${format(total)}` },
    svg("line", { class: "axis", x1: PAD.left, y1: PAD.top + plotH, x2: W - PAD.right, y2: PAD.top + plotH }),
    svg("line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: PAD.top + plotH }),
    svg("text", { x: PAD.left - 6, y: PAD.top + 10, "text-anchor": "end" }, format(max)),
    svg("text", { x: PAD.left - 6, y: PAD.top + plotH, "text-anchor": "end" }, "0"),
    ...bars,
    ...ticks,
  );
  const rows = labels.map((label, i) => ({ label, value: values[i] }));
  return h(
    "figure",
    { testid },
    h("figcaption", {}, title),
    chart,
    h(
      "details",
      {},
      h("summary", {}, `${title}: data`),
      table([{ label: "Day", get: (r) => r.label }, { label: title, get: (r) => format(r.value), num: true }], rows),
    ),
  );
}
