"""The Anthropic family's adapter: `POST /v1/messages` (send and stream) and the model list."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from gatewayz.canonical.types import ChatRequest, ChatResponse
from gatewayz.providers import urls
from gatewayz.providers.anthropic import request as anthropic_request
from gatewayz.providers.anthropic import response as anthropic_response
from gatewayz.providers.anthropic.common import malformed
from gatewayz.providers.base import EventStream, event_stream, open_upstream, read_body
from gatewayz.providers.transport import HttpPool, UpstreamResponse

if TYPE_CHECKING:
    from gatewayz.providers.registry import Provider

API_VERSION = b"2023-06-01"
MESSAGES_PATH = "/v1/messages"
MODELS_PATH = "/v1/models"
_MAX_MODEL_PAGES = 20


class Adapter:
    """send / stream / list_models for one Anthropic-family provider."""

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
        return await open_upstream(
            self.pool,
            "POST",
            MESSAGES_PATH,
            self._headers,
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

    async def list_models(self) -> list[str]:
        """Every page of `GET /v1/models` ({data: [{id, ...}], has_more, last_id})."""
        slug = self.provider.slug
        ids: list[str] = []
        after: str | None = None
        for _ in range(_MAX_MODEL_PAGES):
            path = MODELS_PATH + "?limit=1000"
            if after:
                path += "&after_id=" + urls.query(after)
            resp = await open_upstream(
                self.pool,
                "GET",
                path,
                self._headers,
                b"",
                slug,
                anthropic_response.upstream_error_message,
            )
            data = await read_body(resp, slug)
            try:
                page = orjson.loads(data)
                ids.extend(str(m["id"]) for m in page["data"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise malformed(slug, "model list") from None
            after = page.get("last_id")
            if page.get("has_more") is not True or not after:
                break
        return ids
