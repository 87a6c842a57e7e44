"""Cohere v2 streams coming in: SSE events (`event: <type>` + a JSON `data:` carrying the same
`type`) into canonical chunks. `StreamParser` reads the parsed events, `CohereStreamDecoder`
the bytes."""

from __future__ import annotations

from typing import Any

import orjson

from gatewayz.canonical.types import ChoiceDelta, StreamChunk, ToolCallDelta
from gatewayz.errors import UpstreamError, UpstreamUnavailable
from gatewayz.providers.cohere.codec import FAILED_REASONS, FINISH_REASONS, parse_usage
from gatewayz.providers.sse import SSEDecoder


class StreamParser:
    """Cohere v2 stream events (parsed JSON objects) → canonical chunks. Tool calls are
    numbered in arrival order; `message-end` carries the finish reason and usage."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.ended = False
        self._calls: dict[int, int] = {}  # Cohere's event index -> our tool-call index

    def event(self, raw: dict[str, Any]) -> StreamChunk | None:
        kind = raw.get("type")
        delta = raw.get("delta") or {}
        msg = delta.get("message") or {}
        if kind == "message-start":
            return StreamChunk([ChoiceDelta(0, role="assistant")])
        if kind in ("content-start", "content-delta"):
            content = msg.get("content") or {}
            text, thinking = content.get("text"), content.get("thinking")
            if not text and not thinking:
                return None
            return StreamChunk([ChoiceDelta(0, content=text or None, reasoning=thinking or None)])
        if kind == "tool-plan-delta":
            plan = msg.get("tool_plan")
            return StreamChunk([ChoiceDelta(0, reasoning=plan)]) if plan else None
        if kind == "tool-call-start":
            call = msg["tool_calls"]
            ours = len(self._calls)
            self._calls[raw.get("index", ours)] = ours
            fn = call.get("function") or {}
            tcd = ToolCallDelta(ours, call["id"], fn["name"], fn.get("arguments") or None)
            return StreamChunk([ChoiceDelta(0, tool_calls=[tcd])])
        if kind == "tool-call-delta":
            args = ((msg.get("tool_calls") or {}).get("function") or {}).get("arguments")
            if not args:
                return None
            ours = self._calls.get(raw.get("index", -1), len(self._calls) - 1)
            return StreamChunk([ChoiceDelta(0, tool_calls=[ToolCallDelta(ours, arguments=args)])])
        if kind == "message-end":
            self.ended = True
            finish = delta.get("finish_reason")
            if delta.get("error") or finish in FAILED_REASONS:
                detail = delta.get("error") or finish
                raise UpstreamError(
                    f"provider {self.provider} failed mid-stream: {detail}",
                    provider=self.provider,
                )
            return StreamChunk(
                [ChoiceDelta(0, finish_reason=FINISH_REASONS.get(finish, "stop"))],
                parse_usage(delta.get("usage")),
            )
        return None  # content-end, tool-call-end, citations, debug


class CohereStreamDecoder:
    """SSE events (`event: <type>` + a JSON `data:` carrying the same `type`) → canonical."""

    def __init__(self, provider: str) -> None:
        self._sse = SSEDecoder()
        self._parser = StreamParser(provider)
        self._provider = provider

    def feed(self, data: bytes) -> list[StreamChunk]:
        batch = []
        for event, payload in self._sse.feed(data):
            if payload == b"[DONE]":
                continue
            try:
                raw = orjson.loads(payload)
                if not isinstance(raw, dict):
                    raise TypeError("event is not an object")
                if "type" not in raw and event is not None:
                    raw["type"] = event.decode()
                chunk = self._parser.event(raw)
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise self._malformed() from None
            if chunk is not None:
                batch.append(chunk)
        return batch

    def finish(self) -> list[StreamChunk]:
        if not self._parser.ended:
            raise UpstreamUnavailable(
                f"provider {self._provider} ended the stream before message-end",
                provider=self._provider,
            )
        return []

    def _malformed(self) -> UpstreamUnavailable:
        return UpstreamUnavailable(
            f"provider {self._provider} sent a malformed stream event", provider=self._provider
        )
