"""Gemini streams coming in: `:streamGenerateContent?alt=sse` answers SSE events, each a whole
`GenerateContentResponse`, into canonical chunks (parsed by `response.parse_chunk`)."""

from __future__ import annotations

import orjson

from gatewayz.canonical.types import StreamChunk
from gatewayz.errors import UpstreamError, UpstreamUnavailable
from gatewayz.providers.gemini import response as gemini_response
from gatewayz.providers.sse import SSEDecoder


class GeminiStreamDecoder:
    """SSE `data:` events of GenerateContentResponse objects → canonical chunks."""

    def __init__(self, provider: str) -> None:
        self._sse = SSEDecoder()
        self._provider = provider
        self._calls_seen: dict[int, int] = {}

    def feed(self, data: bytes) -> list[StreamChunk]:
        batch = []
        for _event, payload in self._sse.feed(data):
            try:
                raw = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise self._malformed() from None
            err = gemini_response.error_of(raw)
            if err is not None:
                raise UpstreamError(
                    f"provider {self._provider} failed mid-stream: {err.get('message') or err}",
                    provider=self._provider,
                )
            try:
                batch.append(gemini_response.parse_chunk(raw, self._calls_seen))
            except (KeyError, TypeError, AttributeError, ValueError):
                raise self._malformed() from None
        return batch

    def finish(self) -> list[StreamChunk]:
        if self._sse.pending.strip():
            raise self._malformed()
        return []

    def _malformed(self) -> UpstreamUnavailable:
        return UpstreamUnavailable(
            f"provider {self._provider} sent a malformed stream event", provider=self._provider
        )
