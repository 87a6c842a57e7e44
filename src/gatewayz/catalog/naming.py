"""A provider's native model id → the catalog's model id: a canonical `{org}/{model}` id that,
sent by a client, reaches that provider with that native id.

The candidates, best first: the canonical id the provider's `native_ids` map to this native id;
`{org}/{native}` (or its alias) for each organisation the provider serves natively; the native
id itself (or its alias) when it already reads `{org}/{model}` (aggregators list them so; not a
provider's own id format such as `accounts/fireworks/models/…`); and last `{provider}/{native}`,
which pins the provider. Each candidate is checked with the resolver:
the first whose resolution offers this provider with exactly this native id wins. None when no
candidate routes there (a request could not reach the offer, so it is no catalog entry).
"""

from __future__ import annotations

from gatewayz.providers.provider import Provider
from gatewayz.providers.registry import Registry
from gatewayz.routing.resolve import Resolver

MAX_CACHED = 200_000


class Naming:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.resolver = Resolver(registry, cache_size=50_000)
        self._reverse = {
            p.slug: {native: canonical for canonical, native in p.native_ids.items()}
            for p in registry.providers.values()
        }
        self._ids: dict[tuple[str, str], str | None] = {}

    def model_id(self, provider: Provider, native_id: str) -> str | None:
        key = (provider.slug, native_id)
        if key in self._ids:
            return self._ids[key]
        candidates = self.candidates(provider, native_id)
        found = next((c for c in candidates if self._routes(c, provider, native_id)), None)
        if len(self._ids) >= MAX_CACHED:
            self._ids.clear()
        self._ids[key] = found
        return found

    def native_id(self, provider: Provider, model_id: str) -> str | None:
        """The native id a request for `model_id` sends to `provider` (None: not a route)."""
        exp = self.resolver.explain(model_id)
        return next((c.native_id for c in exp.candidates if c.provider is provider), None)

    def candidates(self, provider: Provider, native_id: str) -> list[str]:
        alias = self.resolver.data.alias
        out: list[str] = []
        mapped = self._reverse[provider.slug].get(native_id)
        if mapped is not None:
            out.append(mapped)
        if "/" not in native_id:
            for org in provider.orgs:
                out.append(alias(f"{org}/{native_id}") or alias(native_id) or "")
                out.append(f"{org}/{native_id}")
        else:
            out.append(alias(native_id) or native_id)
        out.append(f"{provider.slug}/{native_id}")
        return [c for c in dict.fromkeys(out) if c and "/" in c]

    def _routes(self, model_id: str, provider: Provider, native_id: str) -> bool:
        exp = self.resolver.explain(model_id)
        if exp.exclusive and not model_id.startswith(f"{provider.slug}/"):
            return False  # a provider's own id format (`accounts/fireworks/…`): not `{org}/…`
        return any(c.provider is provider and c.native_id == native_id for c in exp.candidates)
