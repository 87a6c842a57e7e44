"""Plan tiers, trial terms, credit packs and the referral bonus, loaded once from plans.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

from gatewayz.money import usd_to_nanos

PLANS_FILE = Path(__file__).with_name("plans.toml")


@dataclass(frozen=True, slots=True)
class Tier:
    slug: str
    name: str
    rpm: int
    tokens_per_day: int
    tokens_per_month: int
    price_usd_month: Decimal
    monthly_allowance_usd: Decimal
    daily_spend_cap_usd: Decimal

    @property
    def self_serve(self) -> bool:
        """Sold by checkout (trial is free; enterprise is arranged by an administrator)."""
        return self.price_usd_month > 0

    @property
    def allowance_nanos(self) -> int:
        return usd_to_nanos(self.monthly_allowance_usd)

    @property
    def daily_cap_nanos(self) -> int:
        return usd_to_nanos(self.daily_spend_cap_usd)


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
    credit_packs_usd: tuple[Decimal, ...]
    referral_bonus_usd: Decimal

    def tier(self, plan: str) -> Tier:
        """The tier of a plan name; unknown plans get the trial tier (the most limited)."""
        return self.tiers.get(plan, self.tiers["trial"])


@cache
def load_plans(path: Path = PLANS_FILE) -> Plans:
    with path.open("rb") as f:
        data = tomllib.load(f)
    money = ("price_usd_month", "monthly_allowance_usd", "daily_spend_cap_usd")
    tiers = {
        slug: Tier(slug=slug, **{k: Decimal(v) if k in money else v for k, v in t.items()})
        for slug, t in data["tiers"].items()
    }
    t = data["trial"]
    trial = TrialTerms(
        plan=t["plan"],
        tier_label=t["tier_label"],
        days=t["days"],
        credits_usd=Decimal(t["credits_usd"]),
        max_tokens=t["max_tokens"],
        max_requests=t["max_requests"],
    )
    return Plans(
        tiers=tiers,
        trial=trial,
        anonymous_rpm=data["anonymous"]["rpm"],
        credit_packs_usd=tuple(Decimal(a) for a in data["credit_packs"]["amounts_usd"]),
        referral_bonus_usd=Decimal(data["referral"]["bonus_usd"]),
    )
