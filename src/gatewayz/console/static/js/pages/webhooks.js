// Webhooks: endpoints (create, enable/disable, test, delete; the signing secret shown once),
// their events, the delivery log and redelivery.
import { api } from "../api.js";
import { badge, button, clear, errorNotice, field, form, h, input, notice, section, statusBadge, table, usd, when } from "../dom.js";

function secretPanel(title, secret) {
  return h("div", { class: "panel", role: "region", "aria-label": title }, h("h2", {}, title),
    h("p", {}, "The signing secret, shown only this once (it verifies X-Gatewayz-Signature):"),
    h("div", { class: "secret" }, h("code", { testid: "webhook-secret", tabindex: "0" }, secret)));
}

function logText(d) {
  return (d.log || []).map((entry) => [entry.status ?? entry.status_code ?? "", entry.error ?? entry.detail ?? ""].join(" ").trim()).filter(Boolean).join("; ") || "—";
}

async function deliveries(endpoint, box) {
  const url = `/user/webhooks/${encodeURIComponent(endpoint.id)}/deliveries?limit=50`;
  const flash = h("div", { "aria-live": "polite" });
  async function show(message) {
    const page = await api(url);
    clear(box, section(`Deliveries to ${endpoint.url}`, flash, table(
      [
        { label: "Event", get: (d) => h("code", { class: "mono" }, d.event) },
        { label: "Status", get: (d) => statusBadge(d.status) },
        { label: "Attempts", get: (d) => d.attempts, num: true },
        { label: "Created", get: (d) => when(d.created_at) },
        { label: "Delivered", get: (d) => when(d.delivered_at) },
        { label: "Next attempt", get: (d) => when(d.next_attempt_at) },
        { label: "Log", get: logText },
        { label: "", get: (d) => button("Redeliver", async () => {
          try {
            await api(`/user/webhooks/${encodeURIComponent(endpoint.id)}/deliveries/${encodeURIComponent(d.id)}/redeliver`, { method: "POST" });
            await show(`Delivery ${d.id} queued again.`);
          } catch (err) {
            flash.replaceChildren(errorNotice(err));
          }
        }, { class: "secondary small", "aria-label": `Redeliver ${d.event} ${d.id}` }) },
      ],
      page.data,
      { testid: "webhook-deliveries", caption: "Deliveries", empty: "No deliveries yet." },
    )));
    if (message) flash.replaceChildren(notice(message));
  }
  try {
    await show();
  } catch (err) {
    clear(box, errorNotice(err));
  }
}

export async function render(el, ctx) {
  const flash = h("div", { "aria-live": "polite" });
  const extra = h("div");
  const list = h("div");
  const kinds = ctx.config.webhook_events || [];

  async function call(path, options, message) {
    try {
      const out = await api(path, options);
      await refresh(message);
      return out;
    } catch (err) {
      flash.replaceChildren(errorNotice(err));
      return null;
    }
  }

  async function refresh(message) {
    const { data } = await api("/user/webhooks");
    const base = (w) => `/user/webhooks/${encodeURIComponent(w.id)}`;
    clear(list, table(
      [
        { label: "URL", get: (w) => h("code", { class: "mono" }, w.url) },
        { label: "Events", get: (w) => w.events.map((e) => [badge(e), " "]) },
        { label: "Low-credit threshold", get: (w) => usd(w.credits_low_threshold_usd), num: true },
        { label: "State", get: (w) => (w.enabled ? badge("enabled", "ok") : [badge("disabled", "bad"), w.disabled_reason ? ` ${w.disabled_reason}` : ""]) },
        { label: "Actions", get: (w) => h("div", { class: "actions" },
          button("Deliveries", () => deliveries(w, extra), { class: "secondary small", "aria-label": `Deliveries to ${w.url}` }),
          button("Send test", () => call(`${base(w)}/test`, { method: "POST" }, "Test event queued."), { class: "secondary small", "aria-label": `Send a test event to ${w.url}` }),
          button(w.enabled ? "Disable" : "Enable", () => call(base(w), { method: "PATCH", body: { enabled: !w.enabled } }, w.enabled ? "Endpoint disabled." : "Endpoint enabled."), { class: "secondary small" }),
          button("Rotate secret", async () => {
            const out = await call(`${base(w)}/rotate-secret`, { method: "POST" }, "Secret rotated.");
            if (out) clear(extra, secretPanel(`New secret for ${w.url}`, out.secret));
          }, { class: "secondary small" }),
          button("Delete", () => call(base(w), { method: "DELETE" }, "Endpoint deleted."), { class: "danger small", "aria-label": `Delete ${w.url}` }),
        ) },
      ],
      data,
      { testid: "webhooks-table", caption: "Webhook endpoints", empty: "No endpoints yet." },
    ));
    if (message) flash.replaceChildren(notice(message));
  }

  const url = input({ type: "url", name: "url", required: true, placeholder: "https://example.com/hooks/gatewayz", testid: "webhook-url" });
  const threshold = input({ type: "number", name: "threshold", min: "0", step: "any", placeholder: "1" });
  const boxes = kinds.map((k) => h("input", { type: "checkbox", name: "events", value: k, checked: true }));
  const create = form({ "aria-label": "Add a webhook endpoint" }, [
    h("div", { class: "row" }, field("Endpoint URL", url, { cls: "wide" }), field("Low-credit threshold (USD)", threshold)),
    h("fieldset", {}, h("legend", {}, "Events"), h("div", { class: "row" }, boxes.map((b) => h("label", { class: "check" }, b, b.value)))),
    h("p", {}, h("button", { type: "submit", testid: "webhook-create" }, "Add endpoint")),
  ], async () => {
    const body = { url: url.value.trim(), events: boxes.filter((b) => b.checked).map((b) => b.value) };
    if (threshold.value) body.credits_low_threshold_usd = threshold.value;
    const created = await api("/user/webhooks", { method: "POST", body });
    url.value = "";
    clear(extra, secretPanel(`Endpoint ${created.url} added`, created.secret));
    await refresh();
  });
  clear(el, section("Add an endpoint", create), flash, extra, section("Endpoints", list));
  await refresh();
}
