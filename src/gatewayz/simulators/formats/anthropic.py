"""The Anthropic Messages API, simulated: `POST /v1/messages` (non-streamed and SSE with
Anthropic's exact event sequence, tools, thinking, stop sequences, max_tokens),
`POST /v1/messages/count_tokens` and `GET /v1/models` (Anthropic's list shape when an
`anthropic-version` header is sent, which the server dispatches here, else OpenAI's). Content
is deterministic (`simulators.content`, fed an OpenAI-shaped plan of the request): tools are
called when given and tool_choice is any/tool or the model name ends with "tools" (two parallel
tool_use blocks unless disable_parallel_tool_use); `thinking` enabled adds a signed thinking
block first."""

from __future__ import annotations

import base64
import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from .. import model_lists
from ..content import ToolCall, message_text, plan_choice, prompt_tokens, split_pieces
from ..faults import Fault, mid_stream, status_reply
from ..protocol import (
    CHUNKED_END,
    JSON_CONTENT_TYPE,
    SSE_CONTENT_TYPE,
    Reply,
    Request,
    chunk,
    response,
    response_head,
)
from .openai import models_body

if TYPE_CHECKING:
    from ..server import Simulator

THINKING_PREFIX = "Let me think about this: "
_NO_FAULT = Fault()
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_reply(
    status: int,
    message: str,
    req: Request,
    headers: list[tuple[str, str]] | None = None,
    raw: dict[str, Any] | None = None,
) -> Reply:
    """An error in Anthropic's shape (`raw`: this body instead)."""
    body = orjson.dumps(raw if raw is not None else error_dict(status, message))
    keep = req.keep_alive
    return Reply(response(status, body, keep, headers=headers or ()), keep_alive=keep)


