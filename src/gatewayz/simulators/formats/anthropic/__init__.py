"""The Anthropic Messages API, simulated: `POST /v1/messages` (non-streamed and SSE with
Anthropic's exact event sequence, tools, thinking, stop sequences, max_tokens),
`POST /v1/messages/count_tokens` and `GET /v1/models` (Anthropic's list shape when an
`anthropic-version` header is sent, which the server dispatches here, else OpenAI's). Content
is deterministic (`simulators.content`, fed an OpenAI-shaped plan of the request): tools are
called when given and tool_choice is any/tool or the model name ends with "tools" (two parallel
tool_use blocks unless disable_parallel_tool_use); `thinking` enabled adds a signed thinking
block first (`planning.py`). Pairs with the family `gatewayz.providers.anthropic`."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

import orjson

from ... import model_lists
from ...faults import Fault, mid_stream, status_reply
from ...protocol import (
    CHUNKED_END,
    JSON_CONTENT_TYPE,
    SSE_CONTENT_TYPE,
    Reply,
    Request,
    chunk,
    response,
    response_head,
)
from ..openai import models_body
from .planning import event_sequence, input_tokens, plan_output, sse_event, usage_dict

if TYPE_CHECKING:
    from ...server import Simulator

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
    out = plan_output(parsed, f)
    hexid = os.urandom(12).hex()
    msg: dict[str, Any] = {
        "id": "msg_" + hexid,
        "type": "message",
        "role": "assistant",
        "model": parsed["model"],
        "content": out.blocks(),
        "stop_reason": out.stop_reason,
        "stop_sequence": out.stop_sequence,
        "usage": usage_dict(input_tokens(parsed), out.output_tokens),
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
        event_sequence(msg, out, f),
        f,
        req,
        lambda status, text: sse_event(error_dict(status, text)),
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
