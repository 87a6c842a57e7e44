"""The routers' decision: from the prompt's tier (the classifier) and the served, eligible
candidates (each with its price and latency), the models to try, best first, and why.

General (`router:general:*`), with the prompt's tier as a quality floor (a model of a lower
tier is used only when no model at or above it is served):
  quality  → the highest benchmark score;
  cost     → the cheapest blended price per token among models at or above the floor;
  latency  → the lowest P50 (live from passive health, else the tier's prior) at or above it;
  balanced → the best blend at or above it: 0.5 × score + 0.3 × cheapness + 0.2 × speed, each
             scaled 0–1 among the candidates (price and P50 on a log scale).
Code (`router:code:*`): the models of the prompt's tier, by SWE-bench score (`auto`) or price
(`price`); `quality` one tier up; `agentic` the top tier. When a tier has no served model the
next tier up serves it, never a weaker one while a stronger one is there.

Prices are blended as (3 × prompt + completion) / 4 per million tokens, the usual 3:1 blend."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gatewayz.billing.pricing import Price
from gatewayz.routing.smart.data import Candidate
from gatewayz.routing.smart.modes import RouterName

TOP_TIER = 4
BALANCE = (0.5, 0.3, 0.2)  # score, cheapness, speed


def blended(price: Price) -> float:
    """USD per 1M tokens, three prompt tokens to one completion token."""
    return float(price.prompt * 3 + price.completion) / 4


@dataclass(frozen=True, slots=True)
class Option:
    """A candidate the request may use, with what ranks it."""

    candidate: Candidate
    price: float  # blended USD per 1M tokens
    p50_ms: float
    live: bool = False  # p50 measured (passive health), not the tier's prior

    @property
    def model(self) -> str:
        return self.candidate.model

    @property
    def tier(self) -> int:
        return self.candidate.tier

    @property
    def score(self) -> float:
        return self.candidate.score


@dataclass(frozen=True, slots=True)
class Decision:
    name: RouterName
    tier: int  # the prompt's, as classified
    order: tuple[Option, ...]  # best first; the rest are the failover candidates
    reason: str

    @property
    def model(self) -> str:
        return self.order[0].model

    def header(self) -> str:
        """`X-Gatewayz-Route`: mode, model, reason and runner-up (ASCII, `;`-separated)."""
        runner_up = self.order[1].model if len(self.order) > 1 else "none"
        return (
            f"mode={self.name.kind}:{self.name.mode}; model={self.model}; "
            f"reason={self.reason}; runner_up={runner_up}"
        )


def decide(name: RouterName, tier: int, options: Sequence[Option]) -> Decision | None:
    """The ranked options for a router and a prompt of `tier`; None when there are none."""
    if not options:
        return None
    if name.kind == "code":
        order, why = _code(name.mode, tier, options)
    else:
        order, why = _general(name.mode, tier, options)
    return Decision(name, tier, tuple(order), f"tier {tier}, {why}")


def _general(mode: str, tier: int, options: Sequence[Option]) -> tuple[list[Option], str]:
    if mode == "quality":
        order = sorted(options, key=lambda o: (-o.score, o.price, o.model))
        return order, f"highest score ({order[0].score:g})"
    fit = [o for o in options if o.tier >= tier]
    floor = f"at tier {tier}+" if fit else f"none at tier {tier}+ served"
    pool = fit or list(options)
    if mode == "cost":
        order = sorted(pool, key=lambda o: (o.price, -o.score, o.model))
        return order, f"cheapest {floor} (${order[0].price:.4g}/M tokens)"
    if mode == "latency":
        order = sorted(pool, key=lambda o: (o.p50_ms, o.price, o.model))
        seen = "live" if order[0].live else "prior"
        return order, f"lowest p50 {floor} ({order[0].p50_ms:.0f} ms {seen})"
    blend = _blend(pool)
    order = sorted(pool, key=lambda o: (-blend[o.model], o.model))
    return order, f"best blend {floor} ({blend[order[0].model]:.2f})"


def _code(mode: str, tier: int, options: Sequence[Option]) -> tuple[list[Option], str]:
    target = {"quality": min(tier + 1, TOP_TIER), "agentic": TOP_TIER}.get(mode, tier)
    cheap = mode == "price"
    key: Callable[[Option], tuple[float, ...]] = (
        (lambda o: (o.price, -o.score)) if cheap else (lambda o: (-o.score, o.price))
    )
    up = sorted((o for o in options if o.tier >= target), key=lambda o: (o.tier, *key(o)))
    # No model at or above the target served: the strongest there is, strongest first.
    order = up or sorted(options, key=lambda o: (-o.tier, *key(o)))
    first = order[0]
    how = f"cheapest at tier {first.tier}" if cheap else f"best SWE-bench at tier {first.tier}"
    if first.tier != target:
        how += f" (none at tier {target} served)"
    return order, f"{how} ({first.score:g}%)"


def _blend(options: Sequence[Option]) -> dict[str, float]:
    def scaled(values: dict[str, float]) -> dict[str, float]:
        lo, hi = min(values.values()), max(values.values())
        return {k: (v - lo) / (hi - lo) if hi > lo else 1.0 for k, v in values.items()}

    quality = scaled({o.model: o.score for o in options})
    cheap = scaled({o.model: -math.log(max(o.price, 1e-6)) for o in options})
    fast = scaled({o.model: -math.log(max(o.p50_ms, 1.0)) for o in options})
    wq, wc, wf = BALANCE
    return {m: wq * quality[m] + wc * cheap[m] + wf * fast[m] for m in quality}
