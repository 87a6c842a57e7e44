"""What resolution found (resolve.py): the routes, every candidate provider with the rule that
found it, the steps, and the 404 when nothing served takes the name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gatewayz.errors import GatewayError, ModelNotFound
from gatewayz.providers.provider import Adapter, Provider
from gatewayz.routing.detect import Override

# Rule → detection priority (lower first).
RANK = {
    "override": 0,
    "pinned": 1,
    "format": 1,
    "configured": 2,
    "native_ids": 3,
    "native_id": 3,
    "pattern": 3,
    "org": 4,
    "aggregator": 5,
}
# Rules that guess: checked against a synced catalog (see resolve.py).
GUESSES = frozenset({"org", "aggregator"})


@dataclass(slots=True, frozen=True)
class Route:
    provider: Provider
    native_id: str
    model: str  # the id reported back to the client
    via: str | None = None  # reached through the provider's proxy (`Provider.proxy_name`)

    @property
    def adapter(self) -> Adapter | None:
        return self.provider.proxy if self.via else self.provider.adapter

    @property
    def key(self) -> str:
        """Who answers, for circuit breakers and passive health: the provider, or the way to
        it through a proxy (`openai@butter`), which fails on its own."""
        slug = self.provider.slug
        return f"{slug}@{self.via}" if self.via else slug


def through_proxies(routes: Iterable[Route]) -> tuple[Route, ...]:
    """Each route of a provider that has a proxy, tried through the proxy first, then directly."""
    out: list[Route] = []
    for r in routes:
        if r.provider.proxy is not None and r.via is None:
            out.append(Route(r.provider, r.native_id, r.model, r.provider.proxy_name))
        out.append(r)
    return tuple(out)


@dataclass(slots=True, frozen=True)
class Candidate:
    """A provider detection found, served or not."""

    provider: Provider
    native_id: str
    rule: str  # a RANK key
    detail: str

    @property
    def served(self) -> bool:
        return self.provider.enabled


@dataclass(slots=True, frozen=True)
class Explanation:
    model: str  # as the client sent it
    canonical: str
    alias: str | None  # the canonical id, when `model` was an alias
    steps: tuple[str, ...]
    candidates: tuple[Candidate, ...]  # the provider chain, served or not
    routes: tuple[Route, ...]  # the served ones, in order
    error: GatewayError | None = None
    exclusive: bool = False  # the name itself fixes the provider
    override: Override | None = None
    suggestions: tuple[str, ...] = ()  # the closest served names, when nothing serves it

    def to_dict(self) -> dict[str, Any]:
        err = self.error
        return {
            "model": self.model,
            "alias": self.alias,
            "canonical": self.canonical,
            "override": self.override.describe() if self.override else None,
            "steps": list(self.steps),
            "providers": [
                {
                    "provider": c.provider.slug,
                    "name": c.provider.name,
                    "served": c.served,
                    "status": c.provider.reason,
                    "native_id": c.native_id,
                    "rule": c.rule,
                    "detail": c.detail,
                }
                for c in self.candidates
            ],
            "route": [r.provider.slug for r in self.routes],
            "suggestions": list(self.suggestions),
            "error": None
            if err is None
            else {"status": err.status, "code": err.code, "message": err.message},
        }


def not_found(
    model: str,
    canonical: str,
    alias: str | None,
    cands: list[Candidate],
    exclusive: bool,
    override: Override | None,
    suggestions: tuple[str, ...],
    unknown: bool,
) -> ModelNotFound:
    """The 404 for a name no served provider takes (`unknown`: a synced catalog says no served
    provider lists, prices or aliases it)."""
    if exclusive or (override is not None and len(cands) == 1 and not override.allow_fallbacks):
        (c,) = cands
        how = {
            "pinned": "names the provider",
            "format": "has the id format of the provider",
        }.get(c.rule, "is pinned by the request's `provider` field to the provider")
        return ModelNotFound(
            f"The model '{model}' {how} '{c.provider.slug}', which is not served: "
            f"{c.provider.reason}.",
            param="model",
        )
    if unknown:
        msg = f"The model '{model}' does not exist: no served provider lists, prices or aliases it."
    else:
        msg = f"The model '{model}' does not exist or no configured provider serves it."
    if alias is not None:
        msg = f"{msg[:-1]} ('{model}' is an alias of '{canonical}')."
    known = [c.provider.slug for c in cands if c.rule != "aggregator"][:5]
    if known:
        msg += f" Providers that serve it, none configured: {', '.join(known)}."
    if override is not None:
        allowed = ", ".join(c.provider.slug for c in cands) or "none"
        msg += f" The provider override allowed: {allowed}."
    if suggestions:
        msg += f" Did you mean: {', '.join(suggestions)}?"
    return ModelNotFound(msg, param="model", suggestions=suggestions)
