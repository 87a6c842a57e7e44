"""Failover policy as data (`failover.toml`): the default chain and the model-aware rules.

`FailoverPolicy.order(routes, canonical)` turns the resolver's candidates into the chain a
request tries: `openai/*` and `anthropic/*` keep only their maker, then the fallback aggregator;
every other model keeps all of its providers. The providers of the default chain are put in the
chain's order (most reliable first) among themselves; the others — the model's maker, a
configured or self-hosted provider — keep the place the resolver gave them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gatewayz.routing.resolve import Route

FAILOVER_FILE = Path(__file__).with_name("failover.toml")


@dataclass(frozen=True, slots=True)
class FailoverPolicy:
    chain: tuple[str, ...]
    first_party_only: frozenset[str]
    fallback: str
    # Traffic splits: canonical model id -> {provider slug: weight} (routing/balance.py).
    splits: dict[str, dict[str, float]]

    def order(self, routes: tuple[Route, ...], canonical: str) -> tuple[Route, ...]:
        org = canonical.partition("/")[0]
        if org in self.first_party_only:
            allowed = (org, self.fallback)
            routes = tuple(r for r in routes if r.provider.slug in allowed) or routes[:1]
        rank = {slug: i for i, slug in enumerate(self.chain)}
        slots = [i for i, r in enumerate(routes) if r.provider.slug in rank]
        chained = sorted((routes[i] for i in slots), key=lambda r: rank[r.provider.slug])
        ordered = list(routes)
        for i, route in zip(slots, chained, strict=True):
            ordered[i] = route
        return tuple(ordered)


@cache
def load_failover_policy(path: Path = FAILOVER_FILE) -> FailoverPolicy:
    with path.open("rb") as f:
        raw = tomllib.load(f)
    return FailoverPolicy(
        chain=tuple(raw["chain"]),
        first_party_only=frozenset(raw["first_party_only"]),
        fallback=raw["fallback"],
        splits={
            model: {slug: float(w) for slug, w in weights.items()}
            for model, weights in raw.get("split", {}).items()
        },
    )
