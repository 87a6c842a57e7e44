"""Plan tiers and trial terms, loaded once from plans.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

PLANS_FILE = Path(__file__).with_name("plans.toml")


@dataclass(frozen=True, slots=True)
class Tier:
    slug: str
    name: str
    rpm: int
    tokens_per_day: int
    tokens_per_month: int


@dataclass(frozen=True, slots=True)
class TrialTerms:
    plan: str
    tier_label: str
    days: int
    credits_usd: Decimal
    max_tokens: int
    max_requests: int


@dataclass(frozen=True, slots=True)
class Plans:
    tiers: dict[str, Tier]
    trial: TrialTerms
    anonymous_rpm: int

    def tier(self, plan: str) -> Tier:
        """The tier of a plan name; unknown plans get the trial tier (the most limited)."""
        return self.tiers.get(plan, self.tiers["trial"])


@cache
def load_plans(path: Path = PLANS_FILE) -> Plans:
    with path.open("rb") as f:
        data = tomllib.load(f)
    tiers = {slug: Tier(slug=slug, **t) for slug, t in data["tiers"].items()}
    t = data["trial"]
    trial = TrialTerms(
        plan=t["plan"],
        tier_label=t["tier_label"],
        days=t["days"],
        credits_usd=Decimal(t["credits_usd"]),
        max_tokens=t["max_tokens"],
        max_requests=t["max_requests"],
    )
    return Plans(tiers=tiers, trial=trial, anonymous_rpm=data["anonymous"]["rpm"])
