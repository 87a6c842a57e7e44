"""Metering on the request path: price the route, hold a true upper bound, settle what it cost.

    open()     price lookup (premium models never at the default rate) → the most the request
               can cost at any candidate provider (`bounds.py`: prompt bytes and overheads,
               output limits) → one atomic hold that also enforces the daily spend cap and the
               trial's limits; refused → 402 (or 429 for the daily cap), the provider never
               called. Admin accounts hold nothing: they are metered, not limited by a balance.
    settle()   the actual cost of what the provider produced, charged once and in full
               (allowance first), reported as `usage.cost` and X-Gatewayz-Cost. A cost above the
               hold is charged whole (counted, logged); a settle the database cannot take is
               retried, then spooled to disk and replayed until it can (`settle_spool.py`).
    release()  the refund path: provider 5xx, timeouts, empty answers, upstream death mid-stream.
    abandon()  after a failure: release when the provider failed, settle what was produced when
               the caller's request was at fault (a 4xx is not refunded).

Requests that cost nothing (`:free` models, the simulated provider, zero prices) are not held and
leave no ledger row. Each served request gets its own hold id (the X-Request-ID prefix plus a
random suffix): a client may reuse an X-Request-ID, but one hold is settled exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Container, Sequence
from datetime import timedelta
from decimal import Decimal
from time import monotonic
from typing import TYPE_CHECKING, Any, Protocol

from gatewayz.billing.bounds import TokenBounds, output_bounds, prompt_bound
from gatewayz.billing.leases import Charge, Leases
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
from gatewayz.billing.refusal import refusal
from gatewayz.billing.settle_spool import PendingSettle, SettleSpool
from gatewayz.billing.tab import BillingMetrics, Tab, ledger_errors, refundable
from gatewayz.canonical.types import ChatRequest, Usage
from gatewayz.ids import unique_hex
from gatewayz.money import nanos_to_usd
from gatewayz.storage import price_overrides
from gatewayz.storage.errors import DB_ERRORS
from gatewayz.storage.ledger import holds
from gatewayz.storage.ledger.runner import LedgerRunner

if TYPE_CHECKING:
    from gatewayz.security.auth import Principal
    from gatewayz.settings import Settings
    from gatewayz.storage.db import Database

log = logging.getLogger("gatewayz.billing")
NONE = Decimal(0)


class _Provider(Protocol):
    @property
    def slug(self) -> str: ...


class Route(Protocol):
    """What the meter needs of a route (routing's `Route`): whose price, for which model."""

    @property
    def provider(self) -> _Provider: ...

    @property
    def native_id(self) -> str: ...

    @property
    def model(self) -> str: ...


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
        self.bounds = TokenBounds.load()
        self.spool = SettleSpool(settings.data_dir / "settle-spool")
        self.metrics = BillingMetrics()
        self._background: set[asyncio.Task[Any]] = set()
        self.leases: Leases | None = None
        if settings.billing_leases:
            self.leases = Leases(
                self.ledger,
                self.spool,
                ttl_s=settings.billing_lease_ttl_s,
                idle_s=settings.billing_lease_idle_s,
                trial_plan=self.plans.trial.plan,
                on_spooled=self.metrics.settle_spooled,
            )

    async def close(self) -> None:
        await self.ledger.close()

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
        except DB_ERRORS:
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
    def price_routes(self, routes: Sequence[Route], discount: Decimal = NONE) -> dict[str, Price]:
        """Each route's price by provider slug; routes no price allows are left out (a premium
        model at the default rate), and if that is all of them the first refusal is raised.
        With a `discount` (a fraction: a batch's lines), every price is that much lower: what
        is held and what is charged both come from these prices, rounded once per charge."""
        prices: dict[str, Price] = {}
        refusal: PricingUnavailable | None = None
        for route in routes:
            try:
                prices[route.provider.slug] = self.lookup(route).price
            except PricingUnavailable as exc:
                refusal = refusal or exc
        if not prices and refusal is not None:
            raise refusal
        if discount:
            return {slug: price.scaled(1 - discount) for slug, price in prices.items()}
        return prices

    async def open(
        self,
        principal: Principal,
        req: ChatRequest,
        prices: dict[str, Price],
        request_id: str,
        fanned: Container[str] = (),
    ) -> Tab | None:
        """Hold the most the request can cost at the dearest candidate provider (failover may
        end at any of them); None when it costs nothing. Sets `req.max_tokens` when a provider
        without a known output limit needs one for the bound to hold (`bounds.py`). n choices
        are n outputs; at the providers in `fanned` (n requests: pipeline/emulation.py) they
        are n prompts too."""
        self._refresh_prices()
        prompt = prompt_bound(req, self.bounds)
        outputs, send = output_bounds(req.max_tokens, prices, self.default_max_tokens)
        n = max(req.n or 1, 1)
        worst = max(
            estimate_max_nanos(p, prompt * (n if s in fanned else 1), outputs[s] * n)
            for s, p in prices.items()
        )
        if send is not None and worst and principal.role != "admin":
            req.max_tokens = send
        most = max(outputs.values()) * n
        covers = f"at most {prompt:,} prompt tokens + {most:,} output tokens"
        if req.max_tokens is None or send is not None:
            covers += " (the model's output limit; set max_tokens to hold less)"
        return await self.open_amount(principal, req.model, worst, prices, request_id, covers)

    async def open_amount(
        self,
        principal: Principal,
        model: str,
        worst: int,
        prices: dict[str, Price],
        request_id: str,
        covers: str,
    ) -> Tab | None:
        """Hold `worst` nano-dollars for a request for `model` (None when it is 0); refused →
        402 saying the hold `covers` what (or 429 for the daily cap), the provider not called."""
        if worst == 0:
            return None
        tab = Tab(
            id=f"{request_id[:50]}.{unique_hex(6)}",
            user_id=principal.user_id,
            price=next(iter(prices.values())),
            held_nanos=worst,
            description=model,
        )
        if principal.role == "admin":  # metered and logged, not held against a balance
            tab.held_nanos, tab.metered = 0, True
            return tab
        tier = self.plans.tier(principal.plan)
        if self.leases is not None and principal.plan != self.plans.trial.plan:
            with ledger_errors():
                tab.lease = await self.leases.reserve(tab.user_id, worst, tier.daily_cap_nanos)
            if tab.lease is not None:
                return tab
        try:
            with ledger_errors():
                held = await self.ledger.run(
                    holds.hold,
                    tab.user_id,
                    tab.id,
                    worst,
                    ttl=self.hold_ttl,
                    daily_cap_nanos=tier.daily_cap_nanos,
                    trial=self.plans.trial,
                    fresh=True,
                    account=tab.user_id,
                )
                if not held:
                    raise await refusal(self.db, self.plans, tab.user_id, model, worst, covers)
        except asyncio.CancelledError:
            # The hold may still be taken after we stop waiting: release it (queued after it).
            release = self.ledger.run(holds.release, tab.id, account=tab.user_id)
            task = asyncio.ensure_future(release)
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            raise
        return tab

    def answered_by(self, tab: Tab | None, route: Route, price: Price) -> None:
        """The provider that answered: its price is the one charged."""
        if tab is not None:
            tab.price = price
            tab.description = f"{route.model} via {route.provider.slug}"

    def quote(self, tab: Tab | None, usage: Usage) -> None:
        """Set `usage.cost` to what `settle` will charge (0 for a closed or absent hold)."""
        if tab is None or not tab.open:
            usage.cost = nanos_to_usd(0 if tab is None else tab.charged_nanos)
        else:
            tab.quoted = (usage, self._cost(tab, usage))
            usage.cost = nanos_to_usd(tab.quoted[1])

    @staticmethod
    def _cost(tab: Tab, usage: Usage) -> int:
        quoted = tab.quoted
        if quoted is not None and quoted[0] is usage:
            return quoted[1]
        return cost_nanos(tab.price, usage)

    async def settle(self, tab: Tab | None, usage: Usage) -> None:
        """Charge what `usage` cost, once and in full; sets `usage.cost`. A database that cannot
        take it now gets it later: retried once, then spooled to disk (replayed in the
        background), so a delivered answer is never lost from the ledger. A hold already
        closed (released as a refund) charges nothing."""
        if tab is None or not tab.open:
            self.quote(tab, usage)
            return
        cost = self._cost(tab, usage)
        usage.cost = nanos_to_usd(cost)
        await self.charge(tab, cost, usage.total_tokens, usage)

    async def charge(self, tab: Tab | None, cost: int, tokens: int, usage: object = None) -> None:
        """Charge `cost` nano-dollars, once and in full (see `settle`; a closed or absent tab
        charges nothing): what requests priced per unit (images, seconds of audio) pay."""
        if tab is None or not tab.open:
            return
        if tab.metered:
            tab.open, tab.charged_nanos = False, cost
            return
        if cost > tab.held_nanos:
            self.metrics.charged_over_hold(cost - tab.held_nanos)
            log.warning(
                "charge over the hold: %s cost %d nanos, held %d (%s; usage %s)",
                tab.id,
                cost,
                tab.held_nanos,
                tab.description,
                usage,
            )
        if tab.lease is not None:
            assert self.leases is not None
            tab.open, tab.charged_nanos = False, cost
            charge = Charge(tab.id, cost, tokens, tab.description)
            await self.leases.charge(tab.lease, tab.held_nanos, charge)
            return
        args = (holds.settle, tab.user_id, tab.id, cost)
        kwargs = {
            "tokens": tokens,
            "description": tab.description,
            "trial_plan": self.plans.trial.plan,
            "account": tab.user_id,
        }
        for attempt in range(2):
            try:
                tab.charged_nanos = await self.ledger.run(*args, **kwargs)
                tab.open = False
                return
            except DB_ERRORS as exc:
                if attempt == 0:
                    continue
                log.error("billing settle failed for %s (cost %d nanos): %s", tab.id, cost, exc)
        pending = PendingSettle(tab.user_id, tab.id, cost, tokens, tab.description)
        try:
            self.spool.put(pending)
            self.metrics.settle_spooled()
        except OSError as exc:  # the database and the disk both failed
            log.critical("settle of %s (%d nanos) could not be recorded: %s", tab.id, cost, exc)
        tab.open, tab.charged_nanos = False, cost

    async def release(self, tab: Tab | None) -> None:
        """Drop the hold, nothing charged (provider failure, empty answer)."""
        if tab is None or not tab.open:
            return
        tab.open = False
        if tab.metered:
            return
        if tab.lease is not None:
            assert self.leases is not None
            self.leases.release(tab.lease, tab.held_nanos)
            return
        try:
            await self.ledger.run(holds.release, tab.id, account=tab.user_id)
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
