"""The DB query cache's rules (storage/query_cache.py): TTL, single flight, invalidation that no
load in flight can undo (in this process or another), slow loads not stored, store errors as
misses, when it is off, and invalidations made while Redis was down reaching Redis when it is
back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from gatewayz.settings import Settings
from gatewayz.state import MemoryState, ResilientState
from gatewayz.storage.query_cache import GUARD_S, KEYS, TOMBSTONE, QueryCache, build_query_cache
from tests.state.harness import FakeClock, Flaky

TTLS = {KEYS: 60.0}


class Source:
    """A stand-in for a database read: counts loads; `gate` (if set) holds each load open."""

    def __init__(self) -> None:
        self.value: Any = ["v1"]
        self.loads = 0
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def load(self) -> Any:
        self.loads += 1
        read = self.value  # read first: a write after this point is not in what we return
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        return read


def _cache(clock: FakeClock, store: MemoryState | None = None) -> QueryCache:
    return QueryCache(store if store is not None else MemoryState(clock=clock), TTLS, clock=clock)


async def test_entries_live_for_their_ttl() -> None:
    clock, src = FakeClock(), Source()
    cache = _cache(clock)
    assert await cache.get(KEYS, "u", src.load) == ["v1"]
    src.value = ["v2"]
    clock.advance(59.9)
    assert await cache.get(KEYS, "u", src.load) == ["v1"] and src.loads == 1
    clock.advance(0.2)
    assert await cache.get(KEYS, "u", src.load) == ["v2"] and src.loads == 2
    assert (cache.stats.hits, cache.stats.misses) == (1, 2)
    assert cache.stats.hit_ratio == pytest.approx(1 / 3)


async def test_concurrent_misses_share_one_load() -> None:
    clock, src = FakeClock(), Source()
    src.gate = asyncio.Event()
    cache = _cache(clock)
    callers = [asyncio.create_task(cache.get(KEYS, "u", src.load)) for _ in range(5)]
    await src.started.wait()
    src.gate.set()
    assert await asyncio.gather(*callers) == [["v1"]] * 5
    assert src.loads == 1 and cache.stats.misses == 1 and cache.stats.coalesced == 4


async def test_a_cancelled_caller_does_not_cancel_the_shared_load() -> None:
    clock, src = FakeClock(), Source()
    src.gate = asyncio.Event()
    cache = _cache(clock)
    first = asyncio.create_task(cache.get(KEYS, "u", src.load))
    await src.started.wait()
    second = asyncio.create_task(cache.get(KEYS, "u", src.load))
    await asyncio.sleep(0)
    first.cancel()
    src.gate.set()
    assert await second == ["v1"] and src.loads == 1


async def test_invalidation_during_a_load_is_not_undone() -> None:
    clock, src = FakeClock(), Source()
    gate = asyncio.Event()
    src.gate = gate
    cache = _cache(clock)
    before = asyncio.create_task(cache.get(KEYS, "u", src.load))
    await src.started.wait()  # it has read "v1"
    src.value = ["v2"]  # a write commits...
    await cache.invalidate(KEYS, "u")  # ...and invalidates
    src.gate = None
    # A caller arriving after the write does not join the old load: it loads afresh.
    assert await asyncio.wait_for(cache.get(KEYS, "u", src.load), 5) == ["v2"]
    assert src.loads == 2
    gate.set()
    assert await before == ["v1"]  # its caller started before the write
    # The old load finished last, yet what it read was not stored.
    assert await cache.get(KEYS, "u", src.load) == ["v2"]


async def test_a_load_from_before_another_workers_write_is_not_stored() -> None:
    clock, src = FakeClock(), Source()
    src.gate = asyncio.Event()
    shared = MemoryState(clock=clock)  # what Redis is to the workers
    worker_a, worker_b = _cache(clock, shared), _cache(clock, shared)
    slow = asyncio.create_task(worker_a.get(KEYS, "u", src.load))
    await src.started.wait()  # worker A has read "v1"
    src.value = ["v2"]
    await worker_b.invalidate(KEYS, "u")  # worker B wrote and invalidated
    src.gate.set()
    assert await slow == ["v1"]  # A's caller started before the write: fine for it
    assert await shared.get(f"{KEYS}:u") == TOMBSTONE  # but A did not store "v1"
    assert await worker_b.get(KEYS, "u", src.load) == ["v2"]
    # Past the guard the tombstone is gone and loads are stored again.
    clock.advance(GUARD_S)
    assert await worker_b.get(KEYS, "u", src.load) == ["v2"]
    loads = src.loads
    assert await worker_a.get(KEYS, "u", src.load) == ["v2"] and src.loads == loads


async def test_a_slow_load_is_not_stored() -> None:
    clock, src = FakeClock(), Source()
    cache = _cache(clock)

    async def slow() -> Any:
        clock.advance(GUARD_S / 2)
        return await src.load()

    assert await cache.get(KEYS, "u", slow) == ["v1"]
    assert await cache.get(KEYS, "u", src.load) == ["v1"] and src.loads == 2


async def test_store_errors_are_misses_never_failures() -> None:
    clock, src = FakeClock(), Source()
    broken = Flaky(MemoryState(clock=clock), lambda: RedisConnectionError("down"))
    broken.down = True
    cache = QueryCache(broken, TTLS, clock=clock)  # type: ignore[arg-type]
    assert await cache.get(KEYS, "u", src.load) == ["v1"]
    assert await cache.get(KEYS, "u", src.load) == ["v1"]
    await cache.invalidate(KEYS, "u")  # does not raise either
    assert src.loads == 2 and cache.stats.errors >= 3 and cache.stats.hits == 0


async def test_loader_errors_reach_every_waiting_caller() -> None:
    clock = FakeClock()
    cache = _cache(clock)
    gate = asyncio.Event()

    async def failing() -> Any:
        await gate.wait()
        raise RuntimeError("database down")

    callers = [asyncio.create_task(cache.get(KEYS, "u", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await cache.get(KEYS, "u", Source().load) == ["v1"]  # nothing was stored


async def test_off_without_a_store() -> None:
    assert build_query_cache(Settings(query_cache=False)).store is None
    # Memory-only state with several workers: invalidations could not reach the others.
    assert build_query_cache(Settings(workers=2)).store is None
    assert isinstance(build_query_cache(Settings()).store, MemoryState)
    src = Source()
    cache = build_query_cache(Settings(query_cache=False))
    for _ in range(3):
        assert await cache.get(KEYS, "u", src.load) == ["v1"]
    assert src.loads == 3 and cache.stats.bypassed == 3 and cache.stats.hit_ratio == 0


async def test_invalidations_while_redis_is_down_reach_redis_when_it_is_back() -> None:
    clock, src = FakeClock(), Source()
    redis = Flaky(MemoryState(clock=clock), lambda: RedisConnectionError("down"))
    store = ResilientState(redis, MemoryState(clock=clock), retry_after_s=5, clock=clock)  # type: ignore[arg-type]
    cache = QueryCache(store, TTLS, clock=clock)
    assert await cache.get(KEYS, "u", src.load) == ["v1"]  # stored in "Redis"
    redis.down = True
    src.value = ["v2"]
    await cache.invalidate(KEYS, "u")  # Redis unreachable: only local memory heard it
    assert store.degraded
    assert await cache.get(KEYS, "u", src.load) == ["v2"]  # served right meanwhile
    redis.down = False
    clock.advance(6)
    # Redis is back and still holds "v1"; the missed invalidation is written before any use.
    assert await cache.get(KEYS, "u", src.load) == ["v2"]
    assert not store.degraded and await redis.inner.get(f"{KEYS}:u") == TOMBSTONE
