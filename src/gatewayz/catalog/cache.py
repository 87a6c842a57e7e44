"""`TTLCache`: the catalog's in-process caches (SPEC §8 supporting caches), one class in three
configurations (see catalog/service.py):

- L1: whole serialized responses by (endpoint, view, filters, page), 5 min, bounded by entries
  and bytes (least recently used first out);
- L2: each provider's offers, 15–30 min (a random TTL per load, so providers loaded together
  do not expire together); an expired list is still served while it reloads in the background
  (`refresh_ahead`), and a failed reload keeps it for a while longer;
- health: the per-model health data, 6 min.

Stampede protection: concurrent misses of one key share one build (`single_flight.SingleFlight`:
a task every caller awaits, shielded, so a caller that goes away never cancels the others'
build). `clear()` invalidates: a build that started before it does not store its (possibly
stale) result. The entries are an `lru.LRU`: a hit makes its entry the most recent.

In-process memory rather than the shared state (Redis): every worker serves the catalog from
its own copy in microseconds, and the database behind it is the shared truth; after a sync,
workers find out through the database (catalog/service.py), not through the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from gatewayz.lru import LRU
from gatewayz.single_flight import SingleFlight

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    expires_at: float
    size: int


def _entry_size(entry: _Entry[V]) -> int:
    return entry.size


class TTLCache(Generic[K, V]):
    def __init__(
        self,
        ttl: Callable[[V], float],
        *,
        max_entries: int | None = None,
        max_bytes: int | None = None,
        size: Callable[[V], int] | None = None,
        stale_on_error_s: float = 0.0,
        refresh_ahead: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.refresh_ahead = refresh_ahead
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = size
        self.stale_on_error_s = stale_on_error_s
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self.builds = 0
        self._entries: LRU[K, _Entry[V]] = LRU(
            max_entries,
            max_bytes=max_bytes,
            size=_entry_size if size is not None or max_bytes is not None else None,
        )
        self._builds: SingleFlight[K, V] = SingleFlight()
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The sizes of the stored values (with a `size` function)."""
        return self._entries.bytes

    def expires_at(self, key: K) -> float | None:
        entry = self._entries.peek(key)
        return None if entry is None else entry.expires_at

    def fresh(self, key: K) -> V | None:
        """The cached value if it has not expired (no build, no counting)."""
        entry = self._entries.peek(key)
        if entry is None or self.clock() >= entry.expires_at:
            return None
        return entry.value

    def pending(self) -> list[asyncio.Task[V]]:
        """The builds in flight (for callers that must wait for background refreshes)."""
        return self._builds.pending()

    async def get(self, key: K, build: Callable[[], Awaitable[V]]) -> V:
        entry = self._entries.get(key)
        if entry is not None and self.clock() < entry.expires_at:
            self.hits += 1
            return entry.value
        self.misses += 1
        generation = self._generation
        task = self._builds.start(key, lambda: self._build(key, build, generation))
        if entry is not None and self.refresh_ahead:
            return entry.value  # expired: served while the reload runs
        return await asyncio.shield(task)

    def clear(self, key: K | None = None) -> None:
        """Forget one key (or all): the next get builds afresh."""
        self._generation += 1
        if key is None:
            self._entries.clear()
            self._builds.clear()
            return
        self._builds.forget(key)
        self._entries.pop(key)

    async def _build(self, key: K, build: Callable[[], Awaitable[V]], generation: int) -> V:
        try:
            self.builds += 1
            value = await build()
        except Exception:
            stale = self._entries.peek(key)
            if stale is None or self.stale_on_error_s <= 0 or generation != self._generation:
                raise
            stale.expires_at = self.clock() + self.stale_on_error_s
            return stale.value
        if generation == self._generation:
            size = self.size(value) if self.size is not None else 0
            self._entries.put(key, _Entry(value, self.clock() + self.ttl(value), size))
        return value
