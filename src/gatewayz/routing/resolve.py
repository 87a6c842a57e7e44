"""Which providers serve a model name, and under which native id (SPEC §3, CM-3).

Detection, highest priority first:
  0. explicit override: the request field `provider` (a slug, or `{order, only, ignore,
     allow_fallbacks}`), else a per-model override row from routing/aliases.toml;
  1. the name fixes its provider: `{provider}/{native}` pins it (`groq/llama-3.3-70b-versatile`,
     unless the prefix is also a model organisation, as `openai/` is), or a format rule matches
     (`accounts/fireworks/models/…`, `@cf/…`, Bedrock ids): that provider only, id as given;
  2. names configured for a provider (GATEWAYZ_PROVIDER_<SLUG>_MODELS), never aliased;
  3. otherwise the alias table turns shorthand into the canonical `{org}/{model}` id, then the
     mapping tables: providers whose `native_ids` list it (or use it as a native id) or whose
     `model_patterns` match it;
  4. org-prefix fallback: providers serving the `{org}/` natively, then aggregators (whose
     `native_ids` only rename).
Within a step, the organisation's own provider comes first, then providers.toml order. Only
enabled providers become routes; the model reported back to the client is always the name it
sent. Nobody serving it is a 404 `model_not_found`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from gatewayz.errors import GatewayError, InvalidRequest, ModelNotFound
from gatewayz.providers.registry import Provider, Registry
from gatewayz.routing.detect import (
    Override,
    RoutingData,
    check_slugs,
    load_routing_data,
    parse_override,
)
from gatewayz.settings import provider_env_var

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


@dataclass(slots=True, frozen=True)
class Route:
    provider: Provider
    native_id: str
    model: str  # the id reported back to the client


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
            "error": None
            if err is None
            else {"status": err.status, "code": err.code, "message": err.message},
        }


@dataclass(slots=True)
class _Cached:
    base: Explanation  # detection without any override
    default: Explanation  # with the per-model override row, if any


@dataclass(slots=True)
class Resolver:
    registry: Registry
    data: RoutingData = field(default_factory=load_routing_data)
    cache_size: int = 10_000
    _cache: dict[str, _Cached] = field(default_factory=dict, init=False, repr=False)
    _orgs: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    _reverse: dict[str, dict[str, str]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        ps = self.registry.providers.values()
        # Organisations: what providers serve natively, and the `{org}/` of every canonical id
        # the data knows (so `nvidia/…` or `perplexity/…` are models, not provider pins).
        canon = [*self.data.aliases.values(), *(k for p in ps for k in p.native_ids)]
        self._orgs = frozenset(
            [*(o for p in ps for o in p.orgs), *(c.partition("/")[0] for c in canon if "/" in c)]
        )
        self._reverse = {p.slug: {v: k for k, v in p.native_ids.items() if v != k} for p in ps}

    # ------------------------------------------------------------------ public API
    def resolve(
        self, model: str, provider: str | dict[str, Any] | None = None
    ) -> tuple[Route, ...]:
        """The served routes for `model`, best first; raises ModelNotFound / InvalidRequest."""
        exp = self._cached(model).default if provider is None else self.explain(model, provider)
        if exp.error is not None:
            raise exp.error
        return exp.routes

    def explain(
        self, model: str, provider: str | dict[str, Any] | Override | None = None
    ) -> Explanation:
        """Every step of the resolution of `model` (with an optional explicit override, raw
        or parsed)."""
        cached = self._cached(model)
        override = provider if isinstance(provider, Override) else parse_override(provider)
        if override is None:
            return cached.default
        check_slugs(override, self.registry.providers)
        return self._apply(cached.base, override)

    # ------------------------------------------------------------------ detection
    def _cached(self, model: str) -> _Cached:
        hit = self._cache.get(model)
        if hit is None:
            base = self._detect(model)
            row = self.data.overrides.get(base.canonical)
            hit = _Cached(base, base if row is None else self._apply(base, row))
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[model] = hit
        return hit

    def _detect(self, model: str) -> Explanation:
        providers = self.registry.providers
        steps: list[str] = []
        head, sep, rest = model.partition("/")
        pinned = providers.get(head) if sep and head not in self._orgs else None
        if pinned is not None:
            native = model if pinned.slug == "simulated" else rest
            steps.append(f"'{head}/' names the provider {head}: it alone, native id '{native}'")
            cand = Candidate(pinned, native, "pinned", f"'{head}/' prefix names this provider")
            return self._finish(model, model, None, steps, [cand], exclusive=True)
        rule = self.data.format_rule(model)
        if rule is not None and rule.provider in providers:
            steps.append(f"format rule {rule.pattern} → {rule.provider}: it alone, id as given")
            cand = Candidate(
                providers[rule.provider], model, "format", f"format rule {rule.pattern}"
            )
            return self._finish(model, model, None, steps, [cand], exclusive=True)

        configured = [p for p in providers.values() if model in p.models]
        alias = None if configured else self.data.alias(model)
        if configured:
            names = ", ".join(p.slug for p in configured)
            steps.append(f"'{model}' is a model name configured for {names}: not aliased")
        elif alias is not None:
            steps.append(f"alias '{model}' → '{alias}'")
        else:
            steps.append(f"no alias for '{model}': used as given")
        canonical = alias or model
        cands = self._candidates(model, canonical, configured)
        if cands:
            steps.append(
                "providers by rule: " + ", ".join(f"{c.provider.slug} ({c.rule})" for c in cands)
            )
        else:
            steps.append("no provider rule matches")
        return self._finish(model, canonical, alias, steps, cands)

    def _candidates(
        self, model: str, canonical: str, configured: list[Provider]
    ) -> list[Candidate]:
        org, sep, tail = canonical.partition("/")
        variant = sep and ":" in tail
        found: list[tuple[int, bool, int, Candidate]] = []
        for i, p in enumerate(self.registry.providers.values()):
            options: list[Candidate] = []
            if p in configured:
                env = provider_env_var(p.slug, "MODELS")
                options.append(Candidate(p, model, "configured", f"configured ({env})"))
            if canonical in p.native_ids and not p.serves_any:
                native = p.native_ids[canonical]
                options.append(Candidate(p, native, "native_ids", "listed in its native_ids"))
            if canonical in self._reverse[p.slug] and not p.serves_any:
                was = self._reverse[p.slug][canonical]
                options.append(Candidate(p, canonical, "native_id", f"its native id for '{was}'"))
            pattern = next((x for x in p.model_patterns if fnmatchcase(canonical, x)), None)
            if pattern is not None:
                options.append(Candidate(p, canonical, "pattern", f"model pattern {pattern}"))
            if sep and org in p.orgs and not variant:
                options.append(Candidate(p, tail, "org", f"serves '{org}/' models natively"))
            if sep and p.serves_any:
                # An aggregator's native_ids only rename; they do not promote it.
                native = p.native_ids.get(canonical, canonical)
                options.append(Candidate(p, native, "aggregator", "serves any {org}/{model}"))
            if options:
                best = min(options, key=lambda c: RANK[c.rule])
                found.append((RANK[best.rule], org not in p.orgs, i, best))
        found.sort(key=lambda t: t[:3])
        return [c for *_, c in found]

    # ------------------------------------------------------------------ overrides
    def _apply(self, base: Explanation, ov: Override) -> Explanation:
        steps = [*base.steps, f"explicit override ({ov.describe()})"]
        detected = {c.provider.slug: c for c in base.candidates}
        if base.exclusive:
            (only_one,) = base.candidates
            slug = only_one.provider.slug
            allowed = slug in ov.order or (
                ov.allow_fallbacks
                and (ov.only is None or slug in ov.only)
                and slug not in ov.ignore
            )
            if not allowed:
                err = InvalidRequest(
                    f"The model '{base.model}' can only be served by '{slug}' "
                    f"({only_one.detail}), which the provider override excludes.",
                    param="provider",
                )
                return replace(base, steps=tuple(steps), routes=(), error=err, override=ov)
            return replace(base, steps=tuple(steps), override=ov)
        chain = [self._named(detected.get(s), s, base.canonical) for s in ov.order]
        if ov.allow_fallbacks:
            rest = [c for c in base.candidates if c.provider.slug not in ov.order]
            if ov.only is not None:
                rest = [c for c in rest if c.provider.slug in ov.only]
                rest += [
                    self._named(None, s, base.canonical)
                    for s in ov.only
                    if s not in detected and s not in ov.order
                ]
            chain += [c for c in rest if c.provider.slug not in ov.ignore]
        return self._finish(base.model, base.canonical, base.alias, steps, chain, override=ov)

    def _named(self, found: Candidate | None, slug: str, canonical: str) -> Candidate:
        """A provider the override names: detected, or forced with its best-guess native id."""
        if found is not None:
            return Candidate(found.provider, found.native_id, "override", f"named; {found.detail}")
        p = self.registry.providers[slug]
        return Candidate(p, p.native_id(canonical), "override", "named; no detection rule matched")

    # ------------------------------------------------------------------ result
    def _finish(
        self,
        model: str,
        canonical: str,
        alias: str | None,
        steps: list[str],
        cands: list[Candidate],
        *,
        exclusive: bool = False,
        override: Override | None = None,
    ) -> Explanation:
        routes = tuple(Route(c.provider, c.native_id, model) for c in cands if c.served)
        err = (
            None if routes else self._not_found(model, canonical, alias, cands, exclusive, override)
        )
        return Explanation(
            model, canonical, alias, tuple(steps), tuple(cands), routes, err, exclusive, override
        )

    @staticmethod
    def _not_found(
        model: str,
        canonical: str,
        alias: str | None,
        cands: list[Candidate],
        exclusive: bool,
        override: Override | None,
    ) -> ModelNotFound:
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
        msg = f"The model '{model}' does not exist or no configured provider serves it."
        if alias is not None:
            msg = f"{msg[:-1]} ('{model}' is an alias of '{canonical}')."
        known = [c.provider.slug for c in cands if c.rule != "aggregator"][:5]
        if known:
            msg += f" Providers that serve it, none configured: {', '.join(known)}."
        if override is not None:
            allowed = ", ".join(c.provider.slug for c in cands) or "none"
            msg += f" The provider override allowed: {allowed}."
        return ModelNotFound(msg, param="model")
