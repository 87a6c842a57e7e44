"""The OpenAI-compatible family: every provider that speaks `/chat/completions`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from gatewayz.canonical.types import ChatRequest, ChatResponse, StreamChunk
from gatewayz.errors import UpstreamError, UpstreamUnavailable
from gatewayz.providers.base import EventStream, event_stream, open_upstream, read_body
from gatewayz.providers.sse import SSEDecoder
from gatewayz.providers.transport import HttpPool, UpstreamResponse
from gatewayz.wire import openai_chat, openai_request

if TYPE_CHECKING:
    from gatewayz.providers.registry import Provider


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


class Adapter:
    """send / stream / list_models for one OpenAI-compatible provider."""

    family = "openai"

    def __init__(self, provider: Provider, pool: HttpPool) -> None:
        self.provider = provider
        self.pool = pool
        headers = [(b"content-type", b"application/json"), (b"user-agent", b"gatewayz/0.1")]
        key = provider.api_key
        if key and provider.auth == "bearer":
            headers.append((b"authorization", b"Bearer " + key.encode()))
        elif key and provider.auth == "x-api-key":
            headers.append((b"x-api-key", key.encode()))
        elif key and provider.auth == "api-key":
            headers.append((b"api-key", key.encode()))
        for k, v in provider.headers.items():
            headers.append((k.lower().encode(), v.encode()))
        self._headers = headers

    def _body(self, req: ChatRequest, native_model: str) -> bytes:
        return openai_request.render_request(
            req,
            native_model,
            stream_usage=self.provider.stream_usage,
            max_tokens_param=self.provider.max_tokens_param,
        )

    async def _open(self, req: ChatRequest, native_model: str) -> UpstreamResponse:
        return await open_upstream(
            self.pool,
            "POST",
            "/chat/completions",
            self._headers,
            self._body(req, native_model),
            self.provider.slug,
            openai_chat.upstream_error_message,
        )

    async def send(self, req: ChatRequest, native_model: str) -> ChatResponse:
        slug = self.provider.slug
        resp = await self._open(req, native_model)
        return openai_chat.parse_response(await read_body(resp, slug), slug)

    async def stream(self, req: ChatRequest, native_model: str) -> EventStream:
        slug = self.provider.slug
        resp = await self._open(req, native_model)
        return await event_stream(resp, slug, OpenAIStreamDecoder(slug))

    async def list_models(self) -> list[str]:
        slug = self.provider.slug
        resp = await open_upstream(
            self.pool,
            "GET",
            "/models",
            self._headers,
            b"",
            slug,
            openai_chat.upstream_error_message,
        )
        data = await read_body(resp, slug)
        try:
            return [m["id"] for m in orjson.loads(data)["data"]]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise openai_chat.bad_upstream(slug, exc) from None
