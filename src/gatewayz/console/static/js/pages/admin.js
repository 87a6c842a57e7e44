// Admin (the admin role): users (search, role, plan, grant credits), then pricing overrides,
// circuit breakers and the audit log (admin_ops.js).
import { api, query } from "../api.js";
import { button, clear, errorNotice, field, form, h, input, notice, section, select, table, when } from "../dom.js";
import { auditSection, breakersSection, pricingSection } from "./admin_ops.js";

const ROLES = ["free", "dev", "team", "admin"];

function userActions(u, plans, flash, refresh) {
  const id = encodeURIComponent(u.id);
  const role = select(ROLES, { value: u.role, "aria-label": `Role of ${u.email}` });
  const plan = select(plans, { value: u.plan, "aria-label": `Plan of ${u.email}` });
  const amount = input({ type: "number", min: "0.01", step: "0.01", placeholder: "USD", "aria-label": `Credits to grant to ${u.email}`, testid: "grant-amount" });
  const run = async (work) => {
    try {
      flash.replaceChildren(notice(await work()));
      await refresh();
    } catch (err) {
      flash.replaceChildren(errorNotice(err));
    }
  };
  return h(
    "div",
    { class: "actions" },
    role,
    button("Set role", () => run(async () => {
      const out = await api(`/admin/users/${id}/role`, { method: "POST", body: { role: role.value } });
      return `${u.email}: role ${out.previous_role} → ${out.role}.`;
    }), { class: "secondary small", "aria-label": `Set the role of ${u.email}` }),
    plan,
    button("Set plan", () => run(async () => {
      const out = await api(`/admin/users/${id}/plan`, { method: "POST", body: { plan: plan.value } });
      return out.changed ? `${u.email}: plan ${out.previous_plan} → ${out.plan}.` : `${u.email} is already on ${out.plan}.`;
    }), { class: "secondary small", "aria-label": `Set the plan of ${u.email}` }),
    amount,
    button("Grant credits", () => run(async () => {
      if (!amount.value || Number(amount.value) <= 0) throw new Error("Enter a positive amount in USD.");
      const out = await api("/admin/credits", { method: "POST", body: { user_id: u.id, amount_usd: amount.value, type: "grant", description: "granted in the console" } });
      return `Granted $${out.amount} to ${u.email}: balance now $${out.balance}.`;
    }), { class: "small", testid: "grant-submit", "aria-label": `Grant credits to ${u.email}` }),
  );
}

async function usersSection() {
  const plansList = await api("/plans", { auth: false });
  const plans = plansList.data.map((t) => [t.slug, t.name]);
  const flash = h("div", { "aria-live": "polite", testid: "admin-flash" });
  const results = h("div");
  const q = input({ type: "search", name: "q", placeholder: "e-mail or user id", testid: "admin-search" });
  let offset = 0;
  async function refresh() {
    const page = await api(`/admin/users${query({ q: q.value.trim(), limit: 25, offset })}`);
    clear(
      results,
      h("p", { class: "muted" }, `${page.total} users${page.total > 25 ? `, ${offset + 1}–${offset + page.data.length} shown` : ""}`),
      table(
        [
          { label: "E-mail", get: (u) => u.email },
          { label: "Id", get: (u) => h("code", { class: "mono" }, u.id) },
          { label: "Role", get: (u) => u.role },
          { label: "Plan", get: (u) => u.plan },
          { label: "Active", get: (u) => (u.is_active ? "yes" : "no") },
          { label: "Created", get: (u) => when(u.created_at) },
          { label: "Change", get: (u) => userActions(u, plans, flash, refresh) },
        ],
        page.data,
        { testid: "admin-users", caption: "Users", empty: "No user matches." },
      ),
      h("div", { class: "actions" },
        offset > 0 ? button("Previous", () => { offset = Math.max(0, offset - 25); refresh(); }, { class: "secondary small" }) : null,
        page.has_more ? button("Next", () => { offset += 25; refresh(); }, { class: "secondary small" }) : null),
    );
  }
  const search = form({ role: "search", "aria-label": "Search users" }, [
    h("div", { class: "row" }, field("Search users", q, { cls: "wide" }), h("button", { type: "submit", testid: "admin-search-submit" }, "Search")),
  ], async () => {
    offset = 0;
    await refresh();
  });
  await refresh();
  return section("Users", search, flash, results);
}

export async function render(el) {
  const [users, pricing, breakers, audit] = await Promise.all([usersSection(), pricingSection(), breakersSection(), auditSection()]);
  clear(el, users, pricing, breakers, audit);
}
