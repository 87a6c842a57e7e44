"""The Anthropic family's adapter: `POST /v1/messages` (send and stream) and the model list.
A request's Anthropic beta flags (the `anthropic-beta` header the client sent) go along."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewayz.canonical.types import ChatRequest, ChatResponse
from gatewayz.providers import listing
from gatewayz.providers.anthropic import request as anthropic_request
from gatewayz.providers.anthropic import response as anthropic_response
from gatewayz.providers.anthropic.listing import read_models
from gatewayz.providers.base import EventStream, event_stream, open_upstream, read_body
from gatewayz.providers.listing import ModelListing
from gatewayz.providers.provider import Listed
from gatewayz.providers.transport import HttpPool, UpstreamResponse

if TYPE_CHECKING:
    from gatewayz.providers.provider import Provider

API_VERSION = b"2023-06-01"
MESSAGES_PATH = "/v1/messages"
MODELS_PATH = "/v1/models"
_MAX_MODEL_PAGES = 20


class Adapter(ModelListing):
    """send / stream / models for one Anthropic-family provider."""

    family = "anthropic"

    def __init__(self, provider: Provider, pool: HttpPool) -> None:
        self.provider = provider
        self.pool = pool
        headers = [
            (b"content-type", b"application/json"),
            (b"anthropic-version", API_VERSION),
            (b"user-agent", b"gatewayz/0.1"),
        ]
        key = provider.api_key
        if key and provider.auth == "bearer":
            headers.append((b"authorization", b"Bearer " + key.encode()))
        elif key and provider.auth != "none":
            headers.append((b"x-api-key", key.encode()))
        for k, v in provider.headers.items():
            headers.append((k.lower().encode(), v.encode()))
        self._headers = headers

    async def _open(self, req: ChatRequest, native_model: str) -> UpstreamResponse:
        headers = self._headers
        if req.betas:
            headers = [*headers, (b"anthropic-beta", ",".join(req.betas).encode())]
        return await open_upstream(
            self.pool,
            "POST",
            MESSAGES_PATH,
            headers,
            anthropic_request.render_request(req, native_model),
            self.provider.slug,
            anthropic_response.upstream_error_message,
        )

    async def send(self, req: ChatRequest, native_model: str) -> ChatResponse:
        slug = self.provider.slug
        resp = await self._open(req, native_model)
        return anthropic_response.parse_response(await read_body(resp, slug), slug)

    async def stream(self, req: ChatRequest, native_model: str) -> EventStream:
        slug = self.provider.slug
        resp = await self._open(req, native_model)
        return await event_stream(resp, slug, anthropic_response.AnthropicStreamDecoder(slug))

    async def models(self, timeout_s: float | None = None) -> list[Listed]:
        return await listing.read(read_models, self.pool, self._headers, timeout_s)
