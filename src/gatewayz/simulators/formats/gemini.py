"""Google Gemini for the simulator: AI Studio (`/v1beta/models/{model}:generateContent`, key in
`x-goog-api-key`) and Vertex AI (`/v1/projects/{p}/locations/{l}/publishers/google/models/
{model}:generateContent`, Bearer token), each also `:streamGenerateContent` (`?alt=sse`: SSE,
else one JSON array), the model lists, and `POST /token`: a fake OAuth token endpoint for
service-account JWT grants (`state(sim).token_calls` counts its calls).

Requests are checked the way Gemini checks them (unknown fields, part shapes, the schema subset,
function responses matching the calls) and answered by the shared deterministic planner
(`content.plan_choice`) on an OpenAI-shaped view of the request: function calls when tools are
given and the mode is ANY or the model name ends with "tools" (two in parallel when two tools
exist), a thought part first when `thinkingConfig.includeThoughts`."""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from .. import model_lists
from ..content import Completion, compact_json, plan_choice, prompt_tokens
from ..faults import Fault, mid_stream, status_reply
from ..protocol import CHUNKED_END, SSE_CONTENT_TYPE, Reply, Request, chunk, response, response_head
from .gemini_checks import json_schema, normalize
from .gemini_checks import problem as _problem

if TYPE_CHECKING:
    from ..server import Simulator

MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-3-pro-preview")
THOUGHT = "Thinking it through: the user wants a clear, direct answer."
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_GENERATE = "(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)"


@dataclass
class State:
    """Per-simulator Gemini state: the OAuth tokens issued by `/token`."""

    token_calls: int = 0
    expires_in: int = 3600
    tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


_STATES: weakref.WeakKeyDictionary[Simulator, State] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def state(sim: Simulator) -> State:
    with _STATES_LOCK:
        return _STATES.setdefault(sim, State())


def error_dict(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}


def _error(req: Request, status: int, message: str, delay: float = 0.0) -> Reply:
    body = orjson.dumps(error_dict(status, message))
    return Reply(response(status, body, req.keep_alive), keep_alive=req.keep_alive, delay=delay)


def _json(req: Request, value: Any) -> Reply:
    return Reply(response(200, orjson.dumps(value), req.keep_alive), keep_alive=req.keep_alive)


# ---------------------------------------------------------------- auth and token endpoint
def _key_problem(sim: Simulator, req: Request) -> Reply | None:
    if sim.api_key is None:
        return None
    key = req.headers.get("x-goog-api-key") or (parse_qs(req.query).get("key") or [""])[0]
    if not key:
        msg = "Method doesn't allow unregistered callers. Please use an API Key."
        return _error(req, 403, msg)
    if key != sim.api_key:
        return _error(req, 400, "API key not valid. Please pass a valid API key.")
    return None


def _bearer_problem(sim: Simulator, req: Request) -> Reply | None:
    if sim.api_key is None:
        return None
    auth = req.headers.get("authorization", "")
    st = state(sim)
    with st.lock:
        ok = auth.startswith("Bearer ") and auth[7:] in st.tokens
    if not ok:
        msg = "Request had invalid authentication credentials. Expected OAuth 2 access token."
        return _error(req, 401, msg)
    return None


def _token(sim: Simulator, req: Request, _parsed: Any, _m: re.Match[str]) -> Reply:
    form = parse_qs(req.body.decode("utf-8", "replace"))
    assertion = (form.get("assertion") or [""])[0]
    claims: Any = None
    if assertion.count(".") == 2:
        payload = assertion.split(".")[1]
        try:
            claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (binascii.Error, ValueError):
            claims = None
    grant_ok = (form.get("grant_type") or [""])[0] == JWT_GRANT
    if not grant_ok or not isinstance(claims, dict) or not claims.get("iss"):
        body = {"error": "invalid_grant", "error_description": "Invalid JWT assertion."}
        return Reply(response(400, orjson.dumps(body), req.keep_alive), keep_alive=req.keep_alive)
    st = state(sim)
    with st.lock:
        st.token_calls += 1
        token = f"ya29.sim-{st.token_calls}-{os.urandom(8).hex()}"
        st.tokens.add(token)
        expires = st.expires_in
    return _json(req, {"access_token": token, "expires_in": expires, "token_type": "Bearer"})


# ---------------------------------------------------------------- model lists
def _studio_models(sim: Simulator, req: Request, _parsed: Any, _m: re.Match[str]) -> Reply:
    """`models.list`: the scripted list (simulators/model_lists.py) or MODELS, paged by
    `pageSize` (default 50, at most 1000) and `pageToken`."""
    problem = _key_problem(sim, req)
    if problem is not None:
        return problem
    scripted, fault = model_lists.lists_of(sim).take("gemini")
    failing = model_lists.fault_reply(req, fault, _list_error)
    if failing is not None:
        return failing
    entries = scripted if scripted is not None else [{"id": m} for m in MODELS]
    query = parse_qs(req.query)
    size = (query.get("pageSize") or ["50"])[0]
    items, token = model_lists.page(
        entries, min(1000, int(size)) if size.isdigit() else 50, (query.get("pageToken") or [""])[0]
    )
    body: dict[str, Any] = {"models": [_studio_entry(e) for e in items]}
    if token is not None:
        body["nextPageToken"] = token
    return model_lists.delayed(_json(req, body), fault)


