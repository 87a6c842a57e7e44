"""Cohere's v2 chat API in the simulator: `POST /v2/chat` (JSON or an SSE stream of typed
events) and the Cohere-shaped model list (`POST /v2/embed` is in `cohere_media.py`). The bare
`/v1/models` path belongs to the OpenAI format, so the model list (and, equally, chat and
embed) is also served under a `/cohere` mount: point a Cohere provider's base URL at
`http://HOST:PORT/cohere` to use both.

Also home to the reply helpers the other non-OpenAI formats share (fault handling, JSON and
SSE framing)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from .. import model_lists
from ..content import Completion, plan_choice, prompt_tokens, split_pieces
from ..faults import Fault, mid_stream, status_reply
from ..protocol import CHUNKED_END, SSE_CONTENT_TYPE, Reply, Request, chunk, response, response_head

if TYPE_CHECKING:
    from ..server import Simulator

_NO_FAULT = Fault()
_ROLES = frozenset({"system", "user", "assistant", "tool"})
_FINISH = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL"}
TEMPLATE_TOKENS = 8  # Cohere counts its prompt template in usage.tokens, not in billed_units


# ---------------------------------------------------------------- shared reply helpers
def fault_reply(
    req: Request, f: Fault, stream: bool, error_body: Callable[[int, str], dict[str, Any]]
) -> Reply | None:
    """The reply a fault dictates before any content (a drop or an error status), or None."""
    if f.drop_after_chunks == 0 and not stream:
        return Reply(b"", keep_alive=False, delay=max(0.0, f.delay_s), drop_now=True)
    if f.status and not f.breaks_stream(stream):
        return status_reply(req, f, error_body)
    return None


def error_reply(req: Request, status: int, body: dict[str, Any], f: Fault = _NO_FAULT) -> Reply:
    keep = req.keep_alive
    head = response(status, orjson.dumps(body), keep)
    return Reply(head, keep_alive=keep, delay=max(0.0, f.delay_s))


def json_reply(req: Request, body: bytes, f: Fault) -> Reply:
    """A 200 JSON answer: `malformed` halves the body, `drop_after_chunks` > 0 sends the
    headers and half the body, then drops the connection."""
    keep, delay = req.keep_alive, max(0.0, f.delay_s)
    if f.malformed:
        body = body[: len(body) // 2]
    full = response(200, body, keep)
    if f.drop_after_chunks is not None:
        return Reply(
            full[: len(full) - len(body) // 2], keep_alive=False, delay=delay, drop_after=0
        )
    return Reply(full, keep_alive=keep, delay=delay)


def sse_reply(
    req: Request, events: list[bytes], f: Fault, error_event: Callable[[int, str], bytes]
) -> Reply:
    """A 200 SSE answer of already-formatted events, honouring chunk_delay_s and
    drop_after_chunks, or ending in `error_event` for a mid-stream error fault (chunked
    framing unless the client speaks HTTP/1.0)."""
    events, drop_after = mid_stream(events, f, req, error_event)
    chunked = req.version != "1.0"
    keep = req.keep_alive and chunked
    head = response_head(200, SSE_CONTENT_TYPE, keep, chunked=chunked)
    framed = [chunk(e) for e in events] if chunked else events
    return Reply(
        head,
        framed,
        tail=CHUNKED_END if chunked else b"",
        keep_alive=keep,
        delay=max(0.0, f.delay_s),
        gap=max(0.0, f.chunk_delay_s),
        drop_after=drop_after,
    )


# ---------------------------------------------------------------- Cohere
def _error(message: str) -> dict[str, Any]:
    return {"id": os.urandom(16).hex(), "message": message}


def _fault_error(status: int, message: str) -> dict[str, Any]:
    return _error(message)


def _error_event(status: int, message: str) -> bytes:
    """Cohere ends a failed stream with a message-end whose delta carries the error."""
    return _event("message-end", {"id": os.urandom(16).hex(), "delta": {"error": message}})


def _authorized(sim: Simulator, req: Request) -> bool:
    return sim.api_key is None or req.headers.get("authorization") == f"Bearer {sim.api_key}"


def _validate(parsed: Any) -> str | None:
    if not isinstance(parsed, dict):
        return "invalid request: body must be a JSON object"
    if not isinstance(parsed.get("model"), str):
        return "invalid request: model must be a string"
    messages = parsed.get("messages")
    if not isinstance(messages, list) or not messages:
        return "invalid request: messages must be a non-empty array"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            return (
                f"invalid request: messages[{i}].role must be one of system, user, assistant, tool"
            )
        if m["role"] == "tool" and not isinstance(m.get("tool_call_id"), str):
            return f"invalid request: messages[{i}].tool_call_id is required"
    if parsed.get("tool_choice") not in (None, "REQUIRED", "NONE"):
        return "invalid request: tool_choice must be REQUIRED or NONE"
    if "stream" in parsed and not isinstance(parsed["stream"], bool):
        return "invalid request: stream must be a boolean"
    max_tokens = parsed.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        return "invalid request: max_tokens must be a positive integer"
    return None


def _openai_view(parsed: dict[str, Any]) -> dict[str, Any]:
    """The request in the shape `content.plan_choice` reads."""
    tool_choice = {"REQUIRED": "required", "NONE": "none"}.get(parsed.get("tool_choice"), "auto")
    view: dict[str, Any] = {
        "model": parsed["model"],
        "messages": parsed["messages"],
        "tools": parsed.get("tools"),
        "tool_choice": tool_choice,
        "max_tokens": parsed.get("max_tokens"),
        "stop": parsed.get("stop_sequences"),
    }
    fmt = parsed.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        schema = fmt.get("json_schema")
        view["response_format"] = (
            {"type": "json_schema", "json_schema": {"schema": schema}}
            if isinstance(schema, dict)
            else {"type": "json_object"}
        )
    return view


def tool_plan(c: Completion) -> str:
    names = ", ".join(call.name for call in c.tool_calls)
    return f"I will call {names} to answer this."


def _usage(ptoks: int, c: Completion) -> dict[str, Any]:
    out = c.completion_tokens
    return {
        "billed_units": {"input_tokens": ptoks, "output_tokens": out},
        "tokens": {"input_tokens": ptoks + TEMPLATE_TOKENS, "output_tokens": out},
    }


def _calls(c: Completion) -> list[dict[str, Any]]:
    return [
        {"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}
        for t in c.tool_calls
    ]


def _body(rid: str, c: Completion, ptoks: int, with_usage: bool) -> bytes:
    message: dict[str, Any] = {"role": "assistant"}
    if c.tool_calls:
        message["tool_plan"] = tool_plan(c)
        message["tool_calls"] = _calls(c)
    else:
        message["content"] = [{"type": "text", "text": c.content or ""}]
    body: dict[str, Any] = {
        "id": rid,
        "message": message,
        "finish_reason": _FINISH[c.finish_reason],
    }
    if with_usage:
        body["usage"] = _usage(ptoks, c)
    return orjson.dumps(body)


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (kind.encode(), orjson.dumps({"type": kind, **data}))


def _events(rid: str, c: Completion, ptoks: int, f: Fault) -> list[bytes]:
    start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    events = [_event("message-start", {"id": rid, "delta": {"message": start}})]
    if f.malformed:
        events.append(b'event: content-delta\ndata: {"type": "content-delta", "delta": {\n\n')
    if c.tool_calls:
        for piece in split_pieces(tool_plan(c)):
            events.append(_event("tool-plan-delta", {"delta": {"message": {"tool_plan": piece}}}))
        for i, t in enumerate(c.tool_calls):
            call = {"id": t.id, "type": "function", "function": {"name": t.name, "arguments": ""}}
            events.append(
                _event("tool-call-start", {"index": i, "delta": {"message": {"tool_calls": call}}})
            )
            for part in t.argument_chunks():
                delta = {"message": {"tool_calls": {"function": {"arguments": part}}}}
                events.append(_event("tool-call-delta", {"index": i, "delta": delta}))
            events.append(_event("tool-call-end", {"index": i}))
    elif c.pieces:
        content = {"type": "text", "text": ""}
        events.append(
            _event("content-start", {"index": 0, "delta": {"message": {"content": content}}})
        )
        for piece in c.pieces:
            delta = {"message": {"content": {"text": piece}}}
            events.append(_event("content-delta", {"index": 0, "delta": delta}))
        events.append(_event("content-end", {"index": 0}))
    end: dict[str, Any] = {"finish_reason": _FINISH[c.finish_reason]}
    if not f.omit_usage:
        end["usage"] = _usage(ptoks, c)
    events.append(_event("message-end", {"id": rid, "delta": end}))
    return events


def chat(sim: Simulator, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    if not _authorized(sim, req):
        return error_reply(req, 401, _error("invalid api token"))
    f = sim.take_fault() or _NO_FAULT
    stream = isinstance(parsed, dict) and parsed.get("stream") is True
    early = fault_reply(req, f, stream, _fault_error)
    if early is not None:
        return early
    problem = _validate(parsed)
    if problem is not None:
        return error_reply(req, 400, _error(problem), f)
    view = _openai_view(parsed)
    c = plan_choice(view, 0, text=f.text, empty=f.empty_stream)
    ptoks = prompt_tokens(view["messages"])
    rid = os.urandom(16).hex()
    if not stream:
        return json_reply(req, _body(rid, c, ptoks, not f.omit_usage), f)
    return sse_reply(req, _events(rid, c, ptoks, f), f, _error_event)


def models(sim: Simulator, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    """`GET /v1/models`: the scripted list (simulators/model_lists.py) or the simulator's
    models, paged by `page_size` (default all) and `page_token`."""
    if not _authorized(sim, req):
        return error_reply(req, 401, _error("invalid api token"))
    scripted, fault = model_lists.lists_of(sim).take("cohere")
    failing = model_lists.fault_reply(
        req, fault, lambda s: orjson.dumps(_error(f"Simulated upstream fault: HTTP {s}."))
    )
    if failing is not None:
        return failing
    if scripted is None:
        scripted = [{"id": name.rsplit("/", 1)[-1], "tools": True} for name in sim.models]
    query = model_lists.query(req)
    size = query.get("page_size", "")
    items, token = model_lists.page(
        scripted, int(size) if size.isdigit() else len(scripted), query.get("page_token", "")
    )
    body: dict[str, Any] = {"models": [_model_entry(e) for e in items]}
    if token is not None:
        body["next_page_token"] = token
    reply = Reply(response(200, orjson.dumps(body), req.keep_alive), keep_alive=req.keep_alive)
    return model_lists.delayed(reply, fault)


def _model_entry(e: dict[str, Any]) -> dict[str, Any]:
    features = ["tools"] if e.get("tools") else []
    if "image" in e.get("input_modalities", ()):
        features.append("vision")
    return {
        "name": e["id"],
        "endpoints": ["chat"],
        "finetuned": False,
        "context_length": e.get("context_length", 128000),
        "features": features,
    }


ROUTES = [
    ("POST", r"(?:/cohere)?/v2/chat", chat),
    ("GET", r"/cohere/v1/models", models),
]
