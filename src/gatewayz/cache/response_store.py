"""Where stored answers live: `MemoryResponseStore` (this process) or `RedisResponseStore`
(`response_redis.py`, shared by every worker). Both are LRU-bounded to `max_entries`, each entry
with its own TTL; values are opaque bytes (`response_codec`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from gatewayz.lru import LRU


class ResponseStore(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None:
        """The entry under `key` (its use makes it the most recent), or None."""
        ...

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` for `ttl_s` seconds; past `max_entries` the least recently used
        entries are evicted."""
        ...


class MemoryResponseStore:
    """An in-process LRU with a TTL per entry."""

    name = "memory"

    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: LRU[str, tuple[float, bytes]] = LRU(max_entries)  # (expires at, value)
        self.max_entries = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        found = self._entries.peek(key)
        return found is not None and found[0] > self._clock()

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            self._entries.pop(key)
            return None
        return found[1]

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        self._entries.put(key, (self._clock() + ttl_s, value))
