// A few DOM helpers: elements from plain calls (no templates, no inline styles or handlers:
// the page's CSP forbids both), tables, forms, notices and number formats.
let ids = 0;

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name === "testid") el.setAttribute("data-testid", value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "value") el.value = value;
    else if (name === "checked" || name === "disabled" || name === "selected") el[name] = true;
    else el.setAttribute(name, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function uid(prefix = "f") {
  ids += 1;
  return `${prefix}-${ids}`;
}

// A labelled control: <label>Text <input …></label>.
export function field(label, control, { hint, cls } = {}) {
  const parts = [label, control];
  if (hint) {
    const id = uid("hint");
    control.setAttribute("aria-describedby", id);
    parts.push(h("span", { id, class: "muted" }, hint));
  }
  return h("label", { class: cls }, ...parts);
}

export function input(props = {}) {
  return h("input", { type: "text", autocomplete: "off", ...props });
}

export function select(options, props = {}) {
  const el = h("select", props);
  for (const option of options) {
    const [value, text] = Array.isArray(option) ? option : [option, option];
    el.append(h("option", { value }, text));
  }
  if (props.value !== undefined) el.value = props.value;
  return el;
}

export function button(text, onclick, props = {}) {
  return h("button", { type: "button", onclick, ...props }, text);
}

// A message region: role=alert for errors (read at once), role=status otherwise.
export function notice(message, kind = "ok") {
  const role = kind === "error" ? "alert" : "status";
  return h("div", { class: `notice ${kind}`, role }, message);
}

export function errorNotice(err) {
  return notice(err && err.message ? err.message : String(err), "error");
}

// A table in a scrolling wrapper. columns: [{label, get(row) → node|text, num}]
export function table(columns, rows, { testid, caption, empty = "Nothing yet." } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : null }, c.label)));
  const body = h("tbody");
  for (const row of rows) {
    body.append(h("tr", {}, columns.map((c) => h("td", { class: c.num ? "num" : null }, c.get(row)))));
  }
  if (!rows.length) body.append(h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, empty)));
  return h(
    "div",
    { class: "table-wrap" },
    h("table", { testid }, caption ? h("caption", { class: "sr-only" }, caption) : null, h("thead", {}, head), body),
  );
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || ""}` }, text);
}

export function statusBadge(status) {
  const kind = { operational: "ok", closed: "ok", delivered: "ok", degraded: "warn",
    half_open: "warn", pending: "warn", down: "bad", open: "bad", failed: "bad",
    major_outage: "bad" }[status];
  return badge(String(status || "unknown").replace(/_/g, " "), kind);
}

// USD amounts are the API's exact decimal strings, shown as they are.
export function usd(text) {
  if (text === null || text === undefined) return "—";
  return text.startsWith("-") ? `-$${text.slice(1)}` : `$${text}`;
}

export function num(value) {
  return value === null || value === undefined ? "—" : Number(value).toLocaleString("en-US");
}

export function ms(value) {
  return value === null || value === undefined ? "—" : `${Number(value).toFixed(1)} ms`;
}

export function pct(value) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(2)}%`;
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

export function section(title, ...children) {
  const id = uid("sec");
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

// A form whose submit runs `onsubmit(form)` with the button disabled and errors shown in it.
export function form(props, children, onsubmit) {
  const status = h("div", { "aria-live": "polite" });
  const el = h("form", { ...props, novalidate: null }, ...children, status);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = el.querySelector("button[type=submit]");
    if (submit) submit.disabled = true;
    status.replaceChildren();
    try {
      const message = await onsubmit(el);
      if (message) status.append(notice(message));
    } catch (err) {
      status.append(errorNotice(err));
    } finally {
      if (submit) submit.disabled = false;
    }
  });
  return el;
}
