"""MemoryState specifics: LRU eviction, default TTL, expiry sweep."""

from __future__ import annotations

import pytest

from gatewayz.state import MemoryState

from .harness import FakeClock


async def test_lru_evicts_least_recently_used_beyond_max_entries(clock: FakeClock) -> None:
    s = MemoryState(max_entries=3, clock=clock)
    await s.set("a", b"1")
    await s.set("b", b"2")
    await s.set("c", b"3")
    assert await s.get("a") == b"1"  # a is now the most recently used; b the least
    await s.set("d", b"4")
    assert len(s) == 3 and s.evictions == 1
    assert await s.get("b") is None
    assert [await s.get(k) for k in "acd"] == [b"1", b"3", b"4"]
    await s.incr("c")  # writes count as use too
    await s.hset("e", {"f": 1})
    assert await s.get("a") is None
    assert await s.get("c") == b"4"
    assert len(s) == 3 and s.evictions == 2


async def test_default_ttl_applies_to_keys_written_without_ttl(clock: FakeClock) -> None:
    s = MemoryState(clock=clock, default_ttl_s=900)
    await s.set("plain", b"x")
    await s.incr("counter")
    await s.hset("hash", {"f": "v"})
    await s.set("short", b"x", ttl_s=10)
    assert await s.ttl("plain") == 900
    assert await s.ttl("short") == 10
    await s.hset("hash", {"g": "w"})  # existing expiry kept, not renewed
    clock.advance(899)
    assert await s.get("plain") == b"x"
    assert await s.get("short") is None
    clock.advance(2)
    assert await s.get("plain") is None
    assert await s.get("counter") is None
    assert await s.hget_all("hash") == {}


async def test_expired_entries_are_swept_without_being_touched(clock: FakeClock) -> None:
    s = MemoryState(clock=clock, sweep_interval_s=5)
    for i in range(10):
        await s.set(f"k{i}", b"v", ttl_s=1)
    await s.set("keep", b"v")
    assert len(s) == 11
    clock.advance(2)
    await s.get("keep")  # sweep not due yet: expired keys still stored
    assert len(s) == 11
    clock.advance(4)
    await s.get("keep")
    assert len(s) == 1


async def test_prefix_is_part_of_the_stored_key(clock: FakeClock) -> None:
    s = MemoryState(prefix="p:", clock=clock)
    await s.set("k", b"v")
    assert list(s._data) == ["p:k"]


async def test_incr_accepts_only_canonical_integers(clock: FakeClock) -> None:
    s = MemoryState(clock=clock)
    for raw in [b"07", b" 7", b"7.0", b"+7", b""]:
        await s.set("k", raw)
        with pytest.raises(ValueError):
            await s.incr("k")
    await s.set("k", b"-7")
    assert await s.incr("k") == -6
    await s.set("k", str(2**63 - 1).encode())
    with pytest.raises(ValueError):
        await s.incr("k")


async def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        MemoryState(max_entries=0)
    with pytest.raises(ValueError):
        MemoryState(default_ttl_s=0)


async def test_close_clears(clock: FakeClock) -> None:
    s = MemoryState(clock=clock)
    await s.set("k", b"v")
    await s.close()
    assert len(s) == 0
