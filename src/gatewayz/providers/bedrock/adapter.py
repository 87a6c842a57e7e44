"""The AWS Bedrock family: Converse and ConverseStream on bedrock-runtime, signed with SigV4;
embeddings and image generation through InvokeModel (`media.py`).

Credentials: the provider key is the access key id (AWS_ACCESS_KEY_ID); AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN (optional) and AWS_REGION come from the provider's env_vars. The region is
AWS_REGION, else the one in a `bedrock-runtime.{region}.amazonaws.com` base URL.

The model list does not call AWS: the model catalogue (ListFoundationModels) lives on another
host (`bedrock.{region}.amazonaws.com`, not bedrock-runtime) and lists models the account may
not have access to, so `models` returns the models this provider is configured with (native
ids from providers.toml and GATEWAYZ_PROVIDER_AWS_BEDROCK_MODELS), and the catalog does not
sync it (`no_model_list`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gatewayz.canonical.media import (
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
)
from gatewayz.canonical.types import ChatRequest, ChatResponse
from gatewayz.errors import GatewayError, UpstreamUnavailable
from gatewayz.providers import listing, urls
from gatewayz.providers.base import EventStream, event_stream, open_upstream, read_body
from gatewayz.providers.bedrock import codec, media, sigv4
from gatewayz.providers.bedrock.stream import ConverseStreamDecoder
from gatewayz.providers.listing import ModelListing
from gatewayz.providers.provider import Listed
from gatewayz.providers.transport import HttpPool, UpstreamResponse

if TYPE_CHECKING:
    from gatewayz.providers.provider import Provider

SERVICE = "bedrock"
EVENT_STREAM = b"application/vnd.amazon.eventstream"
_HOST_REGION = re.compile(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com")


def region_for(provider: Provider, host: str) -> str:
    region = provider.env.get("AWS_REGION")
    if region:
        return region
    m = _HOST_REGION.search(host)
    return m.group(1) if m else "us-east-1"


class Adapter(ModelListing):
    """send / stream / embed / generate_images / models for one Bedrock account and region."""

    family = "bedrock"
    no_model_list = (
        "ListFoundationModels is on another host and lists models the account may not be "
        "granted: offers come from the pricing data and configuration"
    )

    def __init__(self, provider: Provider, pool: HttpPool) -> None:
        self.provider = provider
        self.pool = pool
        env = provider.env
        self.region = region_for(provider, pool.host)
        self._creds = sigv4.Credentials(
            provider.api_key or "",
            env.get("AWS_SECRET_ACCESS_KEY", ""),
            env.get("AWS_SESSION_TOKEN") or None,
        )
        self._host = pool.host_header.decode()
        self._extra = [(b"user-agent", b"gatewayz/0.1")] + [
            (k.lower().encode(), v.encode()) for k, v in provider.headers.items()
        ]

    def signed_headers(self, path: str, body: bytes, accept: str) -> list[tuple[bytes, bytes]]:
        """The request headers for `path` (as passed to the pool), SigV4-signed."""
        if not self._creds.secret_key:
            raise UpstreamUnavailable(
                f"provider {self.provider.slug} is not usable: set AWS_SECRET_ACCESS_KEY",
                provider=self.provider.slug,
            )
        own = [("content-type", "application/json"), ("accept", accept)]
        added = sigv4.sign(
            self._creds,
            self.region,
            SERVICE,
            "POST",
            self._host,
            self.pool.base_path + path,
            own,
            body,
        )
        return [(k.encode(), v.encode()) for k, v in own + added] + self._extra

    async def _open(self, native_model: str, req: ChatRequest, stream: bool) -> UpstreamResponse:
        slug = self.provider.slug
        path = codec.model_path(native_model, stream)
        body = codec.render_request(req, native_model)
        accept = EVENT_STREAM.decode() if stream else "application/json"
        headers = self.signed_headers(path, body, accept)
        return await open_upstream(
            self.pool, "POST", path, headers, body, slug, codec.error_message, self._map_error
        )

    def _map_error(self, resp: UpstreamResponse, detail: bytes) -> GatewayError:
        """Bedrock names the error in the x-amzn-ErrorType header as much as in the body."""
        kind = codec.error_type((resp.header(b"x-amzn-errortype") or b"").decode())
        retry_after = resp.header(b"retry-after")
        return codec.upstream_error(
            resp.status,
            detail,
            kind,
            self.provider.slug,
            retry_after.decode() if retry_after else None,
        )

    async def send(self, req: ChatRequest, native_model: str) -> ChatResponse:
        slug = self.provider.slug
        resp = await self._open(native_model, req, stream=False)
        request_id = resp.header(b"x-amzn-requestid")
        data = await read_body(resp, slug)
        return codec.parse_response(
            data, slug, native_model, request_id.decode() if request_id else None
        )

    async def stream(self, req: ChatRequest, native_model: str) -> EventStream:
        slug = self.provider.slug
        resp = await self._open(native_model, req, stream=True)
        return await event_stream(resp, slug, ConverseStreamDecoder(slug), EVENT_STREAM)

    async def invoke(self, native_model: str, body: bytes) -> tuple[bytes, int | None]:
        """InvokeModel (`POST /model/{modelId}/invoke`) with the model's native JSON body: the
        answer's body, and the input tokens Bedrock reports in a header (None: not said)."""
        slug = self.provider.slug
        path = f"/model/{urls.segment(native_model)}/invoke"
        headers = self.signed_headers(path, body, "application/json")
        resp = await open_upstream(
            self.pool, "POST", path, headers, body, slug, codec.error_message, self._map_error
        )
        tokens = resp.header(b"x-amzn-bedrock-input-token-count")
        data = await read_body(resp, slug)
        return data, int(tokens) if tokens is not None and tokens.isdigit() else None

    async def embed(self, req: EmbeddingRequest, native_model: str) -> EmbeddingResponse:
        return await media.embed(self.invoke, req, native_model, self.provider.slug)

    async def generate_images(self, req: ImageRequest, native_model: str) -> ImageResponse:
        return await media.generate_images(self.invoke, req, native_model, self.provider.slug)

    async def models(self, timeout_s: float | None = None) -> list[Listed]:
        return listing.configured(self.provider)
