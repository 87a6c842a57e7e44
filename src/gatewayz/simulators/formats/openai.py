"""OpenAI Chat Completions wire format: request validation, error bodies, the non-streamed
``chat.completion`` object and the ``chat.completion.chunk`` SSE event sequence. Pure functions
returning bytes; the HTTP server frames and sends them (its core routes, ``/v1/chat/completions``
and ``/v1/models``, are ``server.py``'s and ``chat.py``'s: the simulator is OpenAI-compatible
first). Pairs with the family ``gatewayz.providers.openai``.

Providers of that family at other paths are routes here: Cloudflare Workers AI's
OpenAI-compatible endpoint, ``POST /client/v4/accounts/{account_id}/ai/v1/chat/completions``
(Bearer API token), answered by the simulator's OpenAI chat responder."""

from __future__ import annotations

import re
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

import orjson

from ..content import Completion, token_logprobs
from ..protocol import Reply, Request
from .cohere import error_reply

if TYPE_CHECKING:
    from ..server import Simulator

SYSTEM_FINGERPRINT = "fp_sim"
DONE_EVENT = b"data: [DONE]\n\n"
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", "timeout"),
    409: ("invalid_request_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("requests", "rate_limit_exceeded"),
}
_MAX_N = 8
_MAX_TOP_LOGPROBS = 20


def error_dict(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_body(
    message: str,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> bytes:
    return orjson.dumps(error_dict(message, type_, param, code))


def fault_error(status: int, message: str) -> dict[str, Any]:
    """The OpenAI-shaped body of a scripted error status."""
    if status in _ERROR_KINDS:
        type_, code = _ERROR_KINDS[status]
    elif status >= 500:
        type_, code = "server_error", "server_error"
    else:
        type_, code = "invalid_request_error", None
    return error_dict(message, type_, None, code)


def error_event(status: int, message: str) -> bytes:
    """The SSE event of an error that interrupts a stream (`{"error": {...}}`, as OpenAI and
    the compatible providers send it)."""
    return b"data: " + orjson.dumps(fault_error(status, message)) + b"\n\n"


def _int_param(req: dict[str, Any], name: str, lo: int, hi: int | None) -> str | None:
    value = req.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return f"Invalid type for '{name}': expected an integer, but got {type(value).__name__}."
    if value < lo:
        return f"Invalid '{name}': integer below minimum value. Expected a value >= {lo}."
    if hi is not None and value > hi:
        return f"Invalid '{name}': integer above maximum value. Expected a value <= {hi}."
    return None


def validate(req: Any) -> tuple[str, str | None] | None:
    """Minimal OpenAI-like validation. Returns (message, param) for a 400, or None when valid."""
    if not isinstance(req, dict):
        return ("Invalid request body: expected a JSON object.", None)
    model = req.get("model")
    if model is None:
        return ("you must provide a model parameter", None)
    if not isinstance(model, str):
        return ("Invalid type for 'model': expected a string.", "model")
    messages = req.get("messages")
    if messages is None:
        return ("Missing required parameter: 'messages'.", "messages")
    if not isinstance(messages, list):
        return ("Invalid type for 'messages': expected an array.", "messages")
    if not messages:
        return (
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            "messages",
        )
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            return (f"Invalid type for 'messages[{i}]': expected an object.", f"messages[{i}]")
        if not isinstance(msg.get("role"), str):
            return (f"Missing required parameter: 'messages[{i}].role'.", f"messages[{i}].role")
    for name, lo, hi in (
        ("n", 1, _MAX_N),
        ("max_tokens", 1, None),
        ("max_completion_tokens", 1, None),
        ("top_logprobs", 0, _MAX_TOP_LOGPROBS),
    ):
        problem = _int_param(req, name, lo, hi)
        if problem:
            return (problem, name)
    for name, kind in (("stream", bool), ("logprobs", bool), ("tools", list)):
        value = req.get(name)
        if value is not None and not isinstance(value, kind):
            return (f"Invalid type for '{name}': expected {kind.__name__}.", name)
    return None


def usage(
    prompt_tokens: int, completion_tokens: int, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The usage object; `extra` keys replace the counted ones (a fault's `usage`)."""
    out = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    if extra:
        out.update(extra)
    return out


def _choice_logprobs(c: Completion, top_n: int) -> dict[str, Any]:
    content = token_logprobs(c.pieces, top_n) if c.content is not None else None
    return {"content": content, "refusal": None}


def completion_body(
    model: str,
    cid: str,
    created: int,
    choices: list[Completion],
    prompt_tokens: int,
    *,
    logprobs: bool,
    top_n: int,
    with_usage: bool,
    usage_extra: dict[str, Any] | None = None,
) -> bytes:
    """The non-streamed ``chat.completion`` object."""
    out_choices = []
    for index, c in enumerate(choices):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": c.content,
            "refusal": None,
            "annotations": [],
        }
        if c.tool_calls:
            message["tool_calls"] = [
                {
                    "id": t.id,
                    "type": "function",
                    "function": {"name": t.name, "arguments": t.arguments},
                }
                for t in c.tool_calls
            ]
        out_choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": _choice_logprobs(c, top_n) if logprobs else None,
                "finish_reason": c.finish_reason,
            }
        )
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "service_tier": "default",
        "choices": out_choices,
    }
    if with_usage:
        body["usage"] = usage(prompt_tokens, sum(c.completion_tokens for c in choices), usage_extra)
    return orjson.dumps(body)


