// Models: the public catalog, filtered by provider, modality, capability, price and context;
// each model's providers with their prices and health.
import { api, query } from "../api.js";
import { badge, button, clear, errorNotice, field, h, input, num, section, select, statusBadge, table } from "../dom.js";

const MODALITIES = ["", "text->text", "text+image->text", "text->image", "text->embedding", "audio->text"];
const CAPABILITIES = [["", "any"], ["function_calling", "function calling"], ["vision", "vision"], ["streaming", "streaming"]];
const PAGE = 50;

const price = (p, name) => (p && p[name] !== undefined ? `$${p[name]}` : "—");

function caps(m) {
  return [m.supports_streaming && "streaming", m.supports_function_calling && "tools", m.supports_vision && "vision"]
    .filter(Boolean)
    .map((c) => badge(c))
    .reduce((acc, b) => [...acc, b, " "], []);
}

async function detail(id, box) {
  clear(box, h("p", { class: "muted" }, "Loading…"));
  try {
    const m = await api(`/catalog/models/${id.split("/").map(encodeURIComponent).join("/")}`);
    clear(box, section(
      m.name || m.id,
      h("p", {}, h("code", { class: "mono" }, m.id), " · context ", num(m.context_length), " · ", m.modality || "", " · health ", statusBadge(m.health_status)),
      table(
        [
          { label: "Provider", get: (p) => p.slug },
          { label: "Native id", get: (p) => h("code", { class: "mono" }, p.native_id) },
          { label: "Prompt / 1M", get: (p) => price(p.pricing, "prompt"), num: true },
          { label: "Completion / 1M", get: (p) => price(p.pricing, "completion"), num: true },
          { label: "Context", get: (p) => num(p.context_length), num: true },
          { label: "Health", get: (p) => statusBadge(p.health_status) },
        ],
        m.providers || [],
        { testid: "model-providers", caption: `Providers of ${m.id}` },
      ),
    ));
    box.querySelector("h2").setAttribute("tabindex", "-1");
    box.querySelector("h2").focus();
  } catch (err) {
    clear(box, errorNotice(err));
  }
}

export async function render(el) {
  const providers = await api("/catalog/providers", { auth: false });
  const f = {
    q: input({ type: "search", name: "q", placeholder: "name or id", testid: "models-search" }),
    provider: select([["", "any"], ...providers.data.map((p) => [p.slug, p.name])], { name: "provider" }),
    modality: select(MODALITIES.map((m) => [m, m || "any"]), { name: "modality" }),
    capability: select(CAPABILITIES, { name: "capability" }),
    max_prompt_price: input({ type: "number", name: "max_prompt_price", min: "0", step: "any", placeholder: "USD / 1M" }),
    max_completion_price: input({ type: "number", name: "max_completion_price", min: "0", step: "any", placeholder: "USD / 1M" }),
    min_context: input({ type: "number", name: "min_context", min: "0", step: "1000" }),
    sort: select([["id", "id"], ["price", "price"], ["context", "context"]], { name: "sort" }),
  };
  const results = h("div", { "aria-live": "polite" });
  const more = h("div");
  const box = h("div");
  let rows = [];

  async function load(offset = 0) {
    const params = Object.fromEntries(Object.entries(f).map(([k, c]) => [k, c.value.trim()]));
    const page = await api(`/catalog/models${query({ ...params, limit: PAGE, offset })}`, { auth: false });
    rows = offset ? [...rows, ...page.data] : page.data;
    clear(results, h("p", { class: "muted" }, `${num(page.total)} models`), table(
      [
        { label: "Model", get: (m) => button(m.id, () => detail(m.id, box), { class: "secondary small", "aria-label": `Details of ${m.id}` }) },
        { label: "Name", get: (m) => m.name },
        { label: "Context", get: (m) => num(m.context_length), num: true },
        { label: "Prompt / 1M", get: (m) => price(m.pricing, "prompt"), num: true },
        { label: "Completion / 1M", get: (m) => price(m.pricing, "completion"), num: true },
        { label: "Capabilities", get: caps },
        { label: "Providers", get: (m) => (m.providers ? m.providers.map((p) => p.slug).join(", ") : m.provider_slug) },
        { label: "Health", get: (m) => statusBadge(m.health_status) },
      ],
      rows,
      { testid: "models-table", caption: "Models", empty: "No model matches these filters." },
    ));
    clear(more, page.next_offset !== null ? button("Load more", () => load(page.next_offset).catch((err) => clear(more, errorNotice(err))), { class: "secondary" }) : null);
  }

  const filters = h("form", { class: "row", role: "search", "aria-label": "Filter models" },
    field("Search", f.q, { cls: "wide" }), field("Provider", f.provider), field("Modality", f.modality), field("Capability", f.capability),
    field("Max prompt price", f.max_prompt_price), field("Max completion price", f.max_completion_price),
    field("Min context", f.min_context), field("Sort", f.sort));
  let timer = null;
  const reload = () => {
    clearTimeout(timer);
    timer = setTimeout(() => load().catch((err) => clear(results, errorNotice(err))), 200);
  };
  filters.addEventListener("input", reload);
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    reload();
  });
  const providerTable = table(
    [
      { label: "Provider", get: (p) => p.name },
      { label: "Slug", get: (p) => h("code", { class: "mono" }, p.slug) },
      { label: "Models", get: (p) => num(p.models), num: true },
      { label: "Health", get: (p) => statusBadge(p.health_status) },
      { label: "Sync", get: (p) => (p.sync ? p.sync.status : "—") },
    ],
    providers.data,
    { testid: "providers-table", caption: "Providers" },
  );
  clear(el, section("Filters", filters), box, section("Catalog", results, more), section("Providers", providerTable));
  await load();
}
