"""One suite, run against MemoryState and RedisState: both must behave the same."""

from __future__ import annotations

import asyncio

import pytest

from gatewayz.state import RedisState, StateBackend, WindowResult

from .harness import Backend


async def test_name_and_ping(backend: Backend) -> None:
    assert backend.state.name == backend.kind
    assert isinstance(backend.state, StateBackend)
    assert await backend.state.ping() is True


async def test_get_set_overwrite_and_missing(backend: Backend) -> None:
    s = backend.state
    assert await s.get("k") is None
    await s.set("k", b"v1")
    assert await s.get("k") == b"v1"
    await s.set("k", b"\x00\xffbinary")
    assert await s.get("k") == b"\x00\xffbinary"
    assert await s.ttl("k") is None


async def test_set_if_absent(backend: Backend) -> None:
    s = backend.state
    assert await s.set_if_absent("lock", b"one", ttl_s=5) is True
    assert await s.set_if_absent("lock", b"two", ttl_s=5) is False
    assert await s.get("lock") == b"one"
    ttl = await s.ttl("lock")
    assert ttl is not None and 4 < ttl <= 5


async def test_delete_counts_existing_keys_of_any_type(backend: Backend) -> None:
    s = backend.state
    await s.set("a", b"1")
    await s.incr("b")
    await s.hset("c", {"f": "v"})
    await s.window_add("d", 5, 10)
    assert await s.delete() == 0
    assert await s.delete("a", "b", "c", "d", "missing") == 4
    assert await s.get("a") is None
    assert await s.hget_all("c") == {}
    assert await s.delete("a") == 0


async def test_ttl_expiry_across_operations(backend: Backend) -> None:
    s = backend.state
    await s.set("plain", b"x", ttl_s=0.2)
    await s.set_if_absent("nx", b"x", ttl_s=0.2)
    await s.incr("counter", 3, ttl_s=0.2)
    await s.hset("hash", {"f": b"v"}, ttl_s=0.2)
    await s.window_add("win", 1, 0.2)
    await s.set("forever", b"y")
    ttl = await s.ttl("plain")
    assert ttl is not None and 0.1 < ttl <= 0.2
    await backend.advance(0.3)
    assert await s.get("plain") is None
    assert await s.ttl("plain") is None
    assert await s.get("nx") is None
    assert await s.get("counter") is None
    assert await s.hget_all("hash") == {}
    assert (await s.window_add("win", 1, 0.2)).allowed
    assert await s.get("forever") == b"y"
    # An expired key is absent: NX succeeds, incr restarts from zero.
    assert await s.set_if_absent("nx", b"again") is True
    assert await s.incr("counter") == 1


async def test_set_replaces_ttl(backend: Backend) -> None:
    s = backend.state
    await s.set("k", b"1", ttl_s=10)
    await s.set("k", b"2")
    assert await s.ttl("k") is None
    await s.set("k", b"3", ttl_s=20)
    ttl = await s.ttl("k")
    assert ttl is not None and 19 < ttl <= 20


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
async def test_invalid_ttl_rejected(backend: Backend, bad: float) -> None:
    with pytest.raises(ValueError):
        await backend.state.set("k", b"v", ttl_s=bad)
    with pytest.raises(ValueError):
        await backend.state.incr("k", 1, ttl_s=bad)


async def test_incr_values_and_types(backend: Backend) -> None:
    s = backend.state
    assert await s.incr("n") == 1
    assert await s.incr("n", 41) == 42
    assert await s.incr("n", -50) == -8
    assert await s.get("n") == b"-8"
    await s.set("m", b"100")
    assert await s.incr("m", 5) == 105
    await s.set("text", b"abc")
    with pytest.raises(ValueError):
        await s.incr("text")
    await s.hset("h", {"f": 1})
    with pytest.raises(ValueError):
        await s.incr("h")
    with pytest.raises(ValueError):
        await s.get("h")