def error_dict(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _check(sim: Simulator, req: Request) -> Reply | None:
    if sim.api_key is not None:
        bearer = req.headers.get("authorization", "")  # what SDKs >= 2.x send
        key = req.headers.get("x-api-key") or bearer.removeprefix("Bearer ") or None
        if key is None:
            return error_reply(401, "x-api-key header is required", req)
        if key != sim.api_key:
            return error_reply(401, "invalid x-api-key", req)
    if "anthropic-version" not in req.headers:
        return error_reply(400, "anthropic-version: header is required", req)
    return None


def _validate(p: Any, need_max_tokens: bool) -> str | None:
    if not isinstance(p, dict):
        return "The request body is not valid JSON."
    if not isinstance(p.get("model"), str):
        return "model: Field required"
    mt = p.get("max_tokens")
    if need_max_tokens and (isinstance(mt, bool) or not isinstance(mt, int) or mt < 1):
        return "max_tokens: Field required" if mt is None else "max_tokens: must be >= 1"
    messages = p.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if not isinstance(m.get("content"), str | list):
            return f"messages.{i}.content: Field required"
    thinking = p.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled" and need_max_tokens:
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if budget >= mt:
            return "`max_tokens` must be greater than `thinking.budget_tokens`."
    return None


# ---------------------------------------------------------------- planning
def _plan_request(p: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI-shaped request the content planner understands."""
    msgs: list[dict[str, Any]] = []
    system = p.get("system")
    if system:
        msgs.append({"role": "system", "content": system})
    for m in p["messages"]:
        content = m["content"]
        if isinstance(content, str):
            msgs.append({"role": m["role"], "content": content})
            continue
        texts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for b in content:
            if not isinstance(b, dict):
                continue
            if b.get("type") == "tool_result":
                result = b.get("content")
                text = result if isinstance(result, str) else message_text(result)
                msgs.append({"role": "tool", "content": text})
            elif b.get("type") == "tool_use":
                args = orjson.dumps(b.get("input") or {}).decode()
                calls.append({"function": {"name": b.get("name"), "arguments": args}})
            elif b.get("type") in ("text", "thinking"):
                texts.append({"type": "text", "text": b.get("text") or b.get("thinking") or ""})
        if texts or calls or m["role"] == "assistant":
            msg: dict[str, Any] = {"role": m["role"], "content": texts}
            if calls:
                msg["tool_calls"] = calls
            msgs.append(msg)
    tools = [
        {"type": "function", "function": {"name": t["name"], "parameters": t.get("input_schema")}}
        for t in p.get("tools") or ()
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    ]
    plan: dict[str, Any] = {"model": p["model"], "messages": msgs, "tools": tools}
    choice = p.get("tool_choice") if isinstance(p.get("tool_choice"), dict) else {}
    kind = choice.get("type", "auto")
    if kind == "any":
        plan["tool_choice"] = "required"
    elif kind == "tool":
        plan["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    else:
        plan["tool_choice"] = "none" if kind == "none" else "auto"
    plan["parallel_tool_calls"] = choice.get("disable_parallel_tool_use") is not True
    return plan


def input_tokens(p: dict[str, Any]) -> int:
    plan = _plan_request(p)
    tools = p.get("tools")
    extra = math.ceil(len(orjson.dumps(tools)) / 4) if tools else 0
    return prompt_tokens(plan["messages"]) + extra


@dataclass(slots=True)
class _Out:
    thinking: list[str] = field(default_factory=list)
    signature: str = ""
    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None

    @property
    def output_tokens(self) -> int:
        calls = sum(1 + len(c.argument_chunks()) for c in self.calls)
        return len(self.thinking) + len(self.text) + calls

    def blocks(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.thinking:
            thought = "".join(self.thinking)
            out.append({"type": "thinking", "thinking": thought, "signature": self.signature})
        if self.text:
            out.append({"type": "text", "text": "".join(self.text)})
        for c in self.calls:
            out.append(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": orjson.loads(c.arguments)}
            )
        return out


def _earliest_stop(text: str, stops: Any) -> tuple[str, str | None]:
    best: tuple[int, str] | None = None
    for seq in stops if isinstance(stops, list) else ():
        at = text.find(seq) if isinstance(seq, str) and seq else -1
        if at >= 0 and (best is None or at < best[0]):
            best = (at, seq)
    return (text[: best[0]], best[1]) if best else (text, None)


def _plan(p: dict[str, Any], fault: Fault) -> _Out:
    plan = _plan_request(p)
    out = _Out()
    if fault.empty_stream:
        return out
    thinking = p.get("thinking")
    if fault.text is None and isinstance(thinking, dict) and thinking.get("type") == "enabled":
        last = next((m for m in reversed(plan["messages"]) if m["role"] != "assistant"), {})
        thought = THINKING_PREFIX + message_text(last.get("content"))[:80]
        out.thinking = split_pieces(thought)
        out.signature = base64.b64encode(hashlib.sha256(thought.encode()).digest()).decode()
    done = plan_choice(plan, 0, text=fault.text)
    if done.tool_calls:
        out.calls = [
            ToolCall("toolu_" + c.id.removeprefix("call_"), c.name, c.arguments)
            for c in done.tool_calls
        ]
        out.stop_reason = "tool_use"
        return out
    text = done.content or ""
    if fault.text is None:
        text, out.stop_sequence = _earliest_stop(text, p.get("stop_sequences"))
    pieces = split_pieces(text)
    limit = p["max_tokens"] - len(out.thinking)
    if fault.text is None and len(pieces) > limit:
        pieces = pieces[: max(0, limit)]
        out.stop_reason = "max_tokens"
    elif out.stop_sequence is not None:
        out.stop_reason = "stop_sequence"
    out.text = pieces
    return out


# ---------------------------------------------------------------- rendering
def _usage(input_toks: int, output_toks: int) -> dict[str, int]:
    return {
        "input_tokens": input_toks,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_toks,
    }


def _sse(payload: dict[str, Any]) -> bytes:
    """One SSE event, named by the payload's type."""
    name = payload["type"].encode()
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _events(msg: dict[str, Any], out: _Out, fault: Fault) -> list[bytes]:
    start = {**msg, "content": [], "stop_reason": None, "stop_sequence": None}
    if not fault.omit_usage:
        start["usage"] = _usage(msg["usage"]["input_tokens"], 1)
    events = [_sse({"type": "message_start", "message": start})]
    if fault.malformed:
        events.append(b"event: content_block_delta\ndata: {not json\n\n")
    events.append(_sse({"type": "ping"}))

    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if out.thinking:
        deltas = [{"type": "thinking_delta", "thinking": t} for t in out.thinking]
        deltas.append({"type": "signature_delta", "signature": out.signature})
        blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, deltas))
    if out.text:
        deltas = [{"type": "text_delta", "text": t} for t in out.text]
        blocks.append(({"type": "text", "text": ""}, deltas))
    for c in out.calls:
        pieces = ["", *c.argument_chunks()]  # Anthropic opens with an empty partial_json
        deltas = [{"type": "input_json_delta", "partial_json": a} for a in pieces]
        blocks.append(({"type": "tool_use", "id": c.id, "name": c.name, "input": {}}, deltas))
    for i, (first, deltas) in enumerate(blocks):
        events.append(
            _sse(
                {"type": "content_block_start", "index": i, "content_block": first},
            )
        )
        for d in deltas:
            events.append(_sse({"type": "content_block_delta", "index": i, "delta": d}))
        events.append(_sse({"type": "content_block_stop", "index": i}))
    delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": out.stop_reason, "stop_sequence": out.stop_sequence},
    }
    if not fault.omit_usage:
        delta["usage"] = {"output_tokens": out.output_tokens}
    events.append(_sse(delta))
    events.append(_sse({"type": "message_stop"}))
    return events


