"""Metering on the request path: price the route, hold the worst case, settle what it cost.

    open()     price lookup (premium models never at the default rate) → estimated maximum
               cost → one atomic hold that also enforces the daily spend cap and the trial's
               limits; refused → 402 (or 429 for the daily cap) and the provider is never called.
    settle()   the actual cost of what the provider produced, charged once (allowance first),
               reported as `usage.cost` and X-Gatewayz-Cost.
    release()  the refund path: provider 5xx, timeouts, empty streams, upstream death mid-stream.
    abandon()  after a failure: release when the provider failed, settle what was produced when
               the caller's request was at fault (a 4xx is not refunded).

Requests that cost nothing (`:free` models, the simulated provider, zero prices) are not held and
leave no ledger row. Each served request gets its own hold id (the X-Request-ID prefix plus a
random suffix): a client may reuse an X-Request-ID, but one hold is settled exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from gatewayz.billing import holds, ledger, price_overrides
from gatewayz.billing.ledger_runner import DB_ERRORS, LedgerRunner
from gatewayz.billing.plans import load_plans
from gatewayz.billing.pricing import (
    FREE,
    Price,
    PriceBook,
    PriceLookup,
    PricingUnavailable,
    check_priceable,
    cost_nanos,
    estimate_max_nanos,
)
from gatewayz.canonical.types import ChatRequest, Usage
from gatewayz.errors import (
    GatewayError,
    PaymentRequired,
    ServiceUnavailable,
    SpendCapReached,
    Unauthorized,
    UpstreamError,
)
from gatewayz.money import format_usd, nanos_to_usd
from gatewayz.pipeline.tokens import estimate_tokens, prompt_chars
from gatewayz.ratelimit.limits import FREE_SUFFIX
from gatewayz.routing.resolve import Route
from gatewayz.storage.tables import users, utcnow

if TYPE_CHECKING:
    from gatewayz.security.auth import Principal
    from gatewayz.settings import Settings
    from gatewayz.storage.db import Database

log = logging.getLogger("gatewayz.billing")


@dataclass(slots=True)
class Tab:
    """One request's hold."""

    id: str
    user_id: str
    price: Price
    held_nanos: int
    description: str
    open: bool = True
    charged_nanos: int = 0


def refundable(exc: BaseException) -> bool:
    """Whether a failure releases the hold: the provider failed (5xx, timeout, no answer) or
    the request never completed (cancelled). A request the provider rejected as the caller's
    error (4xx) is not refunded."""
    if isinstance(exc, GatewayError):
        return isinstance(exc, UpstreamError) or exc.status >= 500
    return True