def _choice_deltas(index: int, c: Completion, logprobs: bool, top_n: int) -> list[dict[str, Any]]:
    """The stream choices after the role chunk and before the finish chunk, for one choice."""
    out: list[dict[str, Any]] = []
    if c.tool_calls:
        for i, call in enumerate(c.tool_calls):
            first = {
                "index": i,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            out.append(
                {
                    "index": index,
                    "delta": {"tool_calls": [first]},
                    "logprobs": None,
                    "finish_reason": None,
                }
            )
            for part in call.argument_chunks():
                delta = {"tool_calls": [{"index": i, "function": {"arguments": part}}]}
                out.append(
                    {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}
                )
        return out
    entries = token_logprobs(c.pieces, top_n) if logprobs else None
    for k, piece in enumerate(c.pieces):
        lp = {"content": [entries[k]], "refusal": None} if entries is not None else None
        out.append(
            {"index": index, "delta": {"content": piece}, "logprobs": lp, "finish_reason": None}
        )
    return out


def stream_events(
    model: str,
    cid: str,
    created: int,
    choices: list[Completion],
    prompt_tokens: int,
    *,
    logprobs: bool,
    top_n: int,
    include_usage: bool,
    empty: bool = False,
    malformed: bool = False,
    usage_extra: dict[str, Any] | None = None,
) -> list[bytes]:
    """Every SSE event of a streamed completion (each ``data: ...\\n\\n``), ending in [DONE].
    ``empty`` sends no choice chunks at all; ``malformed`` injects a data line that is not JSON
    right after the role chunks. Pass ``include_usage=False`` to omit the usage chunk."""
    head = orjson.dumps(
        {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "service_tier": "default",
        }
    )
    prefix = b"data: " + head[:-1] + b',"choices":'
    suffix = b',"usage":null}\n\n' if include_usage else b"}\n\n"
    dumps = orjson.dumps
    events: list[bytes] = []
    if not empty:
        for index, c in enumerate(choices):
            role = {"role": "assistant", "content": None if c.tool_calls else ""}
            events.append(
                prefix
                + dumps([{"index": index, "delta": role, "logprobs": None, "finish_reason": None}])
                + suffix
            )
        if malformed:
            events.append(b'data: {"id": "' + cid.encode() + b'", "choices": [{"delta": {\n\n')
        per_choice = [_choice_deltas(i, c, logprobs, top_n) for i, c in enumerate(choices)]
        for step in zip_longest(*per_choice):
            for choice in step:
                if choice is not None:
                    events.append(prefix + b"[" + dumps(choice) + b"]" + suffix)
        for index, c in enumerate(choices):
            events.append(
                prefix
                + dumps(
                    [
                        {
                            "index": index,
                            "delta": {},
                            "logprobs": None,
                            "finish_reason": c.finish_reason,
                        }
                    ]
                )
                + suffix
            )
    if include_usage:
        total = 0 if empty else sum(c.completion_tokens for c in choices)
        counted = usage(prompt_tokens, total, usage_extra)
        events.append(prefix + b'[],"usage":' + dumps(counted) + b"}\n\n")
    events.append(DONE_EVENT)
    return events


def models_body(models: list[str]) -> bytes:
    return orjson.dumps({"object": "list", "data": [model_object(m) for m in models]})


def model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "gatewayz-simulator"}


# ---------------------------------------------------------------- Cloudflare Workers AI
def _cloudflare_auth_error() -> dict[str, Any]:
    return {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]}


def cloudflare_chat(sim: Simulator, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    if sim.api_key is not None and req.headers.get("authorization") != f"Bearer {sim.api_key}":
        return error_reply(req, 401, _cloudflare_auth_error())
    json_ok = parsed is not None
    return sim._chat.reply(req, parsed, json_ok, sim.take_fault())


ROUTES = [("POST", r"/client/v4/accounts/([^/]+)/ai/v1/chat/completions", cloudflare_chat)]
