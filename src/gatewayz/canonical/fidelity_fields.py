"""Which fields of the fidelity table (`fidelity.py`) a canonical request uses, each under the
name the caller gave it in its dialect (the name a refusal's 400 names)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from gatewayz.canonical.types import ChatRequest, DocumentPart, ImagePart, OtherPart

# Fields of the request that are the gateway's own (routing preferences, the response cache;
# OpenRouter's `usage` accounting: every answer reports its usage): never a provider's.
GATEWAY_FIELDS = frozenset({"provider", "cache", "usage"})
# Fields of another dialect's request a family knows by the same name and meaning: carried.
NATIVE_EXTRAS: dict[str, frozenset[str]] = {
    "anthropic": frozenset(
        {"thinking", "output_config", "container", "mcp_servers", "context_management"}
    ),
    "gemini": frozenset({"safetySettings", "cachedContent", "labels"}),
    "vertex": frozenset({"safetySettings", "cachedContent", "labels"}),
}
# Sub-fields of Anthropic's `output_config` the canonical request holds (`response_format`,
# `reasoning_effort`); `output_format` is the beta's name for `output_config.format`.
OUTPUT_CONFIG_KEYS = frozenset({"format", "effort"})
# Keys of `extra` with a row of their own.
_OWN_ROWS = frozenset({"server_tools", "cache_control", "output_format"})


def _named(req: ChatRequest, openai: str, anthropic: str) -> str:
    return anthropic if req.extra_dialect == "anthropic" else openai


def _if(cond: Any, name: str) -> str | None:
    return name if cond else None


def _tools(req: ChatRequest) -> str | None:
    if not any(t.kind == "function" for t in req.tools or ()):
        return None
    return "functions" if req.legacy_functions else "tools"


def _custom(req: ChatRequest) -> str | None:
    if any(t.kind == "custom" for t in req.tools or ()):
        return "tools"
    tc = req.tool_choice
    return _if(isinstance(tc, dict) and tc.get("kind") == "custom", "tool_choice")


def _forced(req: ChatRequest) -> str | None:
    tc = req.tool_choice
    forced = tc == "required" or (isinstance(tc, dict) and "name" in tc)
    return _if(forced, "function_call" if req.legacy_functions else "tool_choice")


def _format(req: ChatRequest, kind: str) -> str | None:
    rf = req.response_format
    if not rf or rf.get("type") != kind:
        return None
    if req.extra_dialect == "anthropic":
        return "output_format" if "output_format" in req.extra else "output_config.format"
    return "response_format"


def _thinking(req: ChatRequest) -> str | None:
    kind = (req.thinking or {}).get("type")
    return _if(kind in ("enabled", "adaptive"), "thinking")


def _parts(req: ChatRequest) -> Iterator[Any]:
    for m in req.messages:
        if isinstance(m.content, list):
            yield from m.content


def _cache_control(req: ChatRequest) -> str | None:
    if "cache_control" in req.extra:
        return "cache_control"
    for item in _extras(req):
        if "cache_control" in item:
            return "cache_control"
    return None


def _extras(req: ChatRequest) -> Iterator[dict[str, Any]]:
    """The `extra` of every part, tool, tool call and tool-result message."""
    for m in req.messages:
        if m.extra:
            yield m.extra
        for tc in m.tool_calls or ():
            if tc.extra:
                yield tc.extra
    for p in _parts(req):
        extra = getattr(p, "extra", None)
        if extra:
            yield extra
    for t in req.tools or ():
        if t.extra:
            yield t.extra


def part_fields(req: ChatRequest) -> list[str]:
    """Fields of content blocks, tools and tool calls besides `cache_control` (Anthropic's
    `citations`, `context`, ...), each once."""
    seen: dict[str, None] = {}
    for extra in _extras(req):
        for k in extra:
            if k != "cache_control":
                seen.setdefault(k, None)
    return list(seen)


def untranslated(req: ChatRequest) -> list[str]:
    """The request's extra (dialect-only) fields no canonical field holds."""
    out: list[str] = []
    for name, value in req.extra.items():
        if name in _OWN_ROWS:
            continue
        if name == "output_config" and isinstance(value, dict):
            out.extend(f"output_config.{k}" for k in value if k not in OUTPUT_CONFIG_KEYS)
        else:
            out.append(name)
    return out


