"""The Cohere family: Cohere's native v2 chat API (`POST /v2/chat`, Bearer key), its SSE stream
of typed events, `GET /v1/models`, and embeddings (`POST /v2/embed`). The wire mapping lives in
`codec.py`, `stream.py` and `media.py`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewayz.canonical.media import EmbeddingRequest, EmbeddingResponse
from gatewayz.canonical.types import ChatRequest, ChatResponse
from gatewayz.providers import listing
from gatewayz.providers.base import EventStream, event_stream, open_upstream, read_body
from gatewayz.providers.cohere import codec, media
from gatewayz.providers.cohere.listing import read_models
from gatewayz.providers.cohere.stream import CohereStreamDecoder
from gatewayz.providers.listing import ModelListing
from gatewayz.providers.provider import Listed
from gatewayz.providers.transport import HttpPool

if TYPE_CHECKING:
    from gatewayz.providers.provider import Provider

CHAT_PATH = "/v2/chat"
MODELS_PATH = "/v1/models?endpoint=chat&page_size=1000"
_MAX_MODEL_PAGES = 20


class Adapter(ModelListing):
    """send / stream / embed / models for Cohere's v2 API."""

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
        body = codec.render_request(req, native_model, stream=False)
        resp = await open_upstream(
            self.pool, "POST", CHAT_PATH, self._headers, body, slug, codec.error_message
        )
        return codec.parse_response(await read_body(resp, slug), slug)

    async def stream(self, req: ChatRequest, native_model: str) -> EventStream:
        slug = self.provider.slug
        body = codec.render_request(req, native_model, stream=True)
        resp = await open_upstream(
            self.pool, "POST", CHAT_PATH, self._stream_headers, body, slug, codec.error_message
        )
        return await event_stream(resp, slug, CohereStreamDecoder(slug))

    async def _post(self, path: str, body: bytes) -> bytes:
        slug = self.provider.slug
        resp = await open_upstream(
            self.pool, "POST", path, self._headers, body, slug, codec.error_message
        )
        return await read_body(resp, slug)

    async def embed(self, req: EmbeddingRequest, native_model: str) -> EmbeddingResponse:
        return await media.embed(self._post, req, native_model, self.provider.slug)

    async def models(self, timeout_s: float | None = None) -> list[Listed]:
        return await listing.read(read_models, self.pool, self._headers, timeout_s)
