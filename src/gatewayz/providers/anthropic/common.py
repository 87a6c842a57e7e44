"""Anthropic Messages vocabulary shared by the response and stream codecs: stop reasons, usage
and errors, both directions.

Usage: Anthropic's `input_tokens` EXCLUDES prompt-cache reads and writes (the total prompt is
`input_tokens + cache_read_input_tokens + cache_creation_input_tokens`), while the canonical
`prompt_tokens` is the whole prompt. So canonical `prompt_tokens` = that sum, `cached_tokens` =
`cache_read_input_tokens`, `cache_write_tokens` = `cache_creation_input_tokens`, and on the way
out `input_tokens` = `prompt_tokens - cached - cache_write`: the round trip is exact, and a
cache field the canonical usage does not know is omitted.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatewayz.canonical.bounds import BadUsage, optional_count, token_count
from gatewayz.canonical.types import Usage
from gatewayz.errors import (
    GatewayError,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gatewayz.providers.upstream_errors import error_message

upstream_error_message = error_message  # one implementation for every format

STOP_IN = {
    "end_turn": "stop",
    "max_tokens": "length",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}
STOP_OUT = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def finish_in(stop_reason: Any) -> str | None:
    return STOP_IN.get(stop_reason, "stop") if stop_reason is not None else None


def stop_reason_out(finish_reason: str | None, stop_sequence: str | None) -> str:
    if stop_sequence is not None and finish_reason in (None, "stop"):
        return "stop_sequence"
    return STOP_OUT.get(finish_reason or "stop", "end_turn")


def usage_in(u: Any) -> Usage | None:
    if not isinstance(u, dict) or u.get("input_tokens") is None:
        return None
    try:
        read = optional_count(u.get("cache_read_input_tokens"))
        write = optional_count(u.get("cache_creation_input_tokens"))
        return Usage(
            prompt_tokens=token_count(u["input_tokens"]) + (read or 0) + (write or 0),
            completion_tokens=token_count(u.get("output_tokens") or 0),
            cached_tokens=read,
            cache_write_tokens=write,
        )
    except BadUsage:
        return Usage.unreadable()


def usage_out(u: Usage) -> dict[str, Any]:
    read, write = u.cached_tokens, u.cache_write_tokens
    out: dict[str, Any] = {
        "input_tokens": max(0, u.prompt_tokens - (read or 0) - (write or 0)),
        "output_tokens": u.completion_tokens,
    }
    if write is not None:
        out["cache_creation_input_tokens"] = write
    if read is not None:
        out["cache_read_input_tokens"] = read
    if u.cost is not None:
        out["cost"] = float(u.cost)  # USD charged by Gatewayz (not an Anthropic field)
    return out


# ---------------------------------------------------------------- errors
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_object(err: GatewayError) -> dict[str, Any]:
    error = {"type": error_type(err.status), "message": err.message, **err.fields()}
    return {"type": "error", "error": error}


def render_error(err: GatewayError) -> bytes:
    """`{"type":"error","error":{"type": <Anthropic error type for the status>, "message"}}`."""
    return orjson.dumps(error_object(err))


def stream_error(raw: Any, provider: str) -> GatewayError:
    """An `event: error` in an upstream stream → the error we raise."""
    err = raw.get("error") if isinstance(raw, dict) else None
    err = err if isinstance(err, dict) else {}
    kind = err.get("type")
    text = f"provider {provider} failed mid-stream: {err.get('message') or kind or 'error'}"
    if kind == "overloaded_error":
        return UpstreamUnavailable(text, status=503, provider=provider)
    if kind == "rate_limit_error":
        return RateLimited(text, provider=provider)
    if kind == "timeout_error":
        return UpstreamTimeout(text, provider=provider)
    if kind == "api_error":
        return UpstreamUnavailable(text, provider=provider)
    return UpstreamError(text, provider=provider)


def malformed(provider: str, what: str = "response") -> UpstreamUnavailable:
    return UpstreamUnavailable(f"provider {provider} sent a malformed {what}", provider=provider)