class Meter:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.plans = load_plans()
        self.packaged = PriceBook.load()
        self.book = self.packaged
        self.default_max_tokens = settings.billing_default_max_tokens
        self.chars_per_token = settings.chars_per_token
        self.hold_ttl = timedelta(seconds=settings.billing_hold_ttl_s)
        self.refresh_s = settings.price_refresh_s
        self._loaded_at = 0.0
        self._reloads = 0
        self._refresh: asyncio.Task[None] | None = None
        self.ledger = LedgerRunner(db)
        self._background: set[asyncio.Task[Any]] = set()

    def close(self) -> None:
        self.ledger.close()

    # ------------------------------------------------------------------ prices
    async def reload_prices(self) -> None:
        """Packaged prices plus the admin overrides now in the database."""
        self._reloads += 1
        mine = self._reloads
        async with self.db.begin() as conn:
            rows = await price_overrides.list_rows(conn)
        if mine == self._reloads:  # a reload started later read newer rows: it wins
            self.book = self.packaged.with_overrides(rows)
            self._loaded_at = monotonic()

    def _refresh_prices(self) -> None:
        """Re-read overrides made by other workers, in the background, at most every
        `price_refresh_s` (the request in hand uses the prices already loaded)."""
        if monotonic() - self._loaded_at < self.refresh_s:
            return
        if self._refresh is None or self._refresh.done():
            self._loaded_at = monotonic()  # one refresh at a time, even if it fails
            self._refresh = asyncio.create_task(self._reload_quietly())

    async def _reload_quietly(self) -> None:
        try:
            await self.reload_prices()
        except (SQLAlchemyError, OSError):
            log.warning("price overrides could not be re-read; keeping the loaded prices")

    def lookup(self, route: Route) -> PriceLookup:
        """The route's price (by canonical id, else by the provider's native id); raises
        PricingUnavailable for a premium model that only the default rate would price."""
        slug = route.provider.slug
        if slug == "simulated":  # the built-in simulator costs nothing
            return PriceLookup(route.model, slug, FREE, source="free")
        found = self.book.lookup(route.model, slug)
        # Not priced for this provider (another provider's row, or the default rate): the
        # provider's own row under its native id, when it has one, is its real price.
        if found.source in ("model", "default") and route.native_id != route.model:
            native = self.book.lookup(route.native_id, slug)
            if native.priced_provider == slug or (found.is_default and not native.is_default):
                found = native
        return check_priceable(route.model, found)

    # ------------------------------------------------------------------ the request
    def price_routes(self, routes: Sequence[Route]) -> dict[str, Price]:
        """Each route's price by provider slug; routes no price allows are left out (a premium
        model at the default rate), and if that is all of them the first refusal is raised."""
        prices: dict[str, Price] = {}
        refusal: PricingUnavailable | None = None
        for route in routes:
            try:
                prices[route.provider.slug] = self.lookup(route).price
            except PricingUnavailable as exc:
                refusal = refusal or exc
        if not prices and refusal is not None:
            raise refusal
        return prices

    async def open(
        self,
        principal: Principal,
        req: ChatRequest,
        prices: dict[str, Price],
        request_id: str,
        prompt_tokens: int | None = None,  # the caller's estimate, when it already made one
    ) -> Tab | None:
        """Hold the request's worst-case cost at the dearest of the candidate providers' prices
        (failover may end at any of them); None when it costs nothing."""
        self._refresh_prices()
        if prompt_tokens is None:
            prompt_tokens = estimate_tokens(prompt_chars(req), self.chars_per_token)
        max_tokens = (req.max_tokens or self.default_max_tokens) * max(req.n or 1, 1)
        worst = max(estimate_max_nanos(p, prompt_tokens, max_tokens) for p in prices.values())
        if worst == 0:
            return None
        suffix = secrets.token_hex(6)
        tab = Tab(
            id=f"{request_id[:50]}.{suffix}",
            user_id=principal.user_id,
            price=next(iter(prices.values())),
            held_nanos=worst,
            description=req.model,
        )
        tier = self.plans.tier(principal.plan)
        try:
            held = await self.ledger.run(
                holds.hold,
                tab.user_id,
                tab.id,
                worst,
                ttl=self.hold_ttl,
                daily_cap_nanos=tier.daily_cap_nanos,
                trial=self.plans.trial,
                fresh=True,
            )
            if not held:
                raise await self._refusal(tab.user_id, req, worst, prompt_tokens)
        except asyncio.CancelledError:
            # The hold may still be taken after we stop waiting: release it (queued after it).
            task = asyncio.ensure_future(self.ledger.run(holds.release, tab.id))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            raise
        except ledger.UnknownUser:
            raise Unauthorized("The account of this API key no longer exists.") from None
        except DB_ERRORS as exc:
            log.error("billing hold failed: %s", exc)
            raise ServiceUnavailable(
                "Billing is temporarily unavailable; the request was not sent. Retry shortly."
            ) from None
        return tab

    def answered_by(self, tab: Tab | None, route: Route, price: Price) -> None:
        """The provider that answered: its price is the one charged."""
        if tab is not None:
            tab.price = price
            tab.description = f"{route.model} via {route.provider.slug}"

    async def settle(self, tab: Tab | None, usage: Usage) -> None:
        """Charge what `usage` cost (once); sets `usage.cost`."""
        if tab is None:
            usage.cost = nanos_to_usd(0)
            return
        cost = cost_nanos(tab.price, usage)
        tab.open = False
        try:
            tab.charged_nanos = await self.ledger.run(
                holds.settle,
                tab.user_id,
                tab.id,
                cost,
                tokens=usage.total_tokens,
                description=tab.description,
            )
        except DB_ERRORS as exc:
            # The hold stays open: the sweep releases it after its TTL. Never charged twice.
            log.error("billing settle failed for %s (cost %s nanos): %s", tab.id, cost, exc)
        usage.cost = nanos_to_usd(tab.charged_nanos)

    async def release(self, tab: Tab | None) -> None:
        """Drop the hold, nothing charged (provider failure, empty stream)."""
        if tab is None or not tab.open:
            return
        tab.open = False
        try:
            await self.ledger.run(holds.release, tab.id)
        except DB_ERRORS as exc:
            log.error("billing release failed for %s (the sweep will release it): %s", tab.id, exc)

    async def abandon(self, tab: Tab | None, exc: BaseException) -> None:
        """After a request failed before producing anything: refund or keep, by the rules."""
        if tab is None or not tab.open:
            return
        if refundable(exc):
            await self.release(tab)
        else:
            await self.settle(tab, Usage(prompt_tokens=0, completion_tokens=0))

    # ------------------------------------------------------------------ refusals
    async def _refusal(
        self, user_id: str, req: ChatRequest, worst: int, prompt_tokens: int
    ) -> GatewayError:
        """Why the hold was refused, in words the caller can act on."""
        async with self.db.begin() as conn:
            row = (
                (
                    await conn.execute(
                        select(
                            users.c.plan,
                            users.c.allowance_nanos,
                            users.c.credits_nanos,
                            users.c.held_nanos,
                            users.c.trial_ends_at,
                            users.c.trial_tokens_used,
                            users.c.trial_requests_used,
                            users.c.spend_day,
                            users.c.spend_day_nanos,
                        ).where(users.c.id == user_id)
                    )
                )
                .mappings()
                .one()
            )
        now = utcnow()
        trial = self.plans.trial
        free_hint = f"Models with the '{FREE_SUFFIX}' suffix remain available."
        if row["plan"] == trial.plan:
            ends = row["trial_ends_at"]
            if ends is not None and ends <= now:
                return PaymentRequired(
                    f"Your free trial ended on {ends:%Y-%m-%d %H:%M} UTC. Add credits or choose "
                    f"a plan to use '{req.model}'. {free_hint}",
                    code="trial_expired",
                )
            if row["trial_tokens_used"] >= trial.max_tokens:
                return PaymentRequired(
                    f"Your free trial's {trial.max_tokens:,} tokens are used up. Add credits "
                    f"or choose a plan to use '{req.model}'. {free_hint}",
                    code="trial_token_limit",
                )
            if row["trial_requests_used"] >= trial.max_requests:
                return PaymentRequired(
                    f"Your free trial's {trial.max_requests:,} requests are used up. Add credits"
                    f" or choose a plan to use '{req.model}'. {free_hint}",
                    code="trial_request_limit",
                )
        tier = self.plans.tier(row["plan"])
        today = now.date().isoformat()
        spent = row["spend_day_nanos"] if row["spend_day"] == today else 0
        if spent + row["held_nanos"] + worst > tier.daily_cap_nanos:
            midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
            return SpendCapReached(
                f"The {tier.name} plan's daily spend cap of {format_usd(tier.daily_cap_nanos)} "
                f"would be exceeded (spent today {format_usd(spent)}, in flight "
                f"{format_usd(row['held_nanos'])}, this request up to {format_usd(worst)}). "
                "It resets at 00:00 UTC.",
                headers={"Retry-After": str(max(1, int((midnight - now).total_seconds())))},
            )
        available = row["allowance_nanos"] + row["credits_nanos"] - row["held_nanos"]
        out = "max_tokens" if req.max_tokens else f"{self.default_max_tokens} (default) output"
        return PaymentRequired(
            f"Insufficient credits: this request may cost up to {format_usd(worst)} "
            f"(about {prompt_tokens:,} prompt tokens + {out} tokens of '{req.model}'), and your "
            f"available balance is {format_usd(max(available, 0))}. Add credits, or lower "
            "max_tokens.",
        )
