"""The fal family's adapter: fal's synchronous endpoint `POST https://fal.run/{app_id}` with
`Authorization: Key <FAL_KEY>`.

Chat goes to fal's LLM app `fal-ai/any-llm` (and `fal-ai/any-llm/stream`, an SSE stream whose
events carry the output so far), in the shape `codec.py` renders and reads. fal takes no tools,
images or documents here (a 400 says so) and reports no usage (the pipeline estimates it).
Images (`generate_images`, the images API) go to the image app the model names (e.g.
`fal-ai/flux/schnell`), in the shape `media.py` renders and reads; `generate_image` calls one
with fal's own parameters and returns fal's JSON as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from gatewayz.canonical.media import ImageRequest, ImageResponse
from gatewayz.canonical.types import ChatRequest, ChatResponse
from gatewayz.providers import listing
from gatewayz.providers.base import EventStream, event_stream, open_upstream, read_body
from gatewayz.providers.fal import media
from gatewayz.providers.fal.codec import (
    FalStreamDecoder,
    bad_upstream,
    error_message,
    output_limit,
    parse_response,
    render_request,
)
from gatewayz.providers.listing import ModelListing
from gatewayz.providers.provider import Listed
from gatewayz.providers.transport import HttpPool

if TYPE_CHECKING:
    from gatewayz.providers.provider import Provider

LLM_APP = "/fal-ai/any-llm"
LLM_STREAM_APP = "/fal-ai/any-llm/stream"


class Adapter(ModelListing):
    """send / stream / generate_images / models for fal (chat through fal-ai/any-llm)."""

    family = "fal"
    no_model_list = (
        "fal has no model list for its LLM app: offers come from the pricing data and configuration"
    )

    def __init__(self, provider: Provider, pool: HttpPool) -> None:
        self.provider = provider
        self.pool = pool
        headers = [(b"content-type", b"application/json"), (b"user-agent", b"gatewayz/0.1")]
        if provider.api_key:
            headers.append((b"authorization", b"Key " + provider.api_key.encode()))
        for k, v in provider.headers.items():
            headers.append((k.lower().encode(), v.encode()))
        self.headers = headers
        self._json = [*headers, (b"accept", b"application/json")]
        self._sse = [*headers, (b"accept", b"text/event-stream")]

    async def send(self, req: ChatRequest, native_model: str) -> ChatResponse:
        slug = self.provider.slug
        body = render_request(req, native_model)
        resp = await open_upstream(
            self.pool, "POST", LLM_APP, self._json, body, slug, error_message
        )
        return parse_response(await read_body(resp, slug), slug, output_limit(req))

    async def stream(self, req: ChatRequest, native_model: str) -> EventStream:
        slug = self.provider.slug
        body = render_request(req, native_model)
        resp = await open_upstream(
            self.pool, "POST", LLM_STREAM_APP, self._sse, body, slug, error_message
        )
        return await event_stream(resp, slug, FalStreamDecoder(slug, output_limit(req)))

    async def _post(self, path: str, body: bytes) -> bytes:
        slug = self.provider.slug
        resp = await open_upstream(self.pool, "POST", path, self._json, body, slug, error_message)
        return await read_body(resp, slug)

    async def generate_images(self, req: ImageRequest, native_model: str) -> ImageResponse:
        return await media.generate_images(self._post, req, native_model, self.provider.slug)

    async def models(self, timeout_s: float | None = None) -> list[Listed]:
        """fal has no model list for any-llm: the configured models and mapped native ids."""
        return listing.configured(self.provider)


async def generate_image(
    adapter: Adapter, model: str, prompt: str, **params: Any
) -> dict[str, Any]:
    """Run the image app `model` (e.g. `fal-ai/flux/schnell`) and return fal's JSON
    (`{"images": [{"url", "width", "height", "content_type"}], "seed", ...}`)."""
    slug = adapter.provider.slug
    body = orjson.dumps({"prompt": prompt, **params})
    resp = await open_upstream(
        adapter.pool, "POST", "/" + model.strip("/"), adapter._json, body, slug, error_message
    )
    data = await read_body(resp, slug)
    try:
        raw = orjson.loads(data)
        if not isinstance(raw, dict) or not isinstance(raw.get("images"), list):
            raise TypeError("no images")
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise bad_upstream(slug, exc) from None
    return raw
