// Admin operations: model price overrides, provider circuit breakers, the audit log.
import { api, query } from "../api.js";
import { button, clear, errorNotice, field, form, h, input, notice, section, statusBadge, table, when } from "../dom.js";

const PRICES = [["prompt", "Prompt / 1M tokens"], ["completion", "Completion / 1M tokens"], ["cached_read", "Cached read / 1M"], ["request", "Per request"]];

export async function pricingSection() {
  const flash = h("div", { "aria-live": "polite" });
  const list = h("div");
  async function refresh(message) {
    const { data } = await api("/admin/pricing");
    clear(list, table(
      [
        { label: "Model", get: (r) => h("code", { class: "mono" }, r.model) },
        { label: "Provider", get: (r) => r.provider || "any" },
        ...PRICES.map(([name, label]) => ({ label, get: (r) => (r[name] !== undefined ? `$${r[name]}` : "—"), num: true })),
        { label: "From", get: (r) => r.effective_from || "now" },
        { label: "In effect", get: (r) => (r.in_effect ? "yes" : "no") },
        { label: "", get: (r) => button("Delete", async () => {
          try {
            await api(`/admin/pricing/${encodeURIComponent(r.id)}`, { method: "DELETE" });
            await refresh(`Override ${r.id} deleted.`);
          } catch (err) {
            flash.replaceChildren(errorNotice(err));
          }
        }, { class: "danger small", "aria-label": `Delete the override of ${r.model}` }) },
      ],
      data,
      { testid: "admin-pricing", caption: "Price overrides", empty: "No overrides: the packaged prices apply." },
    ));
    if (message) flash.replaceChildren(notice(message));
  }
  const model = input({ name: "model", required: true, placeholder: "openai/gpt-4o" });
  const provider = input({ name: "provider", placeholder: "any" });
  const prices = PRICES.map(([name, label]) => [name, input({ type: "text", inputmode: "decimal", name, "aria-label": label, placeholder: "USD" })]);
  const add = form({ "aria-label": "Add a price override" }, [
    h("div", { class: "row" }, field("Model", model), field("Provider", provider), prices.map(([name, el]) => field(PRICES.find((p) => p[0] === name)[1], el))),
    h("p", {}, h("button", { type: "submit" }, "Add override")),
  ], async () => {
    const body = { model: model.value.trim() };
    if (provider.value.trim()) body.provider = provider.value.trim();
    for (const [name, el] of prices) if (el.value.trim()) body[name] = el.value.trim();
    await api("/admin/pricing", { method: "POST", body });
    await refresh(`Override for ${body.model} added.`);
  });
  await refresh();
  return section("Pricing overrides", add, flash, list);
}

export async function breakersSection() {
  const flash = h("div", { "aria-live": "polite" });
  const list = h("div");
  async function refresh(message) {
    const { data } = await api("/admin/circuit-breakers");
    clear(list, table(
      [
        { label: "Provider", get: (b) => b.provider },
        { label: "Model", get: (b) => b.model || "all models" },
        { label: "State", get: (b) => statusBadge(b.state) },
        { label: "Failures", get: (b) => b.failures, num: true },
        { label: "Opened", get: (b) => when(b.opened_at) },
        { label: "Retry at", get: (b) => when(b.retry_at) },
        { label: "", get: (b) => button("Reset", async () => {
          try {
            await api(`/admin/circuit-breakers/${encodeURIComponent(b.provider)}/reset${query({ model: b.model })}`, { method: "POST" });
            await refresh(`Breaker of ${b.provider}${b.model ? ` × ${b.model}` : ""} reset.`);
          } catch (err) {
            flash.replaceChildren(errorNotice(err));
          }
        }, { class: "secondary small", "aria-label": `Reset the breaker of ${b.provider} ${b.model || ""}` }) },
      ],
      data,
      { testid: "admin-breakers", caption: "Circuit breakers", empty: "No breaker has recorded anything." },
    ));
    if (message) flash.replaceChildren(notice(message));
  }
  await refresh();
  return section("Circuit breakers", flash, list);
}

export async function auditSection() {
  const list = h("div");
  const event = input({ name: "event", placeholder: "e.g. credits_granted" });
  async function refresh() {
    const { data } = await api(`/admin/audit-logs${query({ event: event.value.trim(), limit: 50 })}`);
    clear(list, table(
      [
        { label: "When", get: (r) => when(r.created_at) },
        { label: "Event", get: (r) => h("code", { class: "mono" }, r.event) },
        { label: "Severity", get: (r) => r.severity },
        { label: "User", get: (r) => r.user_id || "—" },
        { label: "Path", get: (r) => r.path || "—" },
        { label: "Detail", get: (r) => (r.detail ? JSON.stringify(r.detail) : "—") },
      ],
      data,
      { testid: "admin-audit", caption: "Audit log", empty: "No events." },
    ));
  }
  const filter = form({ role: "search", "aria-label": "Filter the audit log" }, [
    h("div", { class: "row" }, field("Event", event), h("button", { type: "submit" }, "Filter")),
  ], refresh);
  await refresh();
  return section("Audit log", filter, list);
}
