"""Anthropic Messages responses, stream events and errors, both directions.

The Anthropic dialect (our `/v1/messages`) uses `render_response`, `StreamRenderer` and
`render_error`; the Anthropic family uses `parse_response`, `AnthropicStreamDecoder` and
`upstream_error_message`. Stop reasons, usage and error types are mapped in
`common.py` (see there for the usage semantics); streams live in
`stream.py` and are re-exported here.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatewayz.canonical.types import ChatResponse, Choice, Message, TextPart, ToolCall
from gatewayz.errors import UpstreamError
from gatewayz.providers.anthropic.common import (
    finish_in,
    malformed,
    render_error,
    stop_reason_out,
    upstream_error_message,
    usage_in,
    usage_out,
)
from gatewayz.providers.anthropic.content import REDACTED
from gatewayz.providers.anthropic.stream import AnthropicStreamDecoder, StreamRenderer

__all__ = [
    "AnthropicStreamDecoder",
    "StreamRenderer",
    "parse_response",
    "render_error",
    "render_response",
    "upstream_error_message",
]


# ---------------------------------------------------------------- family: response in
def parse_response(body: bytes, provider: str) -> ChatResponse:
    """A Message object → canonical response (UpstreamUnavailable when malformed)."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise malformed(provider) from None
    if not isinstance(raw, dict):
        raise malformed(provider)
    if raw.get("type") == "error":
        raise UpstreamError(
            f"provider {provider} answered with an error: {upstream_error_message(body)}",
            provider=provider,
        )
    try:
        message = _message_from(raw["content"])
        stop_reason = raw.get("stop_reason")
        usage = usage_in(raw.get("usage"))
    except (KeyError, TypeError, AttributeError, ValueError):
        raise malformed(provider) from None
    stop_sequence = raw.get("stop_sequence")
    return ChatResponse(
        choices=[
            Choice(
                index=0,
                message=message,
                finish_reason=finish_in(stop_reason) or "stop",
                stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
            )
        ],
        usage=usage,
        upstream_id=raw.get("id"),
        upstream_model=raw.get("model"),
    )


def _message_from(content: list[dict[str, Any]]) -> Message:
    texts: list[str] = []
    calls: list[ToolCall] = []
    thinking: list[str] = []
    signature: str | None = None
    for block in content:
        kind = block["type"]
        if kind == "text":
            texts.append(block["text"])
        elif kind == "tool_use":
            args = block.get("input")
            calls.append(ToolCall(block["id"], block["name"], orjson.dumps(args or {}).decode()))
        elif kind == "thinking":
            thinking.append(block.get("thinking") or "")
            signature = block.get("signature") or signature
        elif kind == "redacted_thinking" and signature is None:
            signature = REDACTED + str(block.get("data") or "")
        # server tool blocks (server_tool_use, web_search_tool_result, ...) have no
        # canonical form: they are not forwarded.
    return Message(
        role="assistant",
        content="".join(texts) if texts or not calls else None,
        tool_calls=calls or None,
        reasoning="".join(thinking) if thinking else None,
        reasoning_signature=signature,
    )


# ---------------------------------------------------------------- edge: response out
def _input(arguments: str) -> Any:
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def content_blocks(m: Message) -> list[dict[str, Any]]:
    """An assistant message as Message content: thinking, text, then tool_use blocks."""
    blocks: list[dict[str, Any]] = []
    sig = m.reasoning_signature
    if sig and sig.startswith(REDACTED):
        blocks.append({"type": "redacted_thinking", "data": sig[len(REDACTED) :]})
    elif m.reasoning or sig:
        blocks.append({"type": "thinking", "thinking": m.reasoning or "", "signature": sig or ""})
    if isinstance(m.content, str):
        if m.content:
            blocks.append({"type": "text", "text": m.content})
    elif m.content:
        blocks.extend(
            {"type": "text", "text": p.text} for p in m.content if isinstance(p, TextPart)
        )
    if m.refusal and not m.content:
        blocks.append({"type": "text", "text": m.refusal})
    for tc in m.tool_calls or ():
        blocks.append(
            {"type": "tool_use", "id": tc.id, "name": tc.name, "input": _input(tc.arguments)}
        )
    return blocks


def render_response(resp: ChatResponse, msg_id: str, model: str) -> bytes:
    """A canonical response (choice 0) as an Anthropic Message object."""
    choice = resp.choices[0] if resp.choices else None
    blocks = content_blocks(choice.message) if choice else []
    finish = choice.finish_reason if choice else "stop"
    stop_sequence = choice.stop_sequence if choice else None
    usage = (
        usage_out(resp.usage) if resp.usage is not None else {"input_tokens": 0, "output_tokens": 0}
    )
    return orjson.dumps(
        {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": stop_reason_out(finish, stop_sequence),
            "stop_sequence": stop_sequence,
            "usage": usage,
        }
    )
