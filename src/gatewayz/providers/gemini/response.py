"""Google Gemini `GenerateContentResponse` → canonical response / stream chunks, and Gemini's
error bodies. Requests are in `request.py`.

A candidate's `content.parts` carry text, thoughts (`thought: true` → reasoning), function
calls (→ tool calls; Gemini sends each whole, so a stream delivers each as one delta with id,
name and full arguments) and a `thoughtSignature` to hand back on the next turn. Gemini gives
function calls no ids unless it has them: we generate `call_...` ones.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from gatewayz.canonical.bounds import BadUsage, optional_count, token_count
from gatewayz.canonical.types import (
    ChatResponse,
    Choice,
    ChoiceDelta,
    Message,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gatewayz.errors import GatewayError, UpstreamUnavailable
from gatewayz.providers.upstream_errors import error_message

upstream_error_message = error_message  # one implementation for every format

_FILTERED = frozenset(
    {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
    }
)  # fmt: skip


def new_call_id() -> str:
    return "call_" + os.urandom(12).hex()


def finish_reason(reason: str | None, has_calls: bool) -> str | None:
    """Gemini's finishReason → ours; a turn that called functions ends with tool_calls."""
    if reason is None or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    if reason in _FILTERED:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if has_calls else "stop"


def parse_usage(u: Any) -> Usage | None:
    """usageMetadata → Usage. Thought tokens are output tokens (billed as such): completion
    tokens include them, as OpenAI's reasoning tokens are included in completion_tokens."""
    if not isinstance(u, dict) or u.get("promptTokenCount") is None:
        return None
    try:
        thoughts = optional_count(u.get("thoughtsTokenCount"))
        tool_prompt = token_count(u.get("toolUsePromptTokenCount") or 0)
        return Usage(
            prompt_tokens=token_count(u["promptTokenCount"]) + tool_prompt,
            completion_tokens=token_count(u.get("candidatesTokenCount") or 0) + (thoughts or 0),
            cached_tokens=optional_count(u.get("cachedContentTokenCount")),
            reasoning_tokens=thoughts,
        )
    except BadUsage:
        return Usage.unreadable()


class _Parts:
    """The parts of one candidate (or of one stream chunk of it), sorted by kind."""

    __slots__ = ("calls", "reasoning", "signature", "text")

    def __init__(self, parts: list[dict[str, Any]]) -> None:
        text: list[str] = []
        reasoning: list[str] = []
        self.calls: list[ToolCall] = []
        self.signature: str | None = None
        for p in parts:
            if self.signature is None and p.get("thoughtSignature"):
                self.signature = p["thoughtSignature"]
            fc = p.get("functionCall")
            if fc is not None:
                args = orjson.dumps(fc.get("args") or {}).decode()
                self.calls.append(ToolCall(fc.get("id") or new_call_id(), fc["name"], args))
            elif "text" in p:
                (reasoning if p.get("thought") else text).append(p["text"])
        self.text = "".join(text)
        self.reasoning = "".join(reasoning) or None


def _parts_of(candidate: dict[str, Any]) -> _Parts:
    return _Parts((candidate.get("content") or {}).get("parts") or [])


def parse_response(body: bytes, provider: str) -> ChatResponse:
    try:
        raw = orjson.loads(body)
        choices = []
        for i, cand in enumerate(raw.get("candidates") or ()):
            parts = _parts_of(cand)
            message = Message(
                role="assistant",
                content=parts.text if parts.text or not parts.calls else None,
                tool_calls=parts.calls or None,
                reasoning=parts.reasoning,
                reasoning_signature=parts.signature,
            )
            reason = finish_reason(cand.get("finishReason"), bool(parts.calls)) or "stop"
            choices.append(
                Choice(index=cand.get("index", i), message=message, finish_reason=reason)
            )
        if not choices:  # the prompt itself was blocked: Gemini says so in promptFeedback
            blocked = raw["promptFeedback"].get("blockReason")
            reason = "content_filter" if blocked else "stop"
            choices.append(Choice(0, Message("assistant", ""), reason))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise bad_upstream(provider, exc) from None
    return ChatResponse(
        choices=choices,
        usage=parse_usage(raw.get("usageMetadata")),
        upstream_id=raw.get("responseId"),
        upstream_model=raw.get("modelVersion"),
    )


def parse_chunk(raw: dict[str, Any], calls_seen: dict[int, int]) -> StreamChunk:
    """One streamed GenerateContentResponse → a canonical chunk. `calls_seen` (candidate index →
    tool calls so far) is the stream's state: it numbers the calls and marks the first delta of
    each candidate (which carries the role)."""
    deltas = []
    for i, cand in enumerate(raw.get("candidates") or ()):
        index = cand.get("index", i)
        first = index not in calls_seen
        seen = calls_seen.setdefault(index, 0)
        parts = _parts_of(cand)
        calls = [
            ToolCallDelta(seen + n, tc.id, tc.name, tc.arguments)
            for n, tc in enumerate(parts.calls)
        ]
        calls_seen[index] = seen + len(calls)
        deltas.append(
            ChoiceDelta(
                index=index,
                role="assistant" if first else None,
                content=parts.text or None,
                reasoning=parts.reasoning,
                reasoning_signature=parts.signature,
                tool_calls=calls or None,
                finish_reason=finish_reason(cand.get("finishReason"), calls_seen[index] > 0),
            )
        )
    if not deltas and (raw.get("promptFeedback") or {}).get("blockReason"):
        deltas.append(ChoiceDelta(0, role="assistant", content="", finish_reason="content_filter"))
    return StreamChunk(deltas, parse_usage(raw.get("usageMetadata")))


def bad_upstream(provider: str, exc: Exception) -> GatewayError:
    return UpstreamUnavailable(
        f"provider {provider} sent a malformed response ({type(exc).__name__})", provider=provider
    )


def error_of(raw: Any) -> dict[str, Any] | None:
    """The `error` object of a Gemini error body (`{"error": {...}}`, or Vertex's `[{...}]`)."""
    if isinstance(raw, list) and raw:
        raw = raw[0]
    if isinstance(raw, dict) and isinstance(raw.get("error"), dict):
        return raw["error"]
    return None
