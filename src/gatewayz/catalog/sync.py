"""Syncing one provider: read its model list API, merge it with the pricing data, replace its
offers in the database.

Not synced (their offers come from the pricing data and their configuration, see
offers.seed_listing): the built-in simulator (its models cost nothing), self-hosted providers
(they serve the models configured for them) and families without a list API (Bedrock, fal:
their adapter's `no_model_list` says why). The list is read by the provider's adapter
(`providers/listing.py`).

A failed read (HTTP error, timeout, malformed list) changes nothing but the provider's sync
state: its last good offers stay served. The merge runs in slices that yield to the event loop,
so a long list never stalls requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gatewayz.catalog.offers import Offer, OfferBuilder, replace_offers
from gatewayz.providers import listing
from gatewayz.providers.provider import Listed, Provider
from gatewayz.storage.catalog import SyncState, claim, mark_attempt, record, sync_states
from gatewayz.storage.db import Database
from gatewayz.storage.tables import utcnow

log = logging.getLogger("gatewayz.catalog")

SLICE = 256
SIMULATED = "built-in simulator: its models cost nothing, so they are not catalog entries"
SELF_HOSTED = "self-hosted: serves the models configured for it (offers from the pricing data)"


def skip_reason(provider: Provider) -> str | None:
    """Why the provider's list API is not read; None when it is."""
    if provider.slug == "simulated":
        return SIMULATED
    if provider.local:
        return SELF_HOSTED
    return listing.unlisted(provider)


@dataclass(slots=True)
class SyncResult:
    provider: str
    status: str  # ok | failed | skipped | not_due
    models: int = 0
    listed: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "status": self.status,
            "models": self.models,
            "listed": self.listed,
            "excluded": self.excluded,
            "detail": self.detail,
        }


class Syncer:
    def __init__(
        self,
        db: Database,
        builder: OfferBuilder,
        *,
        interval_s: float,
        retry_s: float,
        timeout_s: float,
        redact: Callable[[str], str],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.builder = builder
        self.redact = redact  # a provider's message may repeat its key (providers/redact.py)
        self.interval_s = interval_s
        self.retry_s = retry_s
        self.timeout_s = timeout_s
        self.clock = clock

    def due(self, provider: Provider, state: SyncState | None) -> bool:
        """Whether the provider's list should be read now: never synced; skipped before but
        syncable now (its configuration changed); neither synced within `interval_s` nor tried
        within `retry_s`."""
        if state is None:
            return True
        if state.status == "skipped":
            return skip_reason(provider) is None
        now = self.clock()
        fresh = state.succeeded_at is not None and (
            (now - state.succeeded_at).total_seconds() < self.interval_s
        )
        tried = (now - state.attempted_at).total_seconds() < self.retry_s
        return not fresh and not tried

    async def sync(self, provider: Provider, *, force: bool = False) -> SyncResult:
        """Sync one served provider: when due and not claimed by another worker, or always
        with `force` (a sync run by hand)."""
        slug = provider.slug
        reason = skip_reason(provider)
        if reason is not None:
            await self.record_skip(slug, reason)
            return SyncResult(slug, "skipped", detail=reason)
        now = self.clock()
        async with self.db.begin() as conn:
            if force:
                await mark_attempt(conn, slug, now)
            elif not await claim(conn, slug, now, self.interval_s, self.retry_s):
                return SyncResult(slug, "not_due")
        try:
            listed = await listing.list_models(provider, self.timeout_s)
        except listing.ListingError as exc:
            reason = self.redact(str(exc))
            detail = f"model list unreadable: {reason}"
            log.warning("catalog sync of %s failed: %s (its last good offers stay)", slug, reason)
            async with self.db.begin() as conn:
                await record(conn, slug, "failed", self.clock(), detail=detail)
            return SyncResult(slug, "failed", detail=detail)
        offers, excluded = await self._merge(provider, listed)
        done = self.clock()
        async with self.db.begin() as conn:
            await replace_offers(conn, slug, offers, done)
            await record(conn, slug, "ok", done, models=len(offers), excluded=excluded, detail=None)
        log.info(
            "catalog sync of %s: %d listed, %d offers, excluded %s",
            slug,
            len(listed),
            len(offers),
            dict(excluded) or "none",
        )
        return SyncResult(slug, "ok", len(offers), len(listed), dict(excluded))

    async def record_skip(self, slug: str, reason: str) -> None:
        async with self.db.begin() as conn:
            states = await sync_states(conn)
            state = states.get(slug)
            if state is None or (state.status, state.detail) != ("skipped", reason):
                await record(conn, slug, "skipped", self.clock(), detail=reason)

    async def _merge(
        self, provider: Provider, listed: list[Listed]
    ) -> tuple[list[Offer], Counter[str]]:
        book = self.builder.price_book()
        offers: dict[str, Offer] = {}
        excluded: Counter[str] = Counter()
        for i, item in enumerate(listed, 1):
            self.builder.add(offers, excluded, book, provider, item, "api")
            if i % SLICE == 0:
                await asyncio.sleep(0)
        return self.builder.finish(offers, excluded), excluded
