"""OpenAI chat-completion streams coming in: SSE `data:` events of `chat.completion.chunk`
objects, ended by `[DONE]`, into canonical chunks. (Going out, to our callers, they are rendered
by `chat.render_chunk`.)"""

from __future__ import annotations

import orjson

from gatewayz.canonical.types import StreamChunk
from gatewayz.errors import UpstreamError, UpstreamUnavailable
from gatewayz.providers.openai import chat as openai_chat
from gatewayz.providers.sse import SSEDecoder


class OpenAIStreamDecoder:
    """SSE `data:` events of chat.completion.chunk objects → canonical chunks."""

    def __init__(self, provider: str) -> None:
        self._sse = SSEDecoder()
        self._provider = provider

    def feed(self, data: bytes) -> list[StreamChunk]:
        batch = []
        for _event, payload in self._sse.feed(data):
            if payload == b"[DONE]":
                continue
            try:
                raw = orjson.loads(payload)
                if "error" in raw and "choices" not in raw:
                    msg = openai_chat.upstream_error_message(payload)
                    raise UpstreamError(
                        f"provider {self._provider} failed mid-stream: {msg}",
                        provider=self._provider,
                    )
                batch.append(openai_chat.parse_chunk(raw))
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise UpstreamUnavailable(
                    f"provider {self._provider} sent a malformed stream event",
                    provider=self._provider,
                ) from None
        return batch

    def finish(self) -> list[StreamChunk]:
        return []