async def test_incr_ttl_applied_on_create_only(backend: Backend) -> None:
    s = backend.state
    assert await s.incr("rl", 1, ttl_s=5) == 1
    first = await s.ttl("rl")
    assert first is not None and 4 < first <= 5
    assert await s.incr("rl", 1, ttl_s=60) == 2  # not extended
    assert await s.incr("rl") == 3  # nor removed
    later = await s.ttl("rl")
    assert later is not None and later <= first
    # A key that exists without expiry gets the TTL (no counter may live forever by accident).
    await s.set("persistent", b"7")
    assert await s.incr("persistent", 1, ttl_s=5) == 8
    ttl = await s.ttl("persistent")
    assert ttl is not None and 4 < ttl <= 5
    # Without ttl_s a new counter does not expire.
    await s.incr("plain")
    assert await s.ttl("plain") is None


async def test_incr_ttl_expires(backend: Backend) -> None:
    s = backend.state
    await s.incr("c", 1, ttl_s=0.2)
    await s.incr("c", 1, ttl_s=10)
    await backend.advance(0.3)
    assert await s.get("c") is None


async def test_incr_many(backend: Backend) -> None:
    s = backend.state
    assert await s.incr_many([]) == []
    await s.incr("b", 10, ttl_s=5)
    result = await s.incr_many([("a", 1, 60), ("b", 2, 60), ("a", 5, None), ("c", -3, None)])
    assert result == [1, 12, 6, -3]
    ttl_a, ttl_b, ttl_c = await s.ttl("a"), await s.ttl("b"), await s.ttl("c")
    assert ttl_a is not None and 59 < ttl_a <= 60
    assert ttl_b is not None and ttl_b <= 5  # existing expiry kept
    assert ttl_c is None


async def test_window_allows_exactly_limit_then_refuses(backend: Backend) -> None:
    s = backend.state
    t0 = 1_000_000.0
    assert await s.window_add("w", 3, 10.0, now=t0) == WindowResult(True, 2, 10.0)
    assert await s.window_add("w", 3, 10.0, now=t0 + 1) == (True, 1, 9.0)
    assert await s.window_add("w", 3, 10.0, now=t0 + 2) == (True, 0, 8.0)
    refused = await s.window_add("w", 3, 10.0, now=t0 + 4)
    assert refused.allowed is False and refused.remaining == 0
    assert refused.reset_after_s == pytest.approx(6.0)
    again = await s.window_add("w", 3, 10.0, now=t0 + 9.5)
    assert again == (False, 0, pytest.approx(0.5))
    # The first call has left the window (t0 + 10): exactly one slot is free.
    assert await s.window_add("w", 3, 10.0, now=t0 + 10) == (True, 0, pytest.approx(1.0))
    assert (await s.window_add("w", 3, 10.0, now=t0 + 10.5)).allowed is False
    # Refused calls were not recorded: at t0 + 12.5 only t0 + 10 remains.
    assert await s.window_add("w", 3, 10.0, now=t0 + 12.5) == (True, 1, pytest.approx(7.5))
    # Keys are independent.
    assert (await s.window_add("other", 3, 10.0, now=t0 + 4)).allowed is True


async def test_window_is_sliding_not_fixed(backend: Backend) -> None:
    s = backend.state
    t0 = 2_000_000.0
    for i in range(2):
        assert (await s.window_add("w", 2, 1.0, now=t0 + 0.9 + i * 0.01)).allowed
    # A fixed 1 s window would have reset at t0 + 1.0; the log still holds both calls.
    assert (await s.window_add("w", 2, 1.0, now=t0 + 1.2)).allowed is False
    assert (await s.window_add("w", 2, 1.0, now=t0 + 1.95)).allowed is True


async def test_window_with_backend_clock(backend: Backend) -> None:
    s = backend.state
    results = [await s.window_add("w", 2, 0.25) for _ in range(3)]
    assert [r.allowed for r in results] == [True, True, False]
    assert [r.remaining for r in results] == [1, 0, 0]
    assert 0 < results[2].reset_after_s <= 0.25
    await backend.advance(0.3)
    assert await s.window_add("w", 2, 0.25) == (True, 1, pytest.approx(0.25, abs=0.02))