def _has(req: ChatRequest, kind: type) -> bool:
    return any(isinstance(p, kind) for p in _parts(req))


def _other_part(req: ChatRequest, kind: str) -> str | None:
    """The first content part of `kind` the gateway does not read (OtherPart), by its place."""
    for i, m in enumerate(req.messages):
        for j, p in enumerate(m.content if isinstance(m.content, list) else ()):
            if isinstance(p, OtherPart) and p.type == kind:
                return f"messages[{i}].content[{j}]"
    return None


def _system_only(req: ChatRequest) -> str | None:
    only = bool(req.messages) and all(m.role in ("system", "developer") for m in req.messages)
    return _if(only, "messages")


def _is_object(arguments: str) -> bool:
    if not arguments.strip():
        return True  # no arguments: an empty object
    try:
        return isinstance(orjson.loads(arguments), dict)
    except orjson.JSONDecodeError:
        return False


def _tool_arguments(req: ChatRequest) -> str | None:
    """The first function call whose arguments are not a JSON object (the model's own output,
    which OpenAI warns is not always valid JSON, sent back in the conversation)."""
    for i, m in enumerate(req.messages):
        for j, tc in enumerate(m.tool_calls or ()):
            if tc.kind == "function" and not _is_object(tc.arguments):
                return f"messages[{i}].tool_calls[{j}].function.arguments"
    return None


USES: dict[str, Callable[[ChatRequest], str | None]] = {
    "max_tokens": lambda r: _if(r.max_tokens is not None, "max_tokens"),
    "temperature": lambda r: (
        "temperature" if r.temperature is not None else _if(r.top_p is not None, "top_p")
    ),
    "top_k": lambda r: _if(r.top_k is not None, "top_k"),
    "stop": lambda r: _if(r.stop, _named(r, "stop", "stop_sequences")),
    "seed": lambda r: _if(r.seed is not None, "seed"),
    "penalties": lambda r: (
        "presence_penalty"
        if r.presence_penalty is not None
        else _if(r.frequency_penalty is not None, "frequency_penalty")
    ),
    "logit_bias": lambda r: _if(r.logit_bias, "logit_bias"),
    "n": lambda r: _if(r.n > 1, "n"),
    "tools": _tools,
    "custom_tools": _custom,
    "server_tools": lambda r: _if(r.extra.get("server_tools"), "tools"),
    "tool_choice": _forced,
    "allowed_tools": lambda r: _if(
        isinstance(r.tool_choice, dict) and "allowed" in r.tool_choice, "tool_choice"
    ),
    "parallel_tool_calls": lambda r: _if(
        r.parallel_tool_calls is False and r.tools,
        _named(r, "parallel_tool_calls", "tool_choice.disable_parallel_tool_use"),
    ),
    "json_object": lambda r: _format(r, "json_object"),
    "json_schema": lambda r: _format(r, "json_schema"),
    "logprobs": lambda r: "logprobs" if r.logprobs else _if(r.top_logprobs, "top_logprobs"),
    "user": lambda r: _if(r.user is not None, _named(r, "user", "metadata.user_id")),
    "metadata": lambda r: _if(r.metadata, "metadata"),
    "reasoning_effort": lambda r: _if(
        r.reasoning_effort is not None, _named(r, "reasoning_effort", "output_config.effort")
    ),
    "thinking": _thinking,
    "cache_control": _cache_control,
    "betas": lambda r: _if(r.betas, "anthropic-beta"),
    "images": lambda r: _if(_has(r, ImagePart), "messages"),
    "documents": lambda r: _if(_has(r, DocumentPart), "messages"),
    "audio": lambda r: _other_part(r, "input_audio"),
    "files": lambda r: _other_part(r, "file"),
    "system_only": _system_only,
    "tool_arguments": _tool_arguments,
}
