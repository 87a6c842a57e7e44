// Dashboard: balance (allowance and purchased), plan and trial, spend and requests per day over
// the last 30 days, top models, latency percentiles, CSV export.
import { api, download, query } from "../api.js";
import { barChart } from "../chart.js";
import { badge, clear, errorNotice, field, h, ms, num, section, select, table, usd, when } from "../dom.js";

function stat(label, value, { testid, sub } = {}) {
  return h("div", { class: "panel stat" }, h("div", { class: "label" }, label), h("div", { class: "value", testid }, value), sub ? h("div", { class: "sub" }, sub) : null);
}

// Every UTC day from `from` to `to` (YYYY-MM-DD, inclusive).
export function days(from, to) {
  const out = [];
  const d = new Date(`${from}T00:00:00Z`);
  const end = new Date(`${to}T00:00:00Z`);
  while (d <= end) {
    out.push(d.toISOString().slice(0, 10));
    d.setUTCDate(d.getUTCDate() + 1);
  }
  return out;
}

function trialText(trial) {
  if (!trial.is_trial) return "Not on a trial";
  if (trial.expired) return "Trial expired";
  const left = trial.days_remaining === null ? "" : ` · ${trial.days_remaining} days left`;
  return `${trial.active ? "Trial active" : "Trial exhausted"}${left}`;
}

function planPanel(plan, trial) {
  const rows = [
    ["Plan", `${plan.tier.name} (${plan.plan})`],
    ["Requests per minute", num(plan.tier.rpm)],
    ["Tokens per day", num(plan.tier.tokens_per_day)],
    ["Monthly allowance", usd(plan.tier.monthly_allowance_usd)],
    ["Allowance left", usd(plan.allowance_remaining)],
    ["Allowance resets", when(plan.allowance_resets_at)],
    ["Spent today", `${usd(plan.spent_today)} of ${usd(plan.daily_spend_cap)} daily cap`],
    ["Trial", trialText(trial)],
  ];
  if (trial.is_trial) {
    rows.push(["Trial tokens", `${num(trial.tokens_used)} of ${num(trial.tokens_limit)}`]);
    rows.push(["Trial requests", `${num(trial.requests_used)} of ${num(trial.requests_limit)}`]);
  }
  return section(
    "Plan and trial",
    h("p", { testid: "plan" }, badge(plan.tier.name, "ok"), " ", trial.is_trial ? badge(trialText(trial), trial.active ? "warn" : "bad") : null),
    h("dl", { class: "meta" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
  );
}

function usagePanel(byDay) {
  const labels = days(byDay.from, byDay.to);
  const found = new Map(byDay.data.map((r) => [r.day, r]));
  const spend = labels.map((d) => Number(found.get(d)?.spend ?? 0));
  const requests = labels.map((d) => found.get(d)?.requests ?? 0);
  const short = (d) => d.slice(5);
  return section(
    `Usage, ${byDay.from} to ${byDay.to} (UTC)`,
    h(
      "div",
      { class: "grid", testid: "usage-chart" },
      h("div", { class: "panel" }, barChart({ title: "Spend per day (USD)", labels, values: spend, format: (v) => `$${+v.toFixed(6)}`, testid: "spend-chart", shortLabel: short })),
      h("div", { class: "panel" }, barChart({ title: "Requests per day", labels, values: requests, format: (v) => num(v), testid: "requests-chart", shortLabel: short })),
    ),
  );
}

function latencyPanel(totals) {
  return section(
    "Latency (all requests, 30 days)",
    h(
      "div",
      { class: "grid stats" },
      stat("p50", ms(totals.latency_p50_ms), { testid: "latency-p50" }),
      stat("p95", ms(totals.latency_p95_ms), { testid: "latency-p95" }),
      stat("p99", ms(totals.latency_p99_ms), { testid: "latency-p99" }),
    ),
  );
}

function topModels(byModel) {
  const rows = [...byModel.data].sort((a, b) => Number(b.spend) - Number(a.spend) || b.requests - a.requests).slice(0, 10);
  return section(
    "Top models",
    table(
      [
        { label: "Model", get: (r) => h("code", { class: "mono" }, r.model) },
        { label: "Requests", get: (r) => num(r.requests), num: true },
        { label: "Errors", get: (r) => num(r.errors), num: true },
        { label: "Tokens", get: (r) => num(r.total_tokens), num: true },
        { label: "Spend", get: (r) => usd(r.spend), num: true },
        { label: "p50", get: (r) => ms(r.latency_p50_ms), num: true },
        { label: "p95", get: (r) => ms(r.latency_p95_ms), num: true },
      ],
      rows,
      { testid: "top-models", caption: "Top models by spend", empty: "No requests in the last 30 days." },
    ),
  );
}

function exportPanel() {
  const group = select([["day", "per day"], ["model", "per model"], ["key", "per API key"]], { name: "group_by" });
  const status = h("div", { "aria-live": "polite" });
  const link = h("a", { href: "#", class: "button secondary", testid: "usage-csv", role: "button" }, "Export CSV");
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    status.replaceChildren();
    try {
      await download(`/user/usage${query({ group_by: group.value, format: "csv" })}`, "gatewayz-usage.csv");
    } catch (err) {
      status.append(errorNotice(err));
    }
  });
  return section("Export", h("div", { class: "row" }, field("Usage (last 30 days)", group), link), status);
}

export async function render(el) {
  const [balance, plan, trial, byDay, byModel] = await Promise.all([
    api("/user/balance"),
    api("/user/plan"),
    api("/trial/status"),
    api("/user/usage?group_by=day"),
    api("/user/usage?group_by=model"),
  ]);
  const t = byDay.totals;
  clear(
    el,
    h(
      "div",
      { class: "grid stats" },
      stat("Balance", usd(balance.balance), { testid: "balance", sub: `available ${usd(balance.available)} · held ${usd(balance.held)}` }),
      stat("Plan allowance", usd(balance.subscription_allowance), { testid: "balance-allowance", sub: `resets ${when(balance.allowance_resets_at)}` }),
      stat("Purchased credits", usd(balance.purchased_credits), { testid: "balance-purchased" }),
      stat("Spend, 30 days", usd(t.spend), { testid: "usage-spend", sub: `${num(t.total_tokens)} tokens` }),
      stat("Requests, 30 days", num(t.requests), { testid: "usage-requests", sub: `${num(t.errors)} errors` }),
    ),
    usagePanel(byDay),
    h("div", { class: "grid" }, planPanel(plan, trial), latencyPanel(t)),
    topModels(byModel),
    exportPanel(),
  );
}
