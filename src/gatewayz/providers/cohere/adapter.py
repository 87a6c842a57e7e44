"""The Cohere family: Cohere's native v2 chat API (`POST /v2/chat`, Bearer key), its SSE stream
of typed events, and `GET /v1/models`. The wire mapping lives in `gatewayz.wire.cohere`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from gatewayz.canonical.types import ChatRequest, ChatResponse, StreamChunk
from gatewayz.errors import UpstreamUnavailable
from gatewayz.providers import urls
from gatewayz.providers.base import EventStream, event_stream, open_upstream, read_body
from gatewayz.providers.sse import SSEDecoder
from gatewayz.providers.transport import HttpPool
from gatewayz.wire import cohere

if TYPE_CHECKING:
    from gatewayz.providers.registry import Provider

CHAT_PATH = "/v2/chat"
MODELS_PATH = "/v1/models?endpoint=chat&page_size=1000"
_MAX_MODEL_PAGES = 20


class CohereStreamDecoder:
    """SSE events (`event: <type>` + a JSON `data:` carrying the same `type`) → canonical."""

    def __init__(self, provider: str) -> None:
        self._sse = SSEDecoder()
        self._parser = cohere.StreamParser(provider)
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


class Adapter:
    """send / stream / list_models for Cohere's v2 API."""

    family = "cohere"

    def __init__(self, provider: Provider, pool: HttpPool) -> None:
        self.provider = provider
        self.pool = pool
        headers = [
            (b"content-type", b"application/json"),
            (b"accept", b"application/json"),
            (b"user-agent", b"gatewayz/0.1"),
        ]
        if provider.api_key:
            headers.append((b"authorization", b"Bearer " + provider.api_key.encode()))
        for k, v in provider.headers.items():
            headers.append((k.lower().encode(), v.encode()))
        self._headers = headers
        self._stream_headers = [
            (b"accept", b"text/event-stream") if k == b"accept" else (k, v) for k, v in headers
        ]

    async def send(self, req: ChatRequest, native_model: str) -> ChatResponse:
        slug = self.provider.slug
        body = cohere.render_request(req, native_model, stream=False)
        resp = await open_upstream(
            self.pool, "POST", CHAT_PATH, self._headers, body, slug, cohere.error_message
        )
        return cohere.parse_response(await read_body(resp, slug), slug)

    async def stream(self, req: ChatRequest, native_model: str) -> EventStream:
        slug = self.provider.slug
        body = cohere.render_request(req, native_model, stream=True)
        resp = await open_upstream(
            self.pool, "POST", CHAT_PATH, self._stream_headers, body, slug, cohere.error_message
        )
        return await event_stream(resp, slug, CohereStreamDecoder(slug))

    async def list_models(self) -> list[str]:
        slug = self.provider.slug
        names: list[str] = []
        path = MODELS_PATH
        for _ in range(_MAX_MODEL_PAGES):
            resp = await open_upstream(
                self.pool, "GET", path, self._headers, b"", slug, cohere.error_message
            )
            data = await read_body(resp, slug)
            try:
                page, token = cohere.parse_models(data)
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise cohere.bad_upstream(slug, exc) from None
            names += page
            if not token:
                break
            path = f"{MODELS_PATH}&page_token={urls.query(token)}"
        return names
