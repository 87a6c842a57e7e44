"""Anthropic Messages requests, both directions: `parse_request` validates a client's body into
the canonical request (the Anthropic dialect, our `/v1/messages`); `render_request` turns a
canonical request into the body api.anthropic.com expects (the Anthropic family);
`count_tokens_request` reads a `/v1/messages/count_tokens` body. Content blocks are converted
in `content.py`."""

from __future__ import annotations

from typing import Any

import orjson

from gatewayz.canonical.bounds import check_model_id, check_output_tokens, json_object
from gatewayz.canonical.fidelity_fields import NATIVE_EXTRAS
from gatewayz.canonical.types import ChatRequest, Tool
from gatewayz.errors import InvalidRequest
from gatewayz.providers.anthropic.content import (
    block_extra,
    messages_in,
    messages_out,
    system_in,
    with_extra,
)
from gatewayz.providers.anthropic.structured import for_anthropic, structured_in

DEFAULT_MAX_TOKENS = 4096
# OpenAI-style reasoning_effort → an extended-thinking budget (Anthropic's minimum is 1024).
EFFORT_BUDGET = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
_MIN_BUDGET = 1024

# Fields of a Messages request the canonical request names; everything else is kept in
# `extra` and sent on, as it came, to Anthropic-family providers (canonical/fidelity.py
# says what becomes of them elsewhere).
_KNOWN = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "stream",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "metadata",
        "tools",
        "tool_choice",
        "thinking",
    }
)
# Extra fields a request of another dialect may carry that Anthropic knows by the same name.
_PASSTHROUGH = NATIVE_EXTRAS["anthropic"] - {"thinking"}
_TOOL_KEYS = frozenset({"type", "name", "description", "input_schema", "strict"})


# ---------------------------------------------------------------- edge: request in
def _number(raw: dict[str, Any], name: str, lo: float, hi: float | None) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{name}: Input should be a valid number", param=name)
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise InvalidRequest(f"{name}: Input should be {bound}", param=name)
    return value


def _int(raw: dict[str, Any], name: str, lo: int) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:  # 100.0
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name}: Input should be a valid integer", param=name)
    if value < lo:
        raise InvalidRequest(f"{name}: Input should be greater than or equal to {lo}", param=name)
    return value


def _tools_in(raw: Any) -> tuple[list[Tool] | None, list[dict[str, Any]]]:
    """(custom tools, server tools kept verbatim: web_search, bash, ...)."""
    if raw is None:
        return None, []
    if not isinstance(raw, list):
        raise InvalidRequest("tools: Input should be a valid list", param="tools")
    tools: list[Tool] = []
    server: list[dict[str, Any]] = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise InvalidRequest(f"tools.{i}.name: Field required", param=f"tools.{i}.name")
        if t.get("type") not in (None, "custom"):
            server.append(t)
            continue
        schema = t.get("input_schema")
        if not isinstance(schema, dict):
            raise InvalidRequest(
                f"tools.{i}.input_schema: Field required", param=f"tools.{i}.input_schema"
            )
        desc = t.get("description")
        strict = t.get("strict")
        tools.append(
            Tool(
                t["name"],
                desc if isinstance(desc, str) else None,
                schema,
                strict if isinstance(strict, bool) else None,
                extra=block_extra(t, _TOOL_KEYS),
            )
        )
    return tools or None, server