def messages(sim: Simulator, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    problem = _check(sim, req)
    if problem is not None:
        return problem
    f = sim.take_fault() or _NO_FAULT
    keep, delay = req.keep_alive, max(0.0, f.delay_s)
    stream = isinstance(parsed, dict) and parsed.get("stream") is True
    if f.drop_after_chunks == 0 and not stream:
        return Reply(b"", keep_alive=False, delay=delay, drop_now=True)
    if f.status and not f.breaks_stream(stream):
        return status_reply(req, f, error_dict)
    problem_text = _validate(parsed, need_max_tokens=True)
    if problem_text is not None:
        return error_reply(400, problem_text, req)
    out = _plan(parsed, f)
    hexid = os.urandom(12).hex()
    msg: dict[str, Any] = {
        "id": "msg_" + hexid,
        "type": "message",
        "role": "assistant",
        "model": parsed["model"],
        "content": out.blocks(),
        "stop_reason": out.stop_reason,
        "stop_sequence": out.stop_sequence,
        "usage": _usage(input_tokens(parsed), out.output_tokens),
    }
    headers = [("request-id", "req_" + hexid)]
    if not stream:
        if f.omit_usage:
            del msg["usage"]
        body = orjson.dumps(msg)
        if f.malformed:
            body = body[: len(body) // 2]
        full = response(200, body, keep, headers=headers)
        if f.drop_after_chunks is not None:  # > 0: headers and half the body, then drop
            return Reply(full[: len(full) - len(body) // 2], keep_alive=False, delay=delay,
                         drop_after=0)  # fmt: skip
        return Reply(full, keep_alive=keep, delay=delay)
    events, drop_after = mid_stream(
        _events(msg, out, f), f, req, lambda status, text: _sse(error_dict(status, text))
    )
    chunked = req.version != "1.0"
    keep = keep and chunked
    head = response_head(200, SSE_CONTENT_TYPE, keep, chunked=chunked, headers=headers)
    if chunked:
        events = [chunk(e) for e in events]
    return Reply(
        head,
        events,
        tail=CHUNKED_END if chunked else b"",
        keep_alive=keep,
        delay=delay,
        gap=max(0.0, f.chunk_delay_s),
        drop_after=drop_after,
    )


def count_tokens(sim: Simulator, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    problem = _check(sim, req)
    if problem is not None:
        return problem
    problem_text = _validate(parsed, need_max_tokens=False)
    if problem_text is not None:
        return error_reply(400, problem_text, req)
    body = orjson.dumps({"input_tokens": input_tokens(parsed)})
    return Reply(response(200, body, req.keep_alive, JSON_CONTENT_TYPE), keep_alive=req.keep_alive)


def models(sim: Simulator, req: Request, parsed: Any, match: re.Match[str] | None) -> Reply:
    """Anthropic's model list ({data, has_more, first_id, last_id}; `limit`, `after_id`): the
    scripted list (simulators/model_lists.py) or the simulator's models."""
    keep = req.keep_alive
    if "anthropic-version" not in req.headers:
        return Reply(response(200, models_body(sim.models), keep), keep_alive=keep)
    problem = _check(sim, req)
    if problem is not None:
        return problem
    scripted, fault = model_lists.lists_of(sim).take("anthropic")
    failing = model_lists.fault_reply(req, fault, _list_error)
    if failing is not None:
        return failing
    entries = scripted if scripted is not None else [{"id": m} for m in sim.models]
    query = model_lists.query(req)
    ids = [e["id"] for e in entries]
    after = query.get("after_id")
    if after in ids:
        entries = entries[ids.index(after) + 1 :]
    limit = min(1000, int(query["limit"])) if query.get("limit", "").isdigit() else 20
    page, more = entries[:limit], len(entries) > limit
    data = [
        {
            "type": "model",
            "id": e["id"],
            "display_name": e.get("name", e["id"]),
            "created_at": "2025-01-01T00:00:00Z",
            "lifecycle": "active",
        }
        for e in page
    ]
    first, last = (page[0]["id"], page[-1]["id"]) if page else (None, None)
    body = {"data": data, "has_more": more, "first_id": first, "last_id": last}
    return model_lists.delayed(
        Reply(response(200, orjson.dumps(body), keep), keep_alive=keep), fault
    )


def _list_error(status: int) -> bytes:
    return orjson.dumps(error_dict(status, "simulated"))


ROUTES = [
    ("POST", r"/v1/messages", messages),
    ("POST", r"/v1/messages/count_tokens", count_tokens),
    ("GET", r"/v1/models", models),
]
