"""The OpenAI-compatible family: every provider that speaks `/chat/completions`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import orjson

from gatewayz.canonical.types import ChatRequest, ChatResponse, StreamChunk
from gatewayz.errors import (
    GatewayError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    from_upstream_status,
)
from gatewayz.providers.transport import HttpPool, ReadTimeout, UpstreamResponse
from gatewayz.wire import openai_chat, openai_request
from gatewayz.wire.sse import SSEDecoder

if TYPE_CHECKING:
    from gatewayz.providers.registry import Provider

_ERROR_BODY_LIMIT = 64 << 10


class ChunkStream:
    """An open upstream stream: iterate for batches of canonical chunks (one batch per network
    read, so the edge can write them in one go); `abort()` drops the connection."""

    def __init__(self, resp: UpstreamResponse, provider: str) -> None:
        self._resp = resp
        self._provider = provider

    async def __aiter__(self) -> AsyncIterator[list[StreamChunk]]:
        decoder = SSEDecoder()
        try:
            async for data in self._resp.chunks():
                batch = []
                for _event, payload in decoder.feed(data):
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
                if batch:
                    yield batch
        except GatewayError:
            raise
        except Exception as exc:
            raise _transport_error(exc, self._provider) from None

    def abort(self) -> None:
        self._resp.abort()

    def release(self) -> None:
        self._resp.release()


def _transport_error(exc: Exception, provider: str) -> GatewayError:
    if isinstance(exc, ReadTimeout):
        return UpstreamTimeout(f"provider {provider} timed out: {exc}", provider=provider)
    return UpstreamUnavailable(f"provider {provider} is unreachable: {exc}", provider=provider)


class OpenAICompatAdapter:
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

    async def _open(self, body: bytes) -> UpstreamResponse:
        slug = self.provider.slug
        try:
            resp = await self.pool.request("POST", "/chat/completions", self._headers, body)
        except Exception as exc:
            raise _transport_error(exc, slug) from None
        if resp.status >= 400:
            try:
                detail = await resp.read(_ERROR_BODY_LIMIT)
            except Exception:
                detail = b""
            finally:
                resp.release()
            retry_after = resp.header(b"retry-after")
            raise from_upstream_status(
                resp.status,
                openai_chat.upstream_error_message(detail),
                slug,
                retry_after.decode() if retry_after else None,
            )
        return resp

    async def send(self, req: ChatRequest, native_model: str) -> ChatResponse:
        body = openai_request.render_request(
            req, native_model, max_tokens_param=self.provider.max_tokens_param
        )
        resp = await self._open(body)
        try:
            data = await resp.read()
        except Exception as exc:
            resp.abort()
            raise _transport_error(exc, self.provider.slug) from None
        resp.release()
        return openai_chat.parse_response(data, self.provider.slug)

    async def stream(self, req: ChatRequest, native_model: str) -> ChunkStream:
        body = openai_request.render_request(
            req,
            native_model,
            stream_usage=self.provider.stream_usage,
            max_tokens_param=self.provider.max_tokens_param,
        )
        return ChunkStream(await self._open(body), self.provider.slug)

    async def list_models(self) -> list[str]:
        try:
            resp = await self.pool.request("GET", "/models", self._headers)
            data = await resp.read()
            resp.release()
        except Exception as exc:
            raise _transport_error(exc, self.provider.slug) from None
        if resp.status >= 400:
            raise from_upstream_status(
                resp.status, openai_chat.upstream_error_message(data), self.provider.slug
            )
        try:
            return [m["id"] for m in orjson.loads(data)["data"]]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise openai_chat.bad_upstream(self.provider.slug, exc) from None
