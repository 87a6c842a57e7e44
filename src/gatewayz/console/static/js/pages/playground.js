// Playground: pick a model (searching the model list), send a message, watch the answer stream
// in; then its cost, provider, attempts, cache and route reason (the X-Gatewayz-* headers).
import { api, request } from "../api.js";
import { button, clear, errorNotice, field, form, h, input, usd } from "../dom.js";

let models = null; // the model list, once per page load

// Server-sent events from a fetch body: yields each `data:` payload.
async function* events(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data) yield data;
    }
  }
}

// X-Gatewayz-Route (a router's choice): "mode=…; model=…; reason=…; runner_up=…" → rows.
const ROUTE_LABELS = { mode: "Router", model: "Routed to", reason: "Route reason", runner_up: "Runner-up" };

export function routeRows(header) {
  if (!header) return [["Route reason", "—", "playground-route"]];
  const pairs = header.split(";").map((part) => part.trim().split("=")).filter((kv) => kv.length === 2);
  if (!pairs.length) return [["Route reason", header, "playground-route"]];
  return pairs.map(([k, v]) => [ROUTE_LABELS[k] || k, v, k === "reason" ? "playground-route" : `playground-route-${k}`]);
}

function metaList(rows) {
  return h("dl", { class: "meta", testid: "playground-meta" }, rows.map(([label, value, testid]) => [h("dt", {}, label), h("dd", { testid }, value ?? "—")]));
}

export async function render(el) {
  if (!models) {
    const list = await api("/v1/models");
    // the smart routers are model names too (README: Routers)
    models = [...list.data.map((m) => m.id), "router:general", "router:code"];
  }
  const options = h("datalist", { id: "playground-models" }, models.map((id) => h("option", { value: id })));
  const model = input({ name: "model", list: "playground-models", testid: "playground-model", required: true, value: models.includes("simulated/echo") ? "simulated/echo" : models[0] || "", spellcheck: "false" });
  const prompt = h("textarea", { name: "message", testid: "playground-input", required: true, rows: "4", placeholder: "Say hello" });
  const maxTokens = input({ type: "number", name: "max_tokens", min: "1", max: "32000", value: "512" });
  const output = h("div", { class: "answer", testid: "playground-output", "aria-live": "polite", "aria-atomic": "false" });
  const meta = h("div");
  const status = h("div", { "aria-live": "polite" });
  let controller = null;
  const stop = button("Stop", () => controller && controller.abort(), { class: "secondary", disabled: true, testid: "playground-stop" });

  async function send() {
    const text = prompt.value.trim();
    if (!model.value.trim() || !text) throw new Error("Pick a model and write a message.");
    controller = new AbortController();
    stop.disabled = false;
    clear(output);
    clear(meta);
    status.replaceChildren();
    output.setAttribute("data-state", "streaming");
    const started = performance.now();
    let firstToken = null;
    let usage = null;
    try {
      const response = await request("/v1/chat/completions", {
        method: "POST",
        signal: controller.signal,
        body: {
          model: model.value.trim(),
          messages: [{ role: "user", content: text }],
          stream: true,
          stream_options: { include_usage: true },
          max_tokens: Number(maxTokens.value) || undefined,
        },
      });
      const head = response.headers;
      for await (const data of events(response.body)) {
        if (data === "[DONE]") break;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || "The stream failed.");
        for (const choice of chunk.choices || []) {
          const piece = choice.delta && choice.delta.content;
          if (piece) {
            if (firstToken === null) firstToken = performance.now() - started;
            output.append(document.createTextNode(piece));
          }
        }
        if (chunk.usage) usage = chunk.usage;
      }
      const total = performance.now() - started;
      const cost = head.get("x-gatewayz-cost") ?? (usage && usage.cost !== undefined ? String(usage.cost) : null);
      clear(meta, metaList([
        ["Provider", head.get("x-gatewayz-provider"), "playground-provider"],
        ["Attempts", head.get("x-gatewayz-attempts"), "playground-attempts"],
        ...routeRows(head.get("x-gatewayz-route")),
        ["Cache", head.get("x-gatewayz-cache"), "playground-cache"],
        ["Cost", cost === null ? "—" : usd(cost), "playground-cost"],
        ["Tokens", usage ? `${usage.prompt_tokens} in · ${usage.completion_tokens} out` : "—", "playground-tokens"],
        ["First token", firstToken === null ? "—" : `${firstToken.toFixed(0)} ms`],
        ["Total time", `${total.toFixed(0)} ms`],
        ["Request id", head.get("x-request-id")],
      ]));
      output.setAttribute("data-state", "done");
    } catch (err) {
      output.setAttribute("data-state", "error");
      if (err.name === "AbortError") status.append(errorNotice("Stopped."));
      else throw err;
    } finally {
      stop.disabled = true;
      controller = null;
    }
  }

  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      prompt.form.requestSubmit();
    }
  });

  clear(
    el,
    h(
      "section",
      { class: "panel", "aria-label": "Message" },
      form({ "aria-label": "Send a message" }, [
        options,
        h("div", { class: "row" }, field("Model (type to search)", model, { cls: "wide" }), field("Max tokens", maxTokens)),
        field("Message", prompt, { hint: "Ctrl+Enter sends" }),
        h("div", { class: "actions" }, h("button", { type: "submit", testid: "playground-send" }, "Send"), stop),
      ], send),
      status,
    ),
    h("section", { class: "panel", "aria-label": "Answer" }, h("h2", {}, "Answer"), output, meta),
  );
}
