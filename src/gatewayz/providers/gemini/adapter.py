"""The Gemini family: Google AI Studio's `generateContent` API (key in `x-goog-api-key`).

`POST {base}/v1beta/models/{model}:generateContent`, and `:streamGenerateContent?alt=sse` for
streams (SSE events of whole GenerateContentResponse objects); embeddings
(`:batchEmbedContents`) and Imagen images (`:predict`) in `media.py`. Vertex AI speaks the same
bodies under another path and with OAuth (`providers/vertex/` builds on this adapter).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from gatewayz.canonical.media import (
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
)
from gatewayz.canonical.types import ChatRequest, ChatResponse
from gatewayz.errors import UpstreamError
from gatewayz.providers import listing, urls
from gatewayz.providers.base import EventStream, event_stream, open_upstream, read_body
from gatewayz.providers.gemini import media
from gatewayz.providers.gemini import request as gemini_request
from gatewayz.providers.gemini import response as gemini_response
from gatewayz.providers.gemini.listing import read_models
from gatewayz.providers.gemini.stream import GeminiStreamDecoder
from gatewayz.providers.listing import ModelListing
from gatewayz.providers.provider import Listed
from gatewayz.providers.transport import HttpPool, UpstreamResponse

if TYPE_CHECKING:
    from gatewayz.providers.provider import Provider


def model_path(model: str) -> str:
    """`gemini-2.5-flash` → `models/gemini-2.5-flash`; `tunedModels/x` stays as it is (its
    slash kept, everything else escaped)."""
    if "/" in model:
        return urls.segment(model, keep="/@")
    return "models/" + urls.segment(model, keep="@")


class Adapter(ModelListing):
    """send / stream / models for Google AI Studio (the Gemini API)."""

    family = "gemini"
    api_prefix = "/v1beta"

    def __init__(self, provider: Provider, pool: HttpPool) -> None:
        self.provider = provider
        self.pool = pool
        headers = [(b"content-type", b"application/json"), (b"user-agent", b"gatewayz/0.1")]
        if provider.api_key:
            headers.append((b"x-goog-api-key", provider.api_key.encode()))
        for k, v in provider.headers.items():
            headers.append((k.lower().encode(), v.encode()))
        self._headers = headers

    # Hooks Vertex overrides: the request headers (its OAuth token), the model's path and the
    # model list's reader.
    async def headers(self) -> list[tuple[bytes, bytes]]:
        return self._headers

    def model_reader(self) -> listing.Reader:
        return read_models

    def model_url(self, native_model: str) -> str:
        return f"{self.api_prefix}/{model_path(native_model)}"

    def on_unauthorized(self) -> None:
        """The upstream answered 401."""

    async def _open(self, method: str, path: str, body: bytes) -> UpstreamResponse:
        try:
            return await open_upstream(
                self.pool,
                method,
                path,
                await self.headers(),
                body,
                self.provider.slug,
                gemini_response.upstream_error_message,
            )
        except UpstreamError as exc:
            if exc.upstream_status == 401:
                self.on_unauthorized()
            raise

    async def send(self, req: ChatRequest, native_model: str) -> ChatResponse:
        body = gemini_request.render_request(req, native_model)
        resp = await self._open("POST", self.model_url(native_model) + ":generateContent", body)
        slug = self.provider.slug
        return gemini_response.parse_response(await read_body(resp, slug), slug)

    async def stream(self, req: ChatRequest, native_model: str) -> EventStream:
        body = gemini_request.render_request(req, native_model)
        path = self.model_url(native_model) + ":streamGenerateContent?alt=sse"
        resp = await self._open("POST", path, body)
        slug = self.provider.slug
        return await event_stream(resp, slug, GeminiStreamDecoder(slug))

    async def post(self, path: str, body: bytes) -> bytes:
        """A whole JSON answer of `POST path`."""
        return await read_body(await self._open("POST", path, body), self.provider.slug)

    async def embed(self, req: EmbeddingRequest, native_model: str) -> EmbeddingResponse:
        texts = media.embedding_texts(req, self.provider.name)
        calls = [
            partial(self._embed_batch, batch, native_model, req.dimensions)
            for batch in media.batches(texts, media.MAX_BATCH)
        ]
        parts = await media.in_order(calls)
        return EmbeddingResponse([v for part in parts for v in part], prompt_tokens=None)

    async def _embed_batch(
        self, texts: list[str], native_model: str, dimensions: int | None
    ) -> list[list[float]]:
        body = media.batch_embed_body(texts, native_model, dimensions)
        data = await self.post(self.model_url(native_model) + ":batchEmbedContents", body)
        return media.parse_batch_embed(data, self.provider.slug, len(texts), dimensions)

    async def generate_images(self, req: ImageRequest, native_model: str) -> ImageResponse:
        body = media.imagen_body(req, self.provider.name, native_model)
        data = await self.post(self.model_url(native_model) + ":predict", body)
        return media.parse_imagen(data, self.provider.slug, req)

    async def models(self, timeout_s: float | None = None) -> list[Listed]:
        headers = await listing.credentials(self.headers)
        return await listing.read(self.model_reader(), self.pool, headers, timeout_s)
