"""`Catalog`: the model catalog a running gateway serves (SPEC §9), and its background sync.

Read path (never a provider API): L1 (the whole serialized response for the endpoint, view,
filters and page) → on a miss, one shared build from the snapshot of the active providers'
offers, each provider's list held in L2 (loaded from the database) → the health data (6 min).
Active providers are the served ones (registry.enabled); offers of any other provider are
never shown.

A provider's offers are, once it has synced successfully, the rows its last good sync wrote;
before that (and always for providers that are not synced: the simulator, self-hosted ones,
Bedrock, fal) its rows in the pricing data plus its configured models (source `pricing`).

Background: every `catalog_check_s` each worker (1) reads each provider's last successful sync
time from the database and drops its L2 entry and the L1 when it changed (a sync by another
worker or by `gatewayz models sync`), and (2) syncs the providers that are due, claimed so
that one worker syncs each. At startup a catalog that never synced is synced first (waiting at
most `catalog_startup_wait_s`, then continuing in the background).

Routing reads `known()` (catalog/known.py): what the served providers list and price, rebuilt
after each change by `publish_known` (at startup, after each check and each sync here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from gatewayz.billing.pricing import PriceBook
from gatewayz.catalog import views
from gatewayz.catalog.cache import TTLCache
from gatewayz.catalog.capabilities import CapabilityTable
from gatewayz.catalog.known import Knowledge, KnowledgeBoard
from gatewayz.catalog.model_health import HealthData, health_ttl, load_health
from gatewayz.catalog.model_views import ModelIndex
from gatewayz.catalog.naming import Naming
from gatewayz.catalog.offers import Offer, OfferBuilder, load_offers
from gatewayz.catalog.query import Query
from gatewayz.catalog.sync import Syncer, SyncResult, skip_reason
from gatewayz.errors import GatewayError, ModelNotFound, ServiceUnavailable
from gatewayz.observability.error_reports import report
from gatewayz.providers.provider import Provider
from gatewayz.providers.registry import Registry
from gatewayz.reliability.passive_health import PassiveHealth
from gatewayz.settings import Settings
from gatewayz.storage.catalog import SyncState, succeeded, sync_states
from gatewayz.storage.db import Database
from gatewayz.storage.errors import DB_ERRORS

log = logging.getLogger("gatewayz.catalog")

STALE_ON_ERROR_S = 60.0  # a provider list the database cannot reload is served this much longer
SYNC_CONCURRENCY = 4


class Catalog:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        registry: Registry,
        price_book: Callable[[], PriceBook],
        passive: PassiveHealth,
        *,
        extra_models: Callable[[], list[dict[str, Any]]] = list,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        s = settings
        self.db = db
        self.settings = settings
        self.registry = registry
        self.passive = passive
        self.extra_models = extra_models
        self.builder = OfferBuilder(
            Naming(registry),
            CapabilityTable.load(),
            price_book,
            max_offers=s.catalog_max_offers_per_provider,
        )
        self.syncer = Syncer(
            db,
            self.builder,
            interval_s=s.catalog_sync_interval_s,
            retry_s=s.catalog_sync_retry_s,
            timeout_s=s.catalog_sync_timeout_s,
            redact=registry.redact,
        )
        rng = rng or random.Random()
        self.l1: TTLCache[tuple[object, ...], bytes] = TTLCache(
            lambda _: s.catalog_l1_ttl_s,
            max_entries=s.catalog_l1_max_entries,
            max_bytes=s.catalog_l1_max_bytes,
            size=len,
            clock=clock,
        )
        self.l2: TTLCache[str, list[Offer]] = TTLCache(
            lambda _: rng.uniform(s.catalog_l2_ttl_min_s, s.catalog_l2_ttl_max_s),
            stale_on_error_s=STALE_ON_ERROR_S,
            refresh_ahead=True,
            clock=clock,
        )
        self.health: TTLCache[str, HealthData] = TTLCache(
            lambda data: health_ttl(data, s.catalog_health_ttl_s), clock=clock
        )
        self._rank = {p.slug: (i, p.orgs) for i, p in enumerate(registry.providers.values())}
        self._snapshot: views.Snapshot | None = None
        self._snapshot_of: tuple[list[Offer], ...] = ()
        self._index: ModelIndex | None = None
        self._rebuild: asyncio.Task[views.Snapshot] | None = None
        self._generation = 0
        self._succeeded: dict[str, datetime | None] = {}
        self._skips_noted: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Task[list[SyncResult]] | None = None
        self.board = KnowledgeBoard(
            lambda: self.builder.price_book(),  # the offers' prices are the routing's too
            self.builder.naming.resolver.data.aliases,
            {p.slug: p.orgs for p in registry.providers.values()},
            self._extra_ids,
        )

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start the background checks; a never-synced catalog is synced first (bounded), a
        synced one is known to routing before the first request (bounded too)."""
        wait = self.settings.catalog_startup_wait_s
        try:
            async with self.db.begin() as conn:
                states = await sync_states(conn)
        except DB_ERRORS as exc:
            log.warning("catalog: sync state unreadable at startup (%s)", exc)
            states = {}
        synced = any(s.succeeded_at for s in states.values())
        if synced or not self.settings.catalog_sync:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.publish_known(), wait)
        if not self.settings.catalog_sync:
            self._task = asyncio.create_task(self._run(first_delay=True))
            return
        self._first = asyncio.create_task(self.check())
        self._first.add_done_callback(_log_failure)
        if not synced:
            with contextlib.suppress(Exception):  # logged by the callback; never fails startup
                await asyncio.wait_for(asyncio.shield(self._first), wait)
            if not self._first.done():
                log.info("catalog: first sync still running; serving meanwhile")
        self._task = asyncio.create_task(self._run(first_delay=True))

    async def stop(self) -> None:
        for task in (self._task, self._first):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._first = None

    async def _run(self, *, first_delay: bool) -> None:
        if first_delay:
            await asyncio.sleep(self.settings.catalog_check_s)
        while True:
            try:
                await self.check()
            except Exception as exc:
                log.exception("catalog: background check failed")
                report(exc, job="catalog check")
            await asyncio.sleep(self.settings.catalog_check_s)

    async def check(self) -> list[SyncResult]:
        """Pick up syncs made elsewhere, then run the syncs that are due (claimed in the
        database, so another worker may take one first)."""
        states = await self.refresh()
        if states is not None:
            await self.publish_known()
        if not self.settings.catalog_sync or states is None:
            return []
        due = [p for p in self.registry.enabled if self.syncer.due(p, states.get(p.slug))]
        return await self.sync(due, force=False) if due else []

    async def refresh(self) -> dict[str, SyncState] | None:
        """Drop what changed in the database since we last looked (syncs by others); the sync
        states read (None when the database could not be read)."""
        try:
            async with self.db.begin() as conn:
                states = await sync_states(conn)
        except DB_ERRORS as exc:
            log.warning("catalog: sync state unreadable (%s)", exc)
            return None
        for p in self.registry.enabled:
            state = states.get(p.slug)
            succeeded_at = state.succeeded_at if state else None
            if p.slug in self._succeeded and self._succeeded[p.slug] != succeeded_at:
                self.invalidate(p.slug)
            self._succeeded[p.slug] = succeeded_at
        return states

    async def sync(self, providers: list[Provider], *, force: bool) -> list[SyncResult]:
        """Sync these providers (`force`: whether due or not); changed ones are invalidated."""
        gate = asyncio.Semaphore(SYNC_CONCURRENCY)

        async def one(p: Provider) -> SyncResult:
            reason = skip_reason(p)
            if reason is not None and p.slug in self._skips_noted and not force:
                return SyncResult(p.slug, "skipped", detail=reason)
            async with gate:
                try:
                    result = await self.syncer.sync(p, force=force)
                except DB_ERRORS as exc:
                    log.warning("catalog: sync of %s could not be recorded: %s", p.slug, exc)
                    return SyncResult(p.slug, "failed", detail=f"database: {exc}")
            if result.status == "skipped":
                self._skips_noted.add(p.slug)
            return result

        results = list(await asyncio.gather(*(one(p) for p in providers)))
        for r in results:
            if r.status == "ok":
                self.invalidate(r.provider)
        if any(r.status == "ok" for r in results):
            await self.publish_known()
        return results

    def known(self) -> Knowledge | None:
        """What the served providers list and price, for routing (catalog/known.py)."""
        return self.board.current()

    async def publish_known(self) -> None:
        """Rebuild `known()` if the snapshot or the sync state changed (a database that cannot
        be read keeps the last one). Synced: a served provider's list was read at least once."""
        try:
            async with self.db.begin() as conn:
                states = await sync_states(conn)
            snapshot = await self.snapshot()
        except (*DB_ERRORS, GatewayError) as exc:
            log.warning("catalog: what providers list is not refreshed (%s)", exc)
            return
        synced = any(succeeded(states.get(p.slug)) for p in self._active())
        await self.board.publish(snapshot, synced)

    def invalidate(self, provider: str | None = None) -> None:
        """After a sync: the provider's list reloads, every cached response rebuilds."""
        self.l2.clear(provider)
        self.l1.clear()
        self._generation += 1
        self._snapshot, self._rebuild = None, None
        if provider is None:
            self._succeeded.clear()
        else:
            self._succeeded.pop(provider, None)

    # ------------------------------------------------------------------ read path
    async def models_body(self, q: Query) -> bytes:
        async def build() -> bytes:
            snapshot, health = await self._snapshot_and_health()
            return orjson.dumps(views.page_json(snapshot, q, health))

        return await self.l1.get(("models", *q.key()), build)

    async def model_body(self, model_id: str) -> bytes:
        async def build() -> bytes:
            snapshot, health = await self._snapshot_and_health()
            model = snapshot.by_id.get(model_id)
            if model is None:
                raise ModelNotFound(f"The model '{model_id}' is not in the catalog.", param="id")
            return orjson.dumps(views.model_json(model, model.primary, health))

        return await self.l1.get(("model", model_id), build)

    async def providers_body(self) -> bytes:
        async def build() -> bytes:
            snapshot, health = await self._snapshot_and_health()
            try:
                async with self.db.begin() as conn:
                    states: dict[str, SyncState] | None = await sync_states(conn)
            except DB_ERRORS:
                states = None
            data = [
                views.provider_json(
                    p, snapshot, health, None if states is None else states.get(p.slug)
                )
                for p in self._active()
            ]
            return orjson.dumps({"object": "list", "data": data})

        return await self.l1.get(("providers",), build)

    async def openai_list_body(self) -> bytes:
        """`GET /v1/models`: the catalog's models, then the configured and simulated models it
        does not list (`services.model_list`), in OpenAI's list shape."""

        async def build() -> bytes:
            return orjson.dumps({"object": "list", "data": (await self.model_index()).objects})

        return await self.l1.get(("openai",), build)

    async def openai_model_body(self, model_id: str) -> bytes:
        """One model of `GET /v1/models` by its listed id (the route also resolves names:
        catalog/model_views.py)."""
        found = (await self.model_index()).by_id.get(model_id)
        if found is None:
            raise ModelNotFound(f"The model '{model_id}' does not exist.", param="model")
        return orjson.dumps(found)

    async def model_index(self) -> ModelIndex:
        """What `GET /v1/models` lists, indexed (catalog/model_views.py); one per snapshot."""
        snapshot, extras = await self.snapshot(), self.extra_models()
        index = self._index
        if index is None or not index.built_from(snapshot, extras):
            index = self._index = ModelIndex.build(snapshot, extras)
        return index

    def _extra_ids(self) -> list[str]:
        return [o["id"] for o in self.extra_models()]

    async def snapshot(self) -> views.Snapshot:
        """The merged offers of the active providers. Built off the event loop (a thread: it is
        pure computation over immutable offers); when a provider's list reloaded, the current
        snapshot is served until its successor is ready. After an invalidation (a sync) the
        first reader waits for the new one."""
        active = self._active()
        lists = await asyncio.gather(*(self.l2.get(p.slug, self._loader(p)) for p in active))
        stamp = tuple(lists)  # the lists themselves: compared by identity, kept alive
        current = self._snapshot
        if current is not None and _same(stamp, self._snapshot_of):
            return current
        task = self._rebuild
        if task is None or task.done():
            by_provider = {p.slug: offers for p, offers in zip(active, lists, strict=True)}
            task = asyncio.ensure_future(self._build_snapshot(by_provider, stamp))
            self._rebuild = task
        if current is not None:
            return current
        return await asyncio.shield(task)

    async def _build_snapshot(
        self, by_provider: dict[str, list[Offer]], stamp: tuple[list[Offer], ...]
    ) -> views.Snapshot:
        generation = self._generation
        snapshot = await asyncio.to_thread(views.Snapshot.build, by_provider, self._rank)
        if generation == self._generation:
            self._snapshot, self._snapshot_of = snapshot, stamp
        return snapshot

    async def _snapshot_and_health(self) -> tuple[views.Snapshot, HealthData]:
        snapshot = await self.snapshot()
        health = await self.health.get("all", lambda: load_health(self.db, self.passive))
        return snapshot, health

    def _active(self) -> list[Provider]:
        return self.registry.enabled

    def _loader(self, provider: Provider) -> Callable[[], Any]:
        async def load() -> list[Offer]:
            try:
                async with self.db.begin() as conn:
                    states = await sync_states(conn)
                    state = states.get(provider.slug)
                    synced = succeeded(state)
                    rows = await load_offers(conn, provider.slug) if synced else None
                    # The sync these rows are from: a later one anywhere reloads them.
                    self._succeeded[provider.slug] = state.succeeded_at if state else None
            except DB_ERRORS as exc:
                raise ServiceUnavailable(
                    "The model catalog is unavailable right now (database unreachable)."
                ) from exc
            if rows is None or skip_reason(provider) is not None:
                offers, _ = self.builder.build(
                    provider, self.builder.seed_listing(provider), "pricing"
                )
                return offers
            return self.builder.reprice(rows)

        return load


def _log_failure(task: asyncio.Task[list[SyncResult]]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("catalog: startup sync failed", exc_info=task.exception())


def _same(a: tuple[list[Offer], ...], b: tuple[list[Offer], ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
