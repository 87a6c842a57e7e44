// The console's shell: hash routes (#/dashboard …: nothing of the session in a URL), the
// navigation, who is signed in, and the sign-in page.
import { api, ApiError, session } from "./api.js";
import { button, clear, errorNotice, field, form, h, input } from "./dom.js";
import * as admin from "./pages/admin.js";
import * as dashboard from "./pages/dashboard.js";
import * as keys from "./pages/keys.js";
import * as models from "./pages/models.js";
import * as playground from "./pages/playground.js";
import * as status from "./pages/status.js";
import * as webhooks from "./pages/webhooks.js";

const PAGES = [
  { path: "dashboard", title: "Dashboard", page: dashboard },
  { path: "keys", title: "Keys", page: keys },
  { path: "playground", title: "Playground", page: playground },
  { path: "models", title: "Models", page: models, public: true },
  { path: "webhooks", title: "Webhooks", page: webhooks },
  { path: "status", title: "Status", page: status, public: true },
  { path: "admin", title: "Admin", page: admin, admin: true },
];

const ctx = { me: null, config: { privy: false, webhook_events: [] } };
const main = document.getElementById("main");
ctx.go = (path) => go(path);

function current() {
  const path = location.hash.replace(/^#\/?/, "").split("?")[0];
  return path || (session.key ? "dashboard" : "signin");
}

export function go(path) {
  if (location.hash === `#/${path}`) route();
  else location.hash = `#/${path}`;
}

function visible(p) {
  if (p.public) return true;
  if (!ctx.me) return false;
  return !p.admin || ctx.me.permissions.includes("admin:access");
}

function renderNav(active) {
  const nav = document.getElementById("nav");
  clear(
    nav,
    PAGES.filter(visible).map((p) =>
      h("a", { href: `#/${p.path}`, "aria-current": p.path === active ? "page" : null }, p.title),
    ),
  );
  const who = document.getElementById("who");
  if (ctx.me) {
    clear(who, h("span", { testid: "whoami" }, `${ctx.me.email} · ${ctx.me.role}`), button("Sign out", signOut, { class: "secondary small" }));
  } else {
    clear(who, h("a", { href: "#/signin", class: "button small" }, "Sign in"));
  }
}

function signOut() {
  session.clear();
  ctx.me = null;
  go("signin");
}

async function loadMe() {
  if (!session.key) {
    ctx.me = null;
    return;
  }
  try {
    ctx.me = await api("/user/me");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) session.clear();
    ctx.me = null;
    throw err;
  }
}

function signInPage() {
  const key = input({ type: "password", name: "key", testid: "login-key", required: true, autocomplete: "off", spellcheck: "false" });
  const parts = [
    h("h1", { tabindex: "-1" }, "Sign in"),
    h("p", { class: "muted" }, "Use one of your Gatewayz API keys. It is kept in this tab only (sessionStorage) and sent in the Authorization header."),
    form({ "aria-label": "Sign in with an API key" }, [
      field("API key", key),
      h("p", {}, h("button", { type: "submit", testid: "login-submit" }, "Sign in")),
    ], async () => {
      const value = key.value.trim();
      if (!value) throw new Error("Enter an API key.");
      session.set(value);
      key.value = "";
      await loadMe();
      go("dashboard");
    }),
  ];
  if (ctx.config.privy) parts.push(privyForm());
  return h("div", { class: "panel signin" }, parts);
}

// Privy: its identity token (from the app's Privy login) exchanged at POST /auth for a key.
function privyForm() {
  const token = input({ type: "password", name: "privy-token", testid: "privy-token" });
  return h(
    "div",
    {},
    h("h2", {}, "Sign in with Privy"),
    h("p", { class: "muted" }, `Privy app ${ctx.config.privy_app_id}: paste the identity token of your Privy login; the gateway gives this tab a new API key.`),
    form({ "aria-label": "Sign in with Privy" }, [field("Privy identity token", token), h("p", {}, h("button", { type: "submit" }, "Continue with Privy"))], async () => {
      const result = await api("/auth", { method: "POST", auth: false, body: { token: token.value.trim(), new_api_key: true } });
      if (!result.api_key) throw new Error("The gateway returned no API key.");
      session.set(result.api_key);
      await loadMe();
      go("dashboard");
    }),
  );
}

async function route() {
  const path = current();
  const entry = PAGES.find((p) => p.path === path);
  if (session.key && !ctx.me) {
    try {
      await loadMe();
    } catch (err) {
      if (!session.key) return go("signin");
      clear(main, errorNotice(err));
      return;
    }
  }
  if (!entry || path === "signin" || (!visible(entry) && !ctx.me)) {
    renderNav("signin");
    document.title = "Sign in · Gatewayz console";
    clear(main, signInPage());
    main.querySelector("h1").focus();
    return;
  }
  if (!visible(entry)) return go("dashboard");
  renderNav(path);
  document.title = `${entry.title} · Gatewayz console`;
  const heading = h("h1", { tabindex: "-1" }, entry.title);
  const body = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  clear(main, heading, body);
  heading.focus();
  try {
    await entry.page.render(body, ctx);
  } catch (err) {
    clear(body, errorNotice(err));
  } finally {
    body.removeAttribute("aria-busy");
  }
}

window.addEventListener("hashchange", route);
// A key refused mid-session (revoked or expired elsewhere): back to the sign-in page.
window.addEventListener("gw:unauthorized", () => {
  session.clear();
  if (ctx.me) {
    ctx.me = null;
    go("signin");
  }
});

async function start() {
  try {
    ctx.config = await api("/console/config.json", { auth: false });
  } catch {
    // the defaults: no Privy
  }
  await route();
}

start();
