"""Load balancing: the order in which a request tries the providers that serve its model.

After the failover policy has fixed which providers may serve a request (`failover.py`), the
balancer orders them. An explicit `order` in the request's (or the key's) `provider`
preferences is kept as given. Otherwise:

- `sort: "price"` — cost-optimal: the cheapest first among providers meeting the floors
  (recent success rate ≥ `healthy_rate`, and p50 latency ≤ `max_latency_ms` when the
  preferences set one); then those only too slow, then the failing ones, each cheapest first.
- `sort: "latency"` — lowest current p50 latency first (measured providers before unmeasured).
- `sort: "throughput"` — highest output tokens/s first (measured before unmeasured).
- no sort — health-weighted: the chain's order, except that when the first provider's recent
  success rate is below `healthy_rate` (over at least MIN_SAMPLES attempts) the healthy
  providers are promoted ahead of it; and a model with a traffic split (`[split]` in
  `failover.toml`, e.g. 70/30) sends each request first to a provider drawn by weight, so
  every provider of the split keeps being measured.

Everything here reads this worker's passive health window (`reliability/passive_health.py`)
and the route prices; it does no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gatewayz.billing.pricing import Price
from gatewayz.reliability.passive_health import MIN_SAMPLES, PassiveHealth, Summary
from gatewayz.routing.resolve import Route


@dataclass(frozen=True, slots=True)
class Preferences:
    """How to order a request's providers (from its `provider` object or its key's defaults)."""

    sort: str | None = None
    max_latency_ms: float | None = None
    ordered: bool = False  # an explicit `order` was given: keep it


class Balancer:
    def __init__(
        self,
        health: PassiveHealth,
        splits: Mapping[str, Mapping[str, float]],
        *,
        healthy_rate: float = 0.9,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.health = health
        self.splits = splits
        self.healthy_rate = healthy_rate
        self.rng = rng

    def order(
        self,
        routes: tuple[Route, ...],
        canonical: str,
        prefs: Preferences,
        prices: Mapping[str, Price],
    ) -> tuple[Route, ...]:
        if len(routes) < 2 or prefs.ordered:
            return routes
        stats = [self._summary(r) for r in routes]
        if prefs.sort == "price":
            return self._by_price(routes, stats, prices, prefs.max_latency_ms)
        if prefs.sort == "latency":
            return _by(routes, [s.latency_p50_ms if s else None for s in stats])
        if prefs.sort == "throughput":
            return _by(routes, [_neg(s.tokens_per_s) if s else None for s in stats])
        routes = self._promote_healthy(routes, stats)
        return self._split(routes, canonical)

    def _summary(self, route: Route) -> Summary | None:
        return self.health.summary(route.provider.slug, route.native_id)

    def _healthy(self, s: Summary | None) -> bool:
        return s is None or s.attempts < MIN_SAMPLES or s.success_rate >= self.healthy_rate

    def _promote_healthy(
        self, routes: tuple[Route, ...], stats: list[Summary | None]
    ) -> tuple[Route, ...]:
        if self._healthy(stats[0]):
            return routes
        healthy = [r for r, s in zip(routes, stats, strict=True) if self._healthy(s)]
        sick = sorted(
            (i for i, s in enumerate(stats) if not self._healthy(s)),
            key=lambda i: -stats[i].success_rate,  # type: ignore[union-attr]
        )
        return (*healthy, *(routes[i] for i in sick))

    def _split(self, routes: tuple[Route, ...], canonical: str) -> tuple[Route, ...]:
        weights = self.splits.get(canonical)
        if not weights:
            return routes
        # Only providers still at the front (healthy) take part; a demoted one is not drawn.
        pool = [
            (i, weights[r.provider.slug])
            for i, r in enumerate(routes)
            if r.provider.slug in weights and self._healthy(self._summary(r))
        ]
        total = sum(w for _, w in pool)
        if total <= 0:
            return routes
        x = self.rng() * total
        for i, w in pool:
            x -= w
            if x < 0:
                return (routes[i], *routes[:i], *routes[i + 1 :])
        return routes

    def _by_price(
        self,
        routes: tuple[Route, ...],
        stats: list[Summary | None],
        prices: Mapping[str, Price],
        max_latency_ms: float | None,
    ) -> tuple[Route, ...]:
        def key(i: int) -> tuple[bool, bool, float]:
            s = stats[i]
            price = prices.get(routes[i].provider.slug)
            unit = float(price.prompt + price.completion) if price else float("inf")
            slow = (
                max_latency_ms is not None
                and s is not None
                and s.latency_p50_ms is not None
                and s.latency_p50_ms > max_latency_ms
            )
            return (not self._healthy(s), slow, unit)

        return tuple(routes[i] for i in sorted(range(len(routes)), key=key))


def _by(routes: tuple[Route, ...], values: list[float | None]) -> tuple[Route, ...]:
    """Ascending by value; routes without one keep their order after the measured ones."""
    order = sorted(
        range(len(routes)),
        key=lambda i: (values[i] is None, values[i] if values[i] is not None else 0.0),
    )
    return tuple(routes[i] for i in order)


def _neg(value: float | None) -> float | None:
    return None if value is None else -value
