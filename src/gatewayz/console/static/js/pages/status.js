// Status (public, no sign-in): the overall state, each provider's status and uptime, open and
// recent incidents, and what this worker saw of each model.
import { api } from "../api.js";
import { clear, h, ms, num, pct, section, statusBadge, table, when } from "../dom.js";

const uptime = (u, span) => (u ? pct(u[span]) : "—");

export async function render(el) {
  const [page, incidents, byModel] = await Promise.all([
    api("/status", { auth: false }),
    api("/status/incidents?limit=20", { auth: false }),
    api("/status/models", { auth: false }),
  ]);
  const incidentTable = (rows, testid, empty) => table(
    [
      { label: "Provider", get: (i) => i.provider },
      { label: "Model", get: (i) => i.model || "all" },
      { label: "Severity", get: (i) => i.severity },
      { label: "Status", get: (i) => statusBadge(i.status) },
      { label: "Started", get: (i) => when(i.started_at) },
      { label: "Resolved", get: (i) => when(i.resolved_at) },
      { label: "Summary", get: (i) => i.title || i.summary || i.reason || "" },
    ],
    rows,
    { testid, empty },
  );
  clear(
    el,
    h("p", { class: "panel" }, "Overall: ", h("span", { testid: "status-overall" }, statusBadge(page.status)), h("span", { class: "muted" }, ` · updated ${when(page.updated_at)}`)),
    section("Providers", table(
      [
        { label: "Provider", get: (p) => p.provider },
        { label: "Status", get: (p) => statusBadge(p.status) },
        { label: "Uptime 24 h", get: (p) => uptime(p.uptime, "24h"), num: true },
        { label: "7 days", get: (p) => uptime(p.uptime, "7d"), num: true },
        { label: "30 days", get: (p) => uptime(p.uptime, "30d"), num: true },
      ],
      page.providers,
      { testid: "status-table", caption: "Provider status and uptime", empty: "No providers." },
    )),
    section("Open incidents", incidentTable(page.incidents, "status-incidents", "No open incidents.")),
    section("Recent incidents", incidentTable(incidents.data, "status-history", "No incidents recorded.")),
    section(`Models (last ${Math.round(byModel.window_s / 60)} minutes)`, table(
      [
        { label: "Model", get: (m) => h("code", { class: "mono" }, m.model) },
        { label: "Provider", get: (m) => m.provider },
        { label: "Status", get: (m) => statusBadge(m.status) },
        { label: "Attempts", get: (m) => num(m.attempts), num: true },
        { label: "Success", get: (m) => pct(m.success_rate), num: true },
        { label: "p50", get: (m) => ms(m.latency_p50_ms), num: true },
        { label: "p95", get: (m) => ms(m.latency_p95_ms), num: true },
        { label: "Uptime 30 days", get: (m) => uptime(m.uptime, "30d"), num: true },
      ],
      byModel.data,
      { testid: "status-models", caption: "Model health", empty: "No requests seen recently." },
    )),
  );
}
