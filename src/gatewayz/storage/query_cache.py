"""The DB query cache: per-user reads that repeat and may be served a little stale, kept in the
shared state (Redis when configured, so every worker shares one copy; else this process's
memory) with a TTL, single-flight loading and explicit invalidation where our own code writes.

What is cached, and for how long:
* `keys` — `GET /user/api-keys`, the user's key list. TTL 300 s (`query_cache_keys_ttl_s`).
  Invalidated by POST, PATCH and DELETE /user/api-keys and by POST /auth when it makes a key
  for an existing user; keys made by the CLI (another process) show within the TTL. After an
  invalidation the key is read afresh and not stored again for `GUARD_S` (10 s).
* `usage` — `GET /user/usage`, one report per (from, to, group_by). TTL 60 s
  (`query_cache_usage_ttl_s`). Not invalidated: request logs are append-only and written off
  the request path anyway; a report lags new requests (and, grouped by key, key renames) by at
  most the TTL.

Not cached, on purpose: anything about money — balance, allowance, held amounts, spend today,
trial counters, the credit ledger — is read fresh on every request (the hold's conditional
UPDATE decides what a request may spend; a figure a user acts on is never stale); audit logs.
The other hot lookups never reach the database per request: the request path's key lookup (with
the user's role and plan) is the auth cache (`security/auth.py`), plans and their limits are data
files, prices are an in-memory book whose admin overrides each worker re-reads every
`price_refresh_s`.

Consistency:
* An invalidation writes a tombstone for `GUARD_S`. A load stores what it read only with
  set-if-absent, and only if it took less than half of `GUARD_S`: a load that read the database
  before a write can never store its result after that write's invalidation, on any worker.
* Concurrent misses of one key in a process share one load (single flight); an invalidation
  detaches the load in flight, so callers arriving after a write load afresh.
* Redis unreachable: the store's in-memory fallback (500 entries, 15 min) serves. With several
  workers, whose fallbacks cannot see each other's invalidations, the cache is bypassed until
  Redis answers again; invalidations made meanwhile are written to Redis once it does.
* Without Redis the store is this process's memory, so with several workers the cache is off.
* A cache error is a miss: the read goes to the database, it never fails the request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import orjson

from gatewayz.single_flight import SingleFlight
from gatewayz.state import MemoryState, RedisState, ResilientState, StateBackend
from gatewayz.storage.usage import UsageReport, UsageRow

if TYPE_CHECKING:
    from gatewayz.settings import Settings

log = logging.getLogger("gatewayz.storage")

KEYS = "keys"
USAGE = "usage"
GUARD_S = 10.0
TOMBSTONE = b"\x00"

Loader = Callable[[], Awaitable[Any]]


@dataclass(slots=True)
class QueryStats:
    hits: int = 0  # served from the store
    coalesced: int = 0  # joined a load already in flight: no read of their own
    misses: int = 0  # loaded from the database
    bypassed: int = 0  # read from the database because the cache was off or untrustworthy
    errors: int = 0  # store failures, treated as misses
    invalidations: int = 0

    @property
    def lookups(self) -> int:
        return self.hits + self.coalesced + self.misses + self.bypassed

    @property
    def hit_ratio(self) -> float:
        """Share of lookups that did not read the database."""
        return (self.hits + self.coalesced) / self.lookups if self.lookups else 0.0


class QueryCache:
    """`get(name, key, load)`: the cached value, else `await load()` (stored for the name's TTL).

    `store` None: the cache is off and every lookup loads. `workers`: processes that share the
    database; above one, a degraded store (Redis unreachable) is bypassed."""

    def __init__(
        self,
        store: StateBackend | None,
        ttls: dict[str, float],
        *,
        workers: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ttls = ttls
        self.workers = workers
        self.stats = QueryStats()
        self._clock = clock
        self._loads: SingleFlight[str, Any] = SingleFlight()
        self._missed: set[str] = set()  # invalidated while the store was degraded

    async def get(self, name: str, key: str, load: Loader) -> Any:
        if self.store is None:
            self.stats.bypassed += 1
            return await load()
        full = f"{name}:{key}"
        task = self._loads.get(full)
        if task is not None:
            self.stats.coalesced += 1
            return await asyncio.shield(task)
        raw = await self._read(full)
        if self._degraded():
            if self.workers > 1:
                self.stats.bypassed += 1
                return await load()
        elif self._missed and full in await self._replay():
            raw = None
        if raw is not None and raw != TOMBSTONE:
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self.stats.errors += 1
            else:
                self.stats.hits += 1
                return value
        task = self._loads.get(full)
        if task is not None:
            self.stats.coalesced += 1
            return await asyncio.shield(task)
        self.stats.misses += 1
        ttl_s = self.ttls[name]
        return await self._loads.run(full, lambda: self._load(full, ttl_s, load))

    async def invalidate(self, name: str, key: str) -> None:
        """Forget `name:key` everywhere; call after the write is committed."""
        full = f"{name}:{key}"
        self._loads.forget(full)
        if self.store is None:
            return
        self.stats.invalidations += 1
        try:
            await self.store.set(full, TOMBSTONE, GUARD_S)
        except Exception:
            self.stats.errors += 1
            log.warning("query cache: could not invalidate %s; retrying later", full, exc_info=True)
            self._missed.add(full)
            return
        if self._degraded():
            self._missed.add(full)

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()

    # ---- internals ----------------------------------------------------------------------
    def _degraded(self) -> bool:
        return bool(getattr(self.store, "degraded", False))

    async def _read(self, full: str) -> bytes | None:
        assert self.store is not None
        try:
            return await self.store.get(full)
        except Exception:
            self.stats.errors += 1
            log.warning("query cache: read of %s failed; loading instead", full, exc_info=True)
            return None

    async def _replay(self) -> set[str]:
        """Write the tombstones of invalidations made while the store was degraded."""
        assert self.store is not None
        missed, self._missed = self._missed, set()
        for full in missed:
            try:
                await self.store.set(full, TOMBSTONE, GUARD_S)
            except Exception:
                self.stats.errors += 1
                self._missed.add(full)
        return missed

    async def _load(self, full: str, ttl_s: float, load: Loader) -> Any:
        assert self.store is not None
        started = self._clock()
        value = await load()
        if self._clock() - started >= GUARD_S / 2 or not self._loads.current(full):
            return value  # slow, or invalidated meanwhile: what it read may predate a write
        try:
            await self.store.set_if_absent(full, orjson.dumps(value), ttl_s)
        except Exception:
            self.stats.errors += 1
            log.warning("query cache: could not store %s", full, exc_info=True)
        return value


def build_query_cache(
    settings: Settings, clock: Callable[[], float] = time.monotonic
) -> QueryCache:
    """The cache as configured: shared through Redis (with its own in-memory fallback), else in
    this process's memory when it is the only worker, else off."""
    ttls = {KEYS: settings.query_cache_keys_ttl_s, USAGE: settings.query_cache_usage_ttl_s}
    store: StateBackend | None = None
    if not settings.query_cache:
        pass
    elif settings.redis_url:
        prefix = f"{settings.redis_key_prefix}qc:"
        store = ResilientState(
            RedisState(settings.redis_url, prefix=prefix, socket_timeout_s=0.5),
            MemoryState(
                prefix=prefix,
                max_entries=settings.fallback_max_entries,
                default_ttl_s=settings.fallback_ttl_s,
                clock=clock,
            ),
            retry_after_s=settings.state_fallback_retry_s,
            on_fallback=_on_fallback,
            clock=clock,
        )
    elif settings.workers == 1:
        store = MemoryState(prefix="qc:", max_entries=settings.query_cache_max_entries, clock=clock)
    return QueryCache(store, ttls, workers=settings.workers, clock=clock)


def _on_fallback(operation: str, error: Exception) -> None:
    log.warning(
        "query cache: Redis unreachable (%s: %s); using the in-memory fallback", operation, error
    )


# ---- values ---------------------------------------------------------------------------------


def usage_json(report: UsageReport) -> dict[str, Any]:
    """A usage report as JSON-ready data (what the `usage` entries hold)."""
    return asdict(report)


def usage_from_json(data: dict[str, Any]) -> UsageReport:
    return UsageReport(
        group_by=data["group_by"],
        groups=[UsageRow(**row) for row in data["groups"]],
        totals=UsageRow(**data["totals"]),
    )
