"""The Gemini family: Google AI Studio's `generateContent` API (key in `x-goog-api-key`).

`POST {base}/v1beta/models/{model}:generateContent`, and `:streamGenerateContent?alt=sse` for
streams (SSE events of whole GenerateContentResponse objects). Vertex AI speaks the same
bodies under another path and with OAuth (`providers/vertex/` builds on this adapter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewayz.canonical.types import ChatRequest, ChatResponse
from gatewayz.errors import UpstreamError
from gatewayz.providers import listing, urls
from gatewayz.providers.base import EventStream, event_stream, open_upstream, read_body
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

    async def models(self, timeout_s: float | None = None) -> list[Listed]:
        headers = await listing.credentials(self.headers)
        return await listing.read(self.model_reader(), self.pool, headers, timeout_s)
