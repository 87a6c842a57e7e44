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
sent. Nobody serving it is a 404 `model_not_found`, with the closest served names.

Step 4 (and a provider an override names that no rule found) is a guess. Once the catalog has
synced (`known`, routing/known.py), the guess stands only when that provider lists the model or
prices it, or when the routing data knows the name (an alias, or a canonical id of aliases.toml
or of a provider's `native_ids`): a name nobody lists, prices or aliases is never sent to an
aggregator to be billed at the default rate. Without a synced catalog (a fresh install, sync
off) the resolver cannot know, and the guesses stand as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from gatewayz.errors import InvalidRequest
from gatewayz.providers.provider import Provider
from gatewayz.providers.registry import Registry
from gatewayz.routing.detect import (
    Override,
    RoutingData,
    check_slugs,
    load_routing_data,
    parse_override,
)
from gatewayz.routing.explanation import GUESSES, RANK, Candidate, Explanation, Route, not_found
from gatewayz.routing.known import KnownModels, nothing_known
from gatewayz.settings import provider_env_var


@dataclass(slots=True)
class _Cached:
    base: Explanation  # detection without any override
    default: Explanation  # with the per-model override row, if any


@dataclass(slots=True)
class Resolver:
    registry: Registry
    data: RoutingData = field(default_factory=load_routing_data)
    cache_size: int = 10_000
    # The catalog's current knowledge (routing/known.py); a new object empties the cache.
    known: Callable[[], KnownModels | None] = nothing_known
    _cache: dict[str, _Cached] = field(default_factory=dict, init=False, repr=False)
    _view: KnownModels | None = field(default=None, init=False, repr=False)
    _orgs: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    _ids: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    _reverse: dict[str, dict[str, str]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        ps = self.registry.providers.values()
        # Organisations: what providers serve natively, and the `{org}/` of every canonical id
        # the data knows (so `nvidia/…` or `perplexity/…` are models, not provider pins).
        canon = [*self.data.aliases.values(), *(k for p in ps for k in p.native_ids)]
        self._orgs = frozenset(
            [*(o for p in ps for o in p.orgs), *(c.partition("/")[0] for c in canon if "/" in c)]
        )
        self._ids = frozenset([*canon, *self.data.overrides])
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
        view = self.known()
        if view is not self._view:  # the catalog synced (or prices changed): decide afresh
            self._cache.clear()
            self._view = view
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
        if self._checks(canonical, alias):
            backed = [c for c in cands if c.rule not in GUESSES or self._backed(c, canonical)]
            dropped = ", ".join(f"{c.provider.slug} ({c.rule})" for c in cands if c not in backed)
            if dropped:
                steps.append(
                    "catalog synced and the routing data does not know the name: dropped "
                    f"{dropped}, which neither list nor price it"
                )
                cands = backed
        return self._finish(model, canonical, alias, steps, cands)

    def _checks(self, canonical: str, alias: str | None) -> bool:
        """Whether guessed routes need the catalog's backing: it synced, and the name is no
        alias or id the routing data knows."""
        view = self._view
        if view is None or not view.synced or alias is not None:
            return False
        return _base(canonical) not in self._ids and canonical not in self._ids

    def _backed(self, c: Candidate, canonical: str) -> bool:
        """Whether the provider lists or prices the model (a `:variant` as its base model)."""
        view = self._view
        assert view is not None
        slug = c.provider.slug
        if view.offers(slug, canonical, c.native_id):
            return True
        base, native = _base(canonical), _base(c.native_id)
        return (base, native) != (canonical, c.native_id) and view.offers(slug, base, native)

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
        if self._checks(base.canonical, base.alias):
            # A provider named with no rule behind it is a guess like step 4's.
            forced = [c for c in chain if c.provider.slug not in detected]
            unbacked = [c for c in forced if not self._backed(c, base.canonical)]
            if unbacked:
                names = ", ".join(c.provider.slug for c in unbacked)
                steps.append(f"catalog synced: dropped {names}, which neither list nor price it")
                chain = [c for c in chain if c not in unbacked]
        return self._finish(
            base.model,
            base.canonical,
            base.alias,
            steps,
            chain,
            override=ov,
            suggestions=base.suggestions,
        )

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
        suggestions: tuple[str, ...] | None = None,
    ) -> Explanation:
        routes = tuple(Route(c.provider, c.native_id, model) for c in cands if c.served)
        if routes or exclusive:
            suggestions = ()
        elif suggestions is None:
            suggestions = () if self._view is None else self._view.suggest(model)
        err = (
            None
            if routes
            else not_found(
                model,
                canonical,
                alias,
                cands,
                exclusive,
                override,
                suggestions,
                self._checks(canonical, alias),
            )
        )
        return Explanation(
            model,
            canonical,
            alias,
            tuple(steps),
            tuple(cands),
            routes,
            err,
            exclusive,
            override,
            suggestions,
        )


def _base(model: str) -> str:
    """`org/model:variant` → `org/model` (a `:variant` is priced and listed as its base)."""
    head, sep, tail = model.partition("/")
    return f"{head}{sep}{tail.partition(':')[0]}" if sep else model