async def test_window_edge_cases(backend: Backend) -> None:
    s = backend.state
    assert await s.window_add("zero", 0, 5.0, now=10.0) == (False, 0, 5.0)
    with pytest.raises(ValueError):
        await s.window_add("w", -1, 5.0)
    with pytest.raises(ValueError):
        await s.window_add("w", 1, 0)
    await s.set("str", b"x")
    with pytest.raises(ValueError):
        await s.window_add("str", 1, 5.0)


async def test_hash_set_get_and_ttl(backend: Backend) -> None:
    s = backend.state
    assert await s.hget_all("breaker") == {}
    await s.hset("breaker", {"state": "open", "failures": 3, "raw": b"\x01"}, ttl_s=30)
    await s.hset("breaker", {"failures": 4})  # keeps the expiry
    assert await s.hget_all("breaker") == {"state": b"open", "failures": b"4", "raw": b"\x01"}
    ttl = await s.ttl("breaker")
    assert ttl is not None and 29 < ttl <= 30
    await s.hset("breaker", {"state": "closed"}, ttl_s=100)
    ttl = await s.ttl("breaker")
    assert ttl is not None and 99 < ttl <= 100
    await s.hset("breaker", {})
    assert (await s.hget_all("breaker"))["state"] == b"closed"
    await s.set("str", b"x", ttl_s=50)
    with pytest.raises(ValueError):
        await s.hset("str", {"f": 1}, ttl_s=1)
    with pytest.raises(ValueError):
        await s.hget_all("str")
    ttl = await s.ttl("str")  # the failed hset did not touch the key's expiry
    assert ttl is not None and ttl > 49


async def test_prefix_isolation(backend: Backend) -> None:
    one, two = backend.sibling("one"), backend.sibling("two")
    await one.set("shared", b"from-one")
    await one.incr("count", 5)
    await one.hset("h", {"f": "1"})
    assert await two.get("shared") is None
    assert await two.incr("count") == 1
    assert await two.hget_all("h") == {}
    assert await two.delete("shared") == 0
    assert await one.get("shared") == b"from-one"
    assert await backend.state.get("shared") is None
    assert await backend.sibling("one").get("shared") == b"from-one"


async def test_concurrent_incr_is_atomic(backend: Backend) -> None:
    s = backend.state
    results = await asyncio.gather(*(s.incr("hits", 1, ttl_s=60) for _ in range(200)))
    assert sorted(results) == list(range(1, 201))
    assert await s.get("hits") == b"200"


async def test_concurrent_window_add_admits_exactly_limit(backend: Backend) -> None:
    s = backend.state
    results = await asyncio.gather(*(s.window_add("burst", 50, 30.0) for _ in range(120)))
    assert sum(r.allowed for r in results) == 50
    assert sorted(r.remaining for r in results if r.allowed) == list(range(50))


async def test_redis_keys_are_prefixed_and_shared_across_clients(
    redis_url: str, redis_prefix: str
) -> None:
    a = RedisState(redis_url, prefix=redis_prefix)
    b = RedisState(redis_url, prefix=redis_prefix)
    try:
        await a.set("k", b"v")
        assert await a.client.get(f"{redis_prefix}k") == b"v"
        assert await a.client.get("k") is None
        # Two client instances (as two workers would have) share counters atomically.
        results = await asyncio.gather(
            *(a.incr("both", 1, ttl_s=60) for _ in range(100)),
            *(b.incr("both", 1, ttl_s=60) for _ in range(100)),
        )
        assert sorted(results) == list(range(1, 201))
        assert await b.get("both") == b"200"
        windows = await asyncio.gather(
            *(a.window_add("wb", 30, 30.0) for _ in range(40)),
            *(b.window_add("wb", 30, 30.0) for _ in range(40)),
        )
        assert sum(w.allowed for w in windows) == 30
    finally:
        await a.close()
        await b.close()


async def test_redis_more_concurrent_calls_than_pooled_connections(
    redis_url: str, redis_prefix: str
) -> None:
    small = RedisState(redis_url, prefix=redis_prefix, max_connections=4)
    try:
        results = await asyncio.gather(*(small.incr("n") for _ in range(200)))
        assert sorted(results) == list(range(1, 201))
    finally:
        await small.close()