def _studio_entry(e: dict[str, Any]) -> dict[str, Any]:
    embeds = "embeddings" in e.get("output_modalities", ())
    methods = ["embedContent"] if embeds else ["generateContent", "streamGenerateContent"]
    out: dict[str, Any] = {
        "name": f"models/{e['id']}",
        "displayName": e.get("name", e["id"]),
        "supportedGenerationMethods": [*methods, "countTokens"],
    }
    if "context_length" in e:
        out["inputTokenLimit"] = e["context_length"]
    return out


def _list_error(status: int) -> bytes:
    return orjson.dumps(error_dict(status, "simulated model list failure"))


def _vertex_models(sim: Simulator, req: Request, _parsed: Any, _m: re.Match[str]) -> Reply:
    problem = _bearer_problem(sim, req)
    if problem is not None:
        return problem
    return _json(
        req, {"publisherModels": [{"name": f"publishers/google/models/{m}"} for m in MODELS]}
    )


# ---------------------------------------------------------------- planning and rendering
def _planned(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI-shaped view of the request for `content.plan_choice`."""
    messages: list[dict[str, Any]] = []
    system = "".join(
        p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", ())
    )
    if system:
        messages.append({"role": "system", "content": system})
    for c in body["contents"]:
        parts = c["parts"]
        text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
        for p in parts:
            if "functionResponse" in p:
                messages.append(
                    {"role": "tool", "content": compact_json(p["functionResponse"]["response"])}
                )
        if c.get("role") == "model":
            calls = [
                {
                    "function": {
                        "name": p["functionCall"]["name"],
                        "arguments": compact_json(p["functionCall"].get("args", {})),
                    }
                }
                for p in parts
                if "functionCall" in p
            ]
            messages.append({"role": "assistant", "content": text, "tool_calls": calls})
        elif text or not any("functionResponse" in p for p in parts):
            messages.append({"role": "user", "content": text})
    fns = [d for t in body.get("tools") or () for d in (t.get("functionDeclarations") or ())]
    fcc = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    gen = body.get("generationConfig") or {}
    planned: dict[str, Any] = {"model": model, "messages": messages}
    if fns:
        planned["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": d["name"],
                    "parameters": json_schema(
                        d.get("parameters") or {"type": "object", "properties": {}}
                    ),
                },
            }
            for d in fns
        ]
        allowed = fcc.get("allowedFunctionNames") or []
        mode = fcc.get("mode", "AUTO")
        if mode == "ANY" and len(allowed) == 1:
            planned["tool_choice"] = {"type": "function", "function": {"name": allowed[0]}}
        else:
            planned["tool_choice"] = {"ANY": "required", "NONE": "none"}.get(mode, "auto")
    if "responseSchema" in gen:
        planned["response_format"] = {
            "type": "json_schema",
            "json_schema": {"schema": json_schema(gen["responseSchema"])},
        }
    elif gen.get("responseMimeType") == "application/json":
        planned["response_format"] = {"type": "json_object"}
    for src, dst in (("stopSequences", "stop"), ("maxOutputTokens", "max_tokens")):
        if src in gen:
            planned[dst] = gen[src]
    return planned


def _candidate(c: Completion, index: int, thoughts: bool, model: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": THOUGHT, "thought": True}] if thoughts else []
    if c.tool_calls:
        parts += [
            {"functionCall": {"name": tc.name, "args": orjson.loads(tc.arguments)}}
            for tc in c.tool_calls
        ]
        if thoughts:
            sig = base64.b64encode(f"sim-signature:{model}:{index}".encode()).decode()
            parts[1]["thoughtSignature"] = sig
    else:
        parts.append({"text": c.content or ""})
    reason = "MAX_TOKENS" if c.finish_reason == "length" else "STOP"
    return {"content": {"role": "model", "parts": parts}, "finishReason": reason, "index": index}


def _usage(ptoks: int, choices: list[Completion], thoughts: bool) -> dict[str, Any]:
    out_toks = sum(c.completion_tokens for c in choices)
    think = len(THOUGHT.split()) * len(choices) if thoughts else 0
    usage = {
        "promptTokenCount": ptoks,
        "candidatesTokenCount": out_toks,
        "totalTokenCount": ptoks + out_toks + think,
    }
    if think:
        usage["thoughtsTokenCount"] = think
    return usage


def _events(
    cands: list[dict[str, Any]],
    choices: list[Completion],
    base: dict[str, Any],
    usage: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """Stream events: a thought, then the text piece by piece (or all function calls at once);
    the last event of a candidate carries its finishReason, the very last the full usage."""
    events = []
    for cand, c in zip(cands, choices, strict=True):
        parts = cand["content"]["parts"]
        pieces = [[p] for p in parts if p.get("thought")]
        calls = [p for p in parts if "functionCall" in p]
        pieces += [calls] if calls else [[{"text": t}] for t in (c.pieces or [c.content or ""])]
        for k, group in enumerate(pieces):
            ev: dict[str, Any] = {
                "content": {"role": "model", "parts": group},
                "index": cand["index"],
            }
            if k == len(pieces) - 1:
                ev["finishReason"] = cand["finishReason"]
            events.append({"candidates": [ev], **base})
    if usage is not None:
        for ev in events:
            ev["usageMetadata"] = {
                "promptTokenCount": usage["promptTokenCount"],
                "totalTokenCount": usage["promptTokenCount"],
            }
        if events:
            events[-1]["usageMetadata"] = usage
        else:
            events.append({"usageMetadata": usage, **base})
    return events


def _generate(sim: Simulator, req: Request, parsed: Any, m: re.Match[str], vertex: bool) -> Reply:
    problem = _bearer_problem(sim, req) if vertex else _key_problem(sim, req)
    if problem is not None:
        return problem
    model, stream = m.group("model"), m.group("method") == "streamGenerateContent"
    f = sim.take_fault() or Fault()
    keep, delay = req.keep_alive, max(0.0, f.delay_s)
    if f.drop_after_chunks == 0 and not stream:
        return Reply(b"", keep_alive=False, delay=delay, drop_now=True)
    if f.status and not f.breaks_stream(stream):
        return status_reply(req, f, error_dict)
    parsed = normalize(parsed)
    problem_text = _problem(parsed)
    if problem_text is not None:
        return _error(req, 400, problem_text, delay)
    if not model.startswith("gemini"):
        api = "v1" if vertex else "v1beta"
        return _error(
            req,
            404,
            f"models/{model} is not found for API version {api}, or is not supported for "
            "generateContent.",
            delay,
        )
    planned = _planned(parsed, model)
    gen = parsed.get("generationConfig") or {}
    thoughts = (gen.get("thinkingConfig") or {}).get("includeThoughts") is True
    n = gen.get("candidateCount", 1)
    choices = [plan_choice(planned, i, text=f.text, empty=f.empty_stream) for i in range(n)]
    cands = [
        _candidate(c, i, thoughts and not f.empty_stream, model) for i, c in enumerate(choices)
    ]
    ptoks = prompt_tokens(planned["messages"])
    usage = None if f.omit_usage else _usage(ptoks, choices, thoughts and not f.empty_stream)
    base = {"modelVersion": model, "responseId": os.urandom(9).hex()}
    if not stream:
        answer: dict[str, Any] = {"candidates": cands, **base}
        if usage is not None:
            answer["usageMetadata"] = usage
        data = orjson.dumps(answer)
        if f.malformed:
            data = data[: len(data) // 2]
        full = response(200, data, keep)
        if f.drop_after_chunks is not None:  # > 0: headers and half the body, then drop
            return Reply(
                full[: len(full) - len(data) // 2], keep_alive=False, delay=delay, drop_after=0
            )
        return Reply(full, keep_alive=keep, delay=delay)
    if f.empty_stream:
        cands, choices = [], []
    events = _events(cands, choices, base, usage)
    if "alt=sse" not in req.query:  # without SSE: one JSON array of the same objects
        data = orjson.dumps(events)
        return Reply(
            response(200, data[: len(data) // 2] if f.malformed else data, keep),
            keep_alive=keep,
            delay=delay,
        )
    frames = [b"data: " + orjson.dumps(ev) + b"\r\n\r\n" for ev in events]
    if f.malformed:
        frames.insert(1, b"data: {not json\r\n\r\n")
    frames, drop_after = mid_stream(  # an error interrupting the stream: its body as an event
        frames, f, req, lambda s, text: b"data: " + orjson.dumps(error_dict(s, text)) + b"\r\n\r\n"
    )
    chunked = req.version != "1.0"
    keep = keep and chunked
    head = response_head(200, SSE_CONTENT_TYPE, keep, chunked=chunked)
    gap = max(0.0, f.chunk_delay_s)
    if chunked:
        frames = [chunk(fr) for fr in frames]
    return Reply(
        head,
        frames,
        tail=CHUNKED_END if chunked else b"",
        keep_alive=keep,
        delay=delay,
        gap=gap,
        drop_after=drop_after,
    )


def _studio(sim: Simulator, req: Request, parsed: Any, m: re.Match[str]) -> Reply:
    return _generate(sim, req, parsed, m, vertex=False)


def _vertex(sim: Simulator, req: Request, parsed: Any, m: re.Match[str]) -> Reply:
    return _generate(sim, req, parsed, m, vertex=True)


ROUTES = [
    ("POST", r"/v1beta/models/" + _GENERATE, _studio),
    (
        "POST",
        r"/v1(?:beta1)?/projects/[^/]+/locations/[^/]+/publishers/google/models/" + _GENERATE,
        _vertex,
    ),
    ("GET", r"/v1beta/models", _studio_models),
    ("GET", r"/v1beta1/publishers/google/models", _vertex_models),
    ("POST", r"/token", _token),
]
