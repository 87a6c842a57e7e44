// Keys: list, create (the full key shown once, with a copy button), rename, restrict (IPs,
// domains, requests per minute within the plan, expiry), rotate, revoke.
import { api, session } from "../api.js";
import { badge, button, clear, errorNotice, field, form, h, input, notice, section, table, when } from "../dom.js";

const lines = (text) => text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);

async function copy(text, status) {
  try {
    await navigator.clipboard.writeText(text);
    status.replaceChildren(notice("Copied."));
  } catch {
    status.replaceChildren(notice("Copy failed: select the key and copy it yourself.", "error"));
  }
}

// The full key, once: after create and rotate.
function secretPanel(title, secret) {
  const status = h("div", { "aria-live": "polite" });
  const code = h("code", { testid: "new-key", tabindex: "0" }, secret);
  return h(
    "div",
    { class: "panel", role: "region", "aria-label": title },
    h("h2", {}, title),
    h("p", {}, "Copy it now: it is shown only this once."),
    h("div", { class: "secret" }, code, button("Copy", () => copy(secret, status), { testid: "copy-key", class: "secondary" })),
    status,
  );
}

function restrictions(k) {
  const parts = [];
  if (k.ip_allowlist.length) parts.push(`IPs: ${k.ip_allowlist.join(", ")}`);
  if (k.domain_allowlist.length) parts.push(`domains: ${k.domain_allowlist.join(", ")}`);
  if (k.rpm_limit) parts.push(`${k.rpm_limit} rpm`);
  if (k.expires_at) parts.push(`expires ${when(k.expires_at)}`);
  return parts.length ? parts.join("; ") : "none";
}

function editPanel(k, done) {
  const name = input({ name: "name", value: k.name, required: true, maxlength: "100" });
  const ips = h("textarea", { name: "ip_allowlist", rows: "2" });
  ips.value = k.ip_allowlist.join("\n");
  const domains = h("textarea", { name: "domain_allowlist", rows: "2" });
  domains.value = k.domain_allowlist.join("\n");
  const rpm = input({ type: "number", name: "rpm_limit", min: "1", value: k.rpm_limit ?? "" });
  const expires = input({ type: "date", name: "expires_at", value: k.expires_at ? k.expires_at.slice(0, 10) : "" });
  return section(
    `Edit key “${k.name}”`,
    form({ testid: "key-edit" }, [
      h("div", { class: "row" }, field("Name", name, { cls: "wide" }), field("Requests per minute", rpm, { hint: "empty: the plan's limit" }), field("Expires", expires)),
      field("IP allowlist (IPs or CIDRs, one per line)", ips),
      field("Domain allowlist (one per line)", domains),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Save"), button("Cancel", () => done(false), { class: "secondary" })),
    ], async () => {
      const body = {
        name: name.value.trim(),
        ip_allowlist: lines(ips.value),
        domain_allowlist: lines(domains.value),
        rpm_limit: rpm.value ? Number(rpm.value) : null,
      };
      const expiry = expires.value ? `${expires.value}T23:59:59Z` : null;
      if (expiry !== (k.expires_at ? `${k.expires_at.slice(0, 10)}T23:59:59Z` : null)) body.expires_at = expiry;
      await api(`/user/api-keys/${encodeURIComponent(k.id)}`, { method: "PATCH", body });
      done(true, `Key “${body.name}” saved.`);
    }),
  );
}

// A button that asks once more before acting (no native dialogs).
function confirmButton(text, question, action, props = {}) {
  const el = button(text, async () => {
    if (el.dataset.armed !== "1") {
      el.dataset.armed = "1";
      el.textContent = question;
      return;
    }
    el.disabled = true;
    await action();
  }, props);
  el.addEventListener("blur", () => {
    el.dataset.armed = "";
    el.textContent = text;
  });
  return el;
}

export async function render(el, ctx) {
  const flash = h("div", { "aria-live": "polite" });
  const extra = h("div");
  const list = h("div");

  async function refresh(message) {
    const { data } = await api("/user/api-keys");
    clear(list, table(
      [
        { label: "Name", get: (k) => [k.name, k.id === ctx.me.api_key_id ? [" ", badge("this session", "ok")] : null] },
        { label: "Key", get: (k) => h("code", { class: "mono" }, `${k.prefix}…${k.last_four}`) },
        { label: "Env", get: (k) => k.environment },
        { label: "Restrictions", get: restrictions },
        { label: "Created", get: (k) => when(k.created_at) },
        { label: "Last used", get: (k) => when(k.last_used_at) },
        { label: "Actions", get: (k) => h("div", { class: "actions" },
          button("Edit", () => clear(extra, editPanel(k, (changed, msg) => { clear(extra); if (changed) refresh(msg); })), { class: "secondary small", "aria-label": `Rename or restrict ${k.name}` }),
          confirmButton("Rotate", "Confirm rotate?", () => act(k, "rotate"), { class: "secondary small", "aria-label": `Rotate ${k.name}` }),
          confirmButton("Revoke", "Confirm revoke?", () => act(k, "revoke"), { class: "danger small", "aria-label": `Revoke ${k.name}` }),
        ) },
      ],
      data,
      { testid: "keys-table", caption: "Your API keys" },
    ));
    if (message) flash.replaceChildren(notice(message));
  }

  async function act(k, what) {
    try {
      if (what === "rotate") {
        const fresh = await api(`/user/api-keys/${encodeURIComponent(k.id)}`, { method: "PATCH", body: { rotate: true } });
        clear(extra, secretPanel(`Key “${k.name}” rotated`, fresh.api_key));
        if (k.id === ctx.me.api_key_id) {
          session.set(fresh.api_key); // this tab signed in with the old secret
        }
      } else {
        await api(`/user/api-keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
        if (k.id === ctx.me.api_key_id) {
          // this tab's own key: signed out
          session.clear();
          ctx.me = null;
          return ctx.go("signin");
        }
        clear(extra);
      }
      await refresh(what === "rotate" ? `Key “${k.name}” rotated: the old secret no longer works.` : `Key “${k.name}” revoked.`);
    } catch (err) {
      flash.replaceChildren(errorNotice(err));
    }
  }

  const name = input({ name: "name", testid: "keys-name", required: true, maxlength: "100", placeholder: "e.g. production" });
  const createForm = form({ "aria-label": "Create an API key" }, [
    h("div", { class: "row" }, field("Name of the new key", name, { cls: "wide" }), h("button", { type: "submit", testid: "keys-create" }, "Create key")),
  ], async () => {
    const created = await api("/user/api-keys", { method: "POST", body: { name: name.value.trim() || "console" } });
    name.value = "";
    clear(extra, secretPanel(`New key “${created.name}”`, created.api_key));
    await refresh();
  });

  clear(el, section("Create a key", createForm), flash, extra, section("Your keys", list));
  try {
    await refresh();
  } catch (err) {
    clear(list, errorNotice(err));
  }
}