def _tool_choice_in(raw: Any) -> tuple[str | dict[str, str] | None, bool | None]:
    """(canonical tool_choice, parallel_tool_calls)."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise InvalidRequest("tool_choice: Input should be an object", param="tool_choice")
    kind = raw.get("type")
    parallel = False if raw.get("disable_parallel_tool_use") is True else None
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", None
    if kind == "tool":
        name = raw.get("name")
        if not isinstance(name, str):
            raise InvalidRequest("tool_choice.name: Field required", param="tool_choice.name")
        return {"name": name}, parallel
    raise InvalidRequest(
        "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
        param="tool_choice.type",
    )


def _thinking_in(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise InvalidRequest("thinking.type: Field required", param="thinking.type")
    if raw["type"] == "enabled":
        budget = raw.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < _MIN_BUDGET:
            raise InvalidRequest(
                f"thinking.budget_tokens: Input should be an integer >= {_MIN_BUDGET}",
                param="thinking.budget_tokens",
            )
    return raw


def _common(raw: dict[str, Any]) -> ChatRequest:
    model = raw.get("model")
    if model is None:
        raise InvalidRequest("model: Field required", param="model")
    check_model_id(model)
    if "messages" not in raw:
        raise InvalidRequest("messages: Field required", param="messages")
    messages = system_in(raw.get("system")) + messages_in(raw["messages"])
    tools, server_tools = _tools_in(raw.get("tools"))
    tool_choice, parallel = _tool_choice_in(raw.get("tool_choice"))
    extra = {k: v for k, v in raw.items() if k not in _KNOWN}
    if server_tools:
        extra["server_tools"] = server_tools
    response_format, effort = structured_in(extra)
    return ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        response_format=response_format,
        reasoning_effort=effort,
        thinking=_thinking_in(raw.get("thinking")),
        extra=extra,
        extra_dialect="anthropic",
    )


def parse_request(body: bytes) -> ChatRequest:
    """Validate a client's Messages body into a canonical request; InvalidRequest on bad
    input (max_tokens is required, as Anthropic requires it)."""
    raw = json_object(body)
    req = _common(raw)
    if raw.get("max_tokens") is None:
        raise InvalidRequest("max_tokens: Field required", param="max_tokens")
    req.max_tokens = check_output_tokens(_int(raw, "max_tokens", 1), "max_tokens")
    stream = raw.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream: Input should be a valid boolean", param="stream")
    req.stream = bool(stream)
    req.include_usage = req.stream  # Anthropic streams always carry usage
    req.temperature = _number(raw, "temperature", 0, 1)
    req.top_p = _number(raw, "top_p", 0, 1)
    req.top_k = _int(raw, "top_k", 0)
    stops = raw.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidRequest(
                "stop_sequences: Input should be a list of strings", param="stop_sequences"
            )
        req.stop = stops or None
    meta = raw.get("metadata")
    if meta is not None:
        if not isinstance(meta, dict):
            raise InvalidRequest("metadata: Input should be an object", param="metadata")
        user = meta.get("user_id")
        if user is not None and not isinstance(user, str):
            raise InvalidRequest(
                "metadata.user_id: Input should be a valid string", param="metadata.user_id"
            )
        req.user = user
    return req


def count_tokens_request(body: bytes) -> ChatRequest:
    """A `/v1/messages/count_tokens` body (model, messages, system, tools, tool_choice,
    thinking; no max_tokens) → canonical request."""
    raw = json_object(body)
    return _common(raw)


# ---------------------------------------------------------------- family: request out
def _tool_out(t: Tool, own: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name}
    if t.description is not None:
        out["description"] = t.description
    schema = t.parameters or {"type": "object", "properties": {}}
    # A strict tool from another dialect: the schema in the subset Anthropic's strict mode takes.
    out["input_schema"] = for_anthropic(schema) if t.strict and not own else schema
    if t.strict is not None:
        out["strict"] = t.strict
    return with_extra(out, t.extra, own)


def _tool_choice_out(req: ChatRequest) -> dict[str, Any] | None:
    tc = req.tool_choice
    no_parallel = req.parallel_tool_calls is False
    if tc is None:
        return {"type": "auto", "disable_parallel_tool_use": True} if no_parallel else None
    if tc == "none":
        return {"type": "none"}
    if isinstance(tc, dict):
        out: dict[str, Any] = {"type": "tool", "name": tc.get("name", "")}
    else:
        out = {"type": "any" if tc == "required" else "auto"}
    if no_parallel:
        out["disable_parallel_tool_use"] = True
    return out


def _thinking_out(req: ChatRequest, max_tokens: int) -> tuple[dict[str, Any] | None, int]:
    """(thinking config, max_tokens): Anthropic's own `thinking`, else one derived from an
    OpenAI-style `reasoning_effort`; the budget must stay below max_tokens."""
    thinking = req.thinking if req.thinking is not None else req.extra.get("thinking")
    if isinstance(thinking, dict):
        return thinking, max_tokens
    if req.extra_dialect == "anthropic":  # its effort is `output_config.effort`, sent as it is
        return None, max_tokens
    budget = EFFORT_BUDGET.get(req.reasoning_effort or "")
    if budget is None:
        return None, max_tokens
    if req.max_tokens is None:
        return {"type": "enabled", "budget_tokens": budget}, budget + DEFAULT_MAX_TOKENS
    budget = min(budget, max_tokens - 1)
    if budget < _MIN_BUDGET:
        return None, max_tokens
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


def render_request(req: ChatRequest, model: str) -> bytes:
    """The Messages body for an Anthropic-family provider. max_tokens is required there: the
    request's, else DEFAULT_MAX_TOKENS. A request of the Anthropic dialect keeps every field it
    came with (blocks' `cache_control`, `citations`, ..., top-level fields the canonical request
    does not name); one of another dialect sends only what Anthropic knows by those names."""
    own = req.extra_dialect == "anthropic"
    system, messages = messages_out(req.messages, own)
    thinking, max_tokens = _thinking_out(req, req.max_tokens or DEFAULT_MAX_TOKENS)
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
    if system:
        body["system"] = system
    if req.stream:
        body["stream"] = True
    if req.stop:
        body["stop_sequences"] = req.stop
    for name in ("temperature", "top_p", "top_k"):
        value = getattr(req, name)
        if value is not None:
            body[name] = value
    if req.user is not None:
        body["metadata"] = {"user_id": req.user}
    if thinking is not None:
        body["thinking"] = thinking
    tools = [_tool_out(t, own) for t in req.tools or ()]
    server = req.extra.get("server_tools") if own else None
    if isinstance(server, list):
        tools.extend(server)
    if tools:
        body["tools"] = tools
        choice = _tool_choice_out(req)
        if choice is not None:
            body["tool_choice"] = choice
    for name, value in req.extra.items():
        if (own and name != "server_tools") or name in _PASSTHROUGH:
            body.setdefault(name, value)
    if "cache_control" in req.extra:  # top-level (automatic) caching: the same in both
        body.setdefault("cache_control", req.extra["cache_control"])
    rf = req.response_format
    if not own and rf and rf.get("type") == "json_schema":
        schema = (rf.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            config = dict(body.get("output_config") or {})
            config["format"] = {"type": "json_schema", "schema": for_anthropic(schema)}
            body["output_config"] = config
    return orjson.dumps(body)
