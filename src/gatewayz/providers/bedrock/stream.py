"""ConverseStream: decoded event-stream messages (`eventstream.py`) → canonical chunks.

Event frames carry `:event-type` (messageStart, contentBlockStart, contentBlockDelta,
contentBlockStop, messageStop, metadata) and a JSON payload; exception frames carry
`:exception-type` (throttlingException, modelStreamErrorException, ...) and `{"message"}`.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatewayz.canonical.types import ChoiceDelta, StreamChunk, ToolCallDelta
from gatewayz.errors import GatewayError
from gatewayz.providers.bedrock.codec import (
    ERROR_STATUS,
    bad_upstream,
    error_message,
    finish_reason,
    parse_usage,
    stop_sequence,
    upstream_error,
)
from gatewayz.providers.bedrock.eventstream import EventStreamDecoder, EventStreamError


def stream_exception(kind: str, payload: bytes, provider: str) -> GatewayError:
    status = ERROR_STATUS.get(kind.lower(), 500)
    err = upstream_error(status, payload, kind, provider)
    err.message = f"provider {provider} failed mid-stream: {error_message(payload, kind)}"
    err.args = (err.message,)
    return err


class StreamState:
    """ConverseStream events (type, JSON payload) → canonical chunks for choice 0."""

    def __init__(self) -> None:
        self._tools: dict[int, int] = {}  # contentBlockIndex → tool call index

    def _tool_index(self, block: int) -> int:
        if block not in self._tools:
            self._tools[block] = len(self._tools)
        return self._tools[block]

    def event(self, kind: str, ev: dict[str, Any]) -> StreamChunk | None:
        """KeyError/TypeError/AttributeError when an event lacks its required members."""
        if kind == "messageStart":
            return StreamChunk([ChoiceDelta(0, role=ev.get("role") or "assistant")])
        if kind == "contentBlockStart":
            use = ev["start"].get("toolUse")
            if not use:
                return None
            idx = self._tool_index(int(ev["contentBlockIndex"]))
            call = ToolCallDelta(idx, id=use["toolUseId"], name=use["name"], arguments="")
            return StreamChunk([ChoiceDelta(0, tool_calls=[call])])
        if kind == "contentBlockDelta":
            delta = ev["delta"]
            if "text" in delta:
                return StreamChunk([ChoiceDelta(0, content=delta["text"])])
            if "toolUse" in delta:
                idx = self._tool_index(int(ev["contentBlockIndex"]))
                call = ToolCallDelta(idx, arguments=delta["toolUse"]["input"])
                return StreamChunk([ChoiceDelta(0, tool_calls=[call])])
            if "reasoningContent" in delta:
                rc = delta["reasoningContent"]
                if "text" not in rc and "signature" not in rc:
                    return None
                d = ChoiceDelta(
                    0, reasoning=rc.get("text"), reasoning_signature=rc.get("signature")
                )
                return StreamChunk([d])
            return None
        if kind == "messageStop":
            d = ChoiceDelta(
                0,
                finish_reason=finish_reason(ev["stopReason"]),
                stop_sequence=stop_sequence(ev.get("additionalModelResponseFields")),
            )
            return StreamChunk([d])
        if kind == "metadata":
            usage = parse_usage(ev.get("usage"))
            return StreamChunk([], usage) if usage else None
        return None  # contentBlockStop and event types this version does not know


class ConverseStreamDecoder:
    """The response body of ConverseStream, fed as it arrives (split anywhere) → canonical
    chunks (the `StreamDecoder` protocol). Raises a GatewayError for an exception frame, a
    frame that fails its CRC, or a stream that ends before `messageStop`."""

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._frames = EventStreamDecoder()
        self._state = StreamState()
        self._stopped = False
        self._error: GatewayError | None = None

    def feed(self, data: bytes) -> list[StreamChunk]:
        """Chunks decoded before an error in the same read are returned first; the error is
        raised on the next call (or by `finish`)."""
        if self._error is not None:
            raise self._error
        batch: list[StreamChunk] = []
        try:
            self._decode(data, batch)
        except GatewayError as exc:
            if not batch:
                raise
            self._error = exc
        return batch

    def _decode(self, data: bytes, batch: list[StreamChunk]) -> None:
        try:
            messages = self._frames.feed(data)
        except EventStreamError as exc:
            raise bad_upstream(self._provider, str(exc)) from None
        for msg in messages:
            h = msg.headers
            kind = h.get(":message-type", "event")
            if kind == "exception":
                raise stream_exception(str(h.get(":exception-type")), msg.payload, self._provider)
            if kind == "error":
                code = str(h.get(":error-code") or "InternalServerException")
                text = str(h.get(":error-message") or "")
                raise stream_exception(code, orjson.dumps({"message": text}), self._provider)
            event_type = str(h.get(":event-type", ""))
            try:
                chunk = self._state.event(event_type, orjson.loads(msg.payload or b"{}"))
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
                raise bad_upstream(self._provider, f"bad {event_type} event") from None
            if event_type == "messageStop":
                self._stopped = True
            if chunk is not None:
                batch.append(chunk)
        if self._frames.pending_error is not None:
            raise bad_upstream(self._provider, str(self._frames.pending_error))

    def finish(self) -> list[StreamChunk]:
        if self._error is not None:
            raise self._error
        if self._frames.pending or not self._stopped:
            raise bad_upstream(self._provider, "the stream ended before messageStop")
        return []
