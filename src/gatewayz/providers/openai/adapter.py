"""The OpenAI-compatible family: every provider that speaks `/chat/completions`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewayz.canonical.media import (
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    TranscriptionRequest,
    TranscriptionResponse,
)
from gatewayz.canonical.types import ChatRequest, ChatResponse
from gatewayz.providers import listing
from gatewayz.providers.base import EventStream, event_stream, open_upstream, read_body
from gatewayz.providers.listing import ModelListing
from gatewayz.providers.openai import chat as openai_chat
from gatewayz.providers.openai import media
from gatewayz.providers.openai import request as openai_request
from gatewayz.providers.openai.listing import read_models
from gatewayz.providers.openai.stream import OpenAIStreamDecoder
from gatewayz.providers.provider import Listed
from gatewayz.providers.transport import HttpPool, UpstreamResponse

if TYPE_CHECKING:
    from gatewayz.providers.provider import Provider


class Adapter(ModelListing):
    """send / stream / models for one OpenAI-compatible provider."""

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

    async def _post(self, path: str, body: bytes, content_type: bytes | None = None) -> bytes:
        headers = self._headers
        if content_type is not None:
            headers = [(b"content-type", content_type), *headers[1:]]
        slug = self.provider.slug
        resp = await open_upstream(
            self.pool, "POST", path, headers, body, slug, openai_chat.upstream_error_message
        )
        return await read_body(resp, slug)

    async def embed(self, req: EmbeddingRequest, native_model: str) -> EmbeddingResponse:
        data = await self._post("/embeddings", media.embeddings_body(req, native_model))
        return media.parse_embeddings(data, self.provider.slug, req.count)

    async def generate_images(self, req: ImageRequest, native_model: str) -> ImageResponse:
        data = await self._post("/images/generations", media.images_body(req, native_model))
        return media.parse_images(data, self.provider.slug, req)

    async def transcribe(
        self, req: TranscriptionRequest, native_model: str
    ) -> TranscriptionResponse:
        path = "/audio/translations" if req.translate else "/audio/transcriptions"
        ctype, body = media.transcription_form(req, native_model)
        data = await self._post(path, body, ctype)
        return media.parse_transcription(data, self.provider.slug, req.response_format)

    async def models(self, timeout_s: float | None = None) -> list[Listed]:
        return await listing.read(read_models, self.pool, self._headers, timeout_s)
