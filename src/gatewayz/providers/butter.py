"""The external cache layer: a Butter-compatible caching proxy (butter.dev) in front of
OpenAI-compatible providers.

On the wire, as Butter documents it: the provider's OpenAI-style requests go to Butter's base URL
(`https://proxy.butter.dev/v1` + `/chat/completions`) instead of the provider's, unchanged,
with the provider's own key still in `Authorization: Bearer …` (Butter forwards misses to the
provider with it) and Butter's key in `Butter-Auth: Bearer …`.

Enabled by `GATEWAYZ_BUTTER_API_KEY`, for the providers named in `GATEWAYZ_BUTTER_PROVIDERS`
(OpenAI-compatible only; default `openai`, the upstream Butter's documentation shows). Butter is
one more way to reach such a provider: the provider gets a `proxy` adapter, and a request's
candidate routes try the provider through Butter first and directly next
(`routing.explanation.Route.via`), under the one failover wrapper's rules — Butter unreachable or
failing (5xx, its own 401…) is a failed attempt like any other, with its own breaker and passive
health, and the provider answers directly; a stream that already started cannot be moved.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from gatewayz.providers import openai
from gatewayz.providers.transport import HttpPool
from gatewayz.settings import ConfigError, Settings

if TYPE_CHECKING:
    from gatewayz.providers.provider import Provider

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


def proxy_adapter(provider: Provider, settings: Settings) -> openai.Adapter:
    """An adapter reaching `provider` through Butter (its own connection pool)."""
    assert settings.butter_api_key is not None
    key = settings.butter_api_key.get_secret_value()
    via = replace(
        provider,
        base_url=settings.butter_base_url,
        headers={**provider.headers, AUTH_HEADER: f"Bearer {key}"},
    )
    pool = HttpPool(
        settings.butter_base_url,
        max_connections=settings.upstream_max_connections,
        connect_timeout=settings.upstream_connect_timeout_s,
        read_timeout=settings.upstream_read_timeout_s,
    )
    return openai.Adapter(via, pool)
