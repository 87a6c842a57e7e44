"""The external cache layer: a Butter-compatible caching proxy (butter.dev) in front of
OpenAI-compatible providers.

On the wire, as Butter documents it: the provider's OpenAI-style requests go to Butter's base URL
(`https://proxy.butter.dev/v1` + `/chat/completions`) instead of the provider's, unchanged,
with the provider's own key still in `Authorization: Bearer …` (Butter forwards misses to the
provider with it) and Butter's key in `Butter-Auth: Bearer …`.

Enabled by `GATEWAYZ_BUTTER_API_KEY`, for the providers named in `GATEWAYZ_BUTTER_PROVIDERS`
(OpenAI-compatible only; default `openai`, the upstream Butter's documentation shows). Butter is
a cache, so it degrades like one: when it cannot be reached or fails with a 5xx before answering,
the request goes to the provider directly (a stream that already started cannot be moved).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from gatewayz.canonical.types import ChatRequest, ChatResponse
from gatewayz.errors import GatewayError, UpstreamError, UpstreamUnavailable
from gatewayz.providers import openai
from gatewayz.providers.listing import Listed, ModelListing
from gatewayz.providers.transport import HttpPool
from gatewayz.settings import ConfigError, Settings

if TYPE_CHECKING:
    from gatewayz.providers.registry import Adapter, Provider

AUTH_HEADER = "Butter-Auth"


def routed_slugs(settings: Settings, families: dict[str, str]) -> frozenset[str]:
    """The providers sent through Butter (none without its key). `families` maps each known
    provider slug to its wire format; a slug that is unknown or not OpenAI-compatible is a
    configuration error."""
    if settings.butter_api_key is None:
        return frozenset()
    slugs = frozenset(s.strip() for s in settings.butter_providers.split(",") if s.strip())
    bad = sorted(s for s in slugs if families.get(s) != "openai")
    if bad:
        raise ConfigError(
            "GATEWAYZ_BUTTER_PROVIDERS: not OpenAI-compatible providers: " + ", ".join(bad)
        )
    return slugs


def butter_failed(err: GatewayError) -> bool:
    """Butter could not be reached, or failed (5xx) before answering."""
    if isinstance(err, UpstreamUnavailable):
        return True
    status = err.upstream_status
    return isinstance(err, UpstreamError) and status is not None and status >= 500


class _Pools:
    def __init__(self, *pools: HttpPool) -> None:
        self.pools = pools

    async def close(self) -> None:
        for pool in self.pools:
            await pool.close()


class ButterAdapter(ModelListing):
    """An OpenAI-compatible provider reached through Butter, directly when Butter fails (its
    model list is always read directly: Butter caches completions)."""

    family = "openai"

    def __init__(self, via_butter: Adapter, direct: Adapter, pools: _Pools) -> None:
        self.via_butter = via_butter
        self.direct = direct
        self.pool = pools  # closed with the registry

    async def send(self, req: ChatRequest, native_model: str) -> ChatResponse:
        try:
            return await self.via_butter.send(req, native_model)
        except GatewayError as err:
            if not butter_failed(err):
                raise
        return await self.direct.send(req, native_model)

    async def stream(self, req: ChatRequest, native_model: str) -> Any:
        try:
            return await self.via_butter.stream(req, native_model)
        except GatewayError as err:
            if not butter_failed(err):
                raise
        return await self.direct.stream(req, native_model)

    async def models(self, timeout_s: float | None = None) -> list[Listed]:
        return await self.direct.models(timeout_s)


def through_butter(provider: Provider, direct_pool: HttpPool, settings: Settings) -> ButterAdapter:
    """`provider`'s adapter with its requests sent through Butter."""
    assert settings.butter_api_key is not None
    key = settings.butter_api_key.get_secret_value()
    via = replace(
        provider,
        base_url=settings.butter_base_url,
        headers={**provider.headers, AUTH_HEADER: f"Bearer {key}"},
    )
    butter_pool = HttpPool(
        settings.butter_base_url,
        max_connections=settings.upstream_max_connections,
        connect_timeout=settings.upstream_connect_timeout_s,
        read_timeout=settings.upstream_read_timeout_s,
    )
    return ButterAdapter(
        openai.Adapter(via, butter_pool),
        openai.Adapter(provider, direct_pool),
        _Pools(butter_pool, direct_pool),
    )
