"""Anthropic Messages streams, both directions (re-exported by `response`).

`StreamRenderer` (edge) turns canonical chunks into Anthropic's exact event sequence:
message_start, ping, then per content block content_block_start / content_block_delta* /
content_block_stop (one block open at a time; no block for an empty delta; one tool_use block
per tool call, in order), then message_delta (stop_reason, stop_sequence, usage) and
message_stop. `AnthropicStreamDecoder` (family) reads such a stream back into canonical chunks.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from gatewayz.canonical.types import ChoiceDelta, StreamChunk, ToolCallDelta, Usage
from gatewayz.errors import GatewayError
from gatewayz.providers.anthropic.common import (
    error_object,
    finish_in,
    malformed,
    stop_reason_out,
    stream_error,
    usage_in,
    usage_out,
)
from gatewayz.providers.anthropic.content import REDACTED
from gatewayz.providers.sse import SSEDecoder


def event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


# ---------------------------------------------------------------- edge: stream out
class StreamRenderer:
    """Canonical chunks (choice 0) → Anthropic SSE bytes."""

    def __init__(self, msg_id: str, model: str, input_tokens: int) -> None:
        self._id = msg_id
        self._model = model
        self._input_tokens = input_tokens
        self._index = -1  # the last block opened
        self._open: str | None = None  # type of the open block
        self._tools: dict[int, int] = {}  # canonical tool index → block index
        self._finish: str | None = None
        self._stop_sequence: str | None = None
        self._closed = False

    def start(self) -> bytes:
        message = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
        }
        return event("message_start", {"type": "message_start", "message": message}) + event(
            "ping", {"type": "ping"}
        )

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _start(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._open = kind
        payload = {"type": "content_block_start", "index": self._index, "content_block": block}
        return out + event("content_block_start", payload)

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> bytes:
        i = self._index if index is None else index
        payload = {"type": "content_block_delta", "index": i, "delta": delta}
        return event("content_block_delta", payload)

    def _thinking(self) -> bytes:
        if self._open == "thinking":
            return b""
        return self._start("thinking", {"type": "thinking", "thinking": "", "signature": ""})

    def feed(self, chunk: StreamChunk) -> bytes:
        out: list[bytes] = []
        for d in chunk.choices:
            if d.index != 0:
                continue
            if d.reasoning:
                out.append(self._thinking())
                out.append(self._delta({"type": "thinking_delta", "thinking": d.reasoning}))
            sig = d.reasoning_signature
            if sig and sig.startswith(REDACTED):
                block = {"type": "redacted_thinking", "data": sig[len(REDACTED) :]}
                out.append(self._start("redacted_thinking", block))
                out.append(self._close())
            elif sig:
                out.append(self._thinking())
                out.append(self._delta({"type": "signature_delta", "signature": sig}))
                out.append(self._close())  # the signature is a thinking block's last event
            text = d.content or d.refusal
            if text:
                if self._open != "text":
                    out.append(self._start("text", {"type": "text", "text": ""}))
                out.append(self._delta({"type": "text_delta", "text": text}))
            for tc in d.tool_calls or ():
                out.append(self._tool(tc))
            if d.finish_reason is not None:
                self._finish = d.finish_reason
            if d.stop_sequence is not None:
                self._stop_sequence = d.stop_sequence
        return b"".join(out)

    def _tool(self, tc: ToolCallDelta) -> bytes:
        out = b""
        if tc.index not in self._tools:
            tool_id = tc.id or "toolu_" + os.urandom(12).hex()
            block = {"type": "tool_use", "id": tool_id, "name": tc.name or "", "input": {}}
            out = self._start("tool_use", block)
            self._tools[tc.index] = self._index
        if tc.arguments:
            # A late piece for an earlier call still names that call's block.
            delta = {"type": "input_json_delta", "partial_json": tc.arguments}
            out += self._delta(delta, self._tools[tc.index])
        return out

    def finish(self, usage: Usage) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        delta = {
            "stop_reason": stop_reason_out(self._finish, self._stop_sequence),
            "stop_sequence": self._stop_sequence,
        }
        payload = {"type": "message_delta", "delta": delta, "usage": usage_out(usage)}
        return (
            self._close()
            + event("message_delta", payload)
            + event("message_stop", {"type": "message_stop"})
        )

    def error(self, err: GatewayError) -> bytes:
        self._closed = True
        return event("error", error_object(err))


# ---------------------------------------------------------------- family: stream in
class AnthropicStreamDecoder:
    """Upstream Messages SSE → canonical chunks. The final usage (message_start's input and
    cache counts, message_delta's output count) arrives as one usage-only chunk."""

    def __init__(self, provider: str) -> None:
        self._sse = SSEDecoder()
        self._provider = provider
        self._tools: dict[int, int] = {}  # block index → canonical tool index
        self._start_usage: dict[str, Any] = {}
        self._done = False
        self._started = False

    def feed(self, data: bytes) -> list[StreamChunk]:
        batch: list[StreamChunk] = []
        for _event, payload in self._sse.feed(data):
            try:
                raw = orjson.loads(payload)
                kind = raw.get("type")
                if kind == "error":
                    raise stream_error(raw, self._provider)
                chunk = self._chunk(kind, raw)
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
                raise malformed(self._provider, "stream event") from None
            if chunk is not None:
                batch.append(chunk)
        return batch

    def _delta(self, **fields: Any) -> StreamChunk:
        return StreamChunk([ChoiceDelta(index=0, **fields)])

    def _chunk(self, kind: str, raw: dict[str, Any]) -> StreamChunk | None:
        if kind == "message_start":
            self._started = True
            self._start_usage = dict(raw["message"].get("usage") or {})
            return self._delta(role="assistant")
        if kind == "content_block_start":
            return self._block_start(int(raw["index"]), raw["content_block"])
        if kind == "content_block_delta":
            return self._block_delta(int(raw["index"]), raw["delta"])
        if kind == "message_delta":
            return self._message_delta(raw)
        if kind == "message_stop":
            self._done = True
        return None  # ping, content_block_stop, and event types added later

    def _block_start(self, index: int, block: dict[str, Any]) -> StreamChunk | None:
        kind = block["type"]
        if kind == "text":
            return self._delta(content=block["text"]) if block.get("text") else None
        if kind == "tool_use":
            tool = self._tools[index] = len(self._tools)
            args = block.get("input")
            first = orjson.dumps(args).decode() if args else ""
            call = ToolCallDelta(tool, id=block["id"], name=block["name"], arguments=first)
            return self._delta(tool_calls=[call])
        if kind == "thinking":
            return self._delta(reasoning=block["thinking"]) if block.get("thinking") else None
        if kind == "redacted_thinking":
            return self._delta(reasoning_signature=REDACTED + str(block["data"]))
        return None

    def _block_delta(self, index: int, delta: dict[str, Any]) -> StreamChunk | None:
        kind = delta["type"]
        if kind == "text_delta":
            return self._delta(content=delta["text"]) if delta["text"] else None
        if kind == "input_json_delta":
            piece = delta["partial_json"]
            if not piece or index not in self._tools:
                return None
            return self._delta(tool_calls=[ToolCallDelta(self._tools[index], arguments=piece)])
        if kind == "thinking_delta":
            return self._delta(reasoning=delta["thinking"]) if delta["thinking"] else None
        if kind == "signature_delta":
            return self._delta(reasoning_signature=delta["signature"])
        return None  # citations_delta and later kinds

    def _message_delta(self, raw: dict[str, Any]) -> StreamChunk:
        d = raw.get("delta") or {}
        stop_sequence = d.get("stop_sequence")
        self._done = True
        finish = ChoiceDelta(
            index=0,
            finish_reason=finish_in(d.get("stop_reason")) or "stop",
            stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
        )
        merged = {**self._start_usage}
        for k, v in (raw.get("usage") or {}).items():
            if v is not None:
                merged[k] = v
        return StreamChunk([finish], usage_in(merged))

    def finish(self) -> list[StreamChunk]:
        if not self._done:
            what = "stream (it ended before message_delta)" if self._started else "empty stream"
            raise malformed(self._provider, what)
        return []
