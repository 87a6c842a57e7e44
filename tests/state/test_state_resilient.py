"""ResilientState: fallback while the primary is unreachable, recovery, and build_state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import redis.exceptions

from gatewayz.state import (
    MemoryState,
    RedisState,
    ResilientState,
    StateBackend,
    StateUnavailable,
    build_state,
)

from .harness import FakeClock, Flaky

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"

Events = list[tuple[str, Exception]]


@pytest.fixture
def events() -> Events:
    return []


@pytest.fixture
def flaky(clock: FakeClock) -> Flaky:
    return Flaky(MemoryState(clock=clock), lambda: redis.exceptions.ConnectionError("down"))


@pytest.fixture
async def over_flaky(
    flaky: Flaky, clock: FakeClock, events: Events
) -> AsyncIterator[ResilientState]:
    state = ResilientState(
        cast(StateBackend, flaky),
        MemoryState(clock=clock),
        retry_after_s=5.0,
        on_fallback=lambda op, exc: events.append((op, exc)),
        clock=clock,
    )
    yield state
    await state.close()


async def test_closed_port_every_call_served_by_fallback(clock: FakeClock, events: Events) -> None:
    fallback = MemoryState(clock=clock)
    state = ResilientState(
        RedisState(CLOSED_PORT_URL, prefix="x:"),
        fallback,
        on_fallback=lambda op, exc: events.append((op, exc)),
        clock=clock,
    )
    assert state.name == "resilient" and state.degraded is False
    await state.set("k", b"v", ttl_s=30)
    assert state.degraded is True
    assert [op for op, _ in events] == ["set"]
    assert isinstance(events[0][1], redis.exceptions.ConnectionError)
    assert await state.get("k") == b"v"
    assert await state.ttl("k") == 30
    assert await state.set_if_absent("k", b"w") is False
    assert await state.incr("n", 2, ttl_s=60) == 2
    assert await state.incr_many([("n", 1, None), ("m", 5, 10)]) == [3, 5]
    assert await state.window_add("w", 1, 10) == (True, 0, 10.0)
    assert (await state.window_add("w", 1, 10)).allowed is False
    await state.hset("h", {"state": "open"}, ttl_s=20)
    assert await state.hget_all("h") == {"state": b"open"}
    assert await state.delete("k", "h") == 2
    assert await state.ping() is True
    assert await fallback.get("n") == b"3"  # really stored in the fallback
    assert len(events) == 1  # during retry_after_s calls go straight to the fallback
    await state.close()


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        TimeoutError,
        ConnectionRefusedError,
        OSError,
    ],
)
async def test_connectivity_errors_trigger_fallback(
    flaky: Flaky, over_flaky: ResilientState, events: Events, error: type[Exception]
) -> None:
    flaky.error = error
    flaky.down = True
    assert await over_flaky.incr("n") == 1
    assert over_flaky.degraded is True
    assert len(events) == 1 and isinstance(events[0][1], error)


async def test_primary_retried_after_retry_after_s(
    flaky: Flaky, over_flaky: ResilientState, clock: FakeClock, events: Events
) -> None:
    await flaky.inner.set("n", b"100")
    assert await over_flaky.incr("n") == 101  # primary up: served by it
    flaky.down = True
    assert await over_flaky.incr("n") == 1  # fallback, which starts empty
    assert (flaky.calls, len(events), over_flaky.degraded) == (2, 1, True)
    clock.advance(4.9)
    assert await over_flaky.incr("n") == 2
    assert flaky.calls == 2  # still inside retry_after_s: the primary was not tried
    clock.advance(0.2)
    assert await over_flaky.incr("n") == 3  # primary tried, still down
    assert (flaky.calls, len(events), over_flaky.degraded) == (3, 2, True)
    flaky.down = False
    assert await over_flaky.incr("n") == 4  # the failed probe restarted the wait
    assert flaky.calls == 3
    clock.advance(5.0)
    assert await over_flaky.incr("n") == 102  # primary back, with its own data
    assert (flaky.calls, len(events), over_flaky.degraded) == (4, 2, False)
    fallback = cast(MemoryState, over_flaky.fallback)
    assert len(fallback) == 0  # cleared: the next outage must not see stale data
    assert await over_flaky.get("n") == b"102"
    assert flaky.calls == 5


async def test_one_probe_at_a_time(
    flaky: Flaky, over_flaky: ResilientState, clock: FakeClock
) -> None:
    flaky.down = True
    await over_flaky.set("k", b"v")
    clock.advance(6)
    results = await asyncio.gather(*(over_flaky.get("k") for _ in range(10)))
    assert results == [b"v"] * 10
    assert flaky.calls == 2  # the first failure, then a single probe
    flaky.down = False
    clock.advance(6)
    results = await asyncio.gather(*(over_flaky.get("k") for _ in range(10)))
    # One call probed the primary; the others, meanwhile, were served by the fallback.
    assert flaky.calls == 3
    assert results == [None] + [b"v"] * 9
    assert over_flaky.degraded is False
    assert await over_flaky.get("k") is None  # now from the primary, which never saw "k"


async def test_value_errors_propagate_without_fallback(
    flaky: Flaky, over_flaky: ResilientState, events: Events
) -> None:
    await over_flaky.set("text", b"abc")
    with pytest.raises(ValueError):
        await over_flaky.incr("text")
    assert over_flaky.degraded is False and events == []


async def test_failing_on_fallback_callback_does_not_fail_the_call(
    flaky: Flaky, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(op: str, exc: Exception) -> None:
        raise RuntimeError("metrics broken")

    state = ResilientState(
        cast(StateBackend, flaky), MemoryState(clock=clock), on_fallback=boom, clock=clock
    )
    flaky.down = True
    with caplog.at_level(logging.ERROR, logger="gatewayz.state.resilient"):
        assert await state.incr("n") == 1
    assert "on_fallback" in caplog.text
    assert state.degraded is True


async def test_both_failing_raises_state_unavailable(clock: FakeClock, events: Events) -> None:
    state = ResilientState(
        RedisState(CLOSED_PORT_URL, prefix="x:"),
        RedisState(CLOSED_PORT_URL, prefix="y:"),
        on_fallback=lambda op, exc: events.append((op, exc)),
        clock=clock,
    )
    calls: list[Any] = [
        state.get("k"),
        state.set("k", b"v"),
        state.set_if_absent("k", b"v"),
        state.delete("k"),
        state.incr("k"),
        state.incr_many([("k", 1, None)]),
        state.window_add("k", 1, 1.0),
        state.hget_all("k"),
        state.hset("k", {"f": 1}),
        state.ttl("k"),
    ]
    for call in calls:
        with pytest.raises(StateUnavailable) as info:
            await call
        assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)
    assert state.degraded is True and len(events) == 1
    assert await state.ping() is False
    await state.close()


async def test_real_redis_primary_is_used(redis_url: str, redis_prefix: str) -> None:
    fallback = MemoryState()
    state = ResilientState(RedisState(redis_url, prefix=redis_prefix), fallback)
    other = RedisState(redis_url, prefix=redis_prefix)
    try:
        assert await state.ping() is True
        await state.set("k", b"v")
        assert await state.incr("n", 1, ttl_s=10) == 1
        assert await other.get("k") == b"v"
        assert await other.incr("n") == 2
        assert state.degraded is False and len(fallback) == 0
    finally:
        await state.close()
        await other.close()


async def test_build_state() -> None:
    assert isinstance(build_state(None, "gw:"), MemoryState)
    assert isinstance(build_state("", "gw:"), MemoryState)
    state = build_state("redis://127.0.0.1:6379/0", "gw:")
    assert isinstance(state, ResilientState)
    assert isinstance(state.primary, RedisState) and state.primary.prefix == "gw:"
    fallback = state.fallback
    assert isinstance(fallback, MemoryState)
    assert (fallback.max_entries, fallback.default_ttl_s, fallback.prefix) == (500, 900, "gw:")
    assert state.retry_after_s == 5.0
    await state.close()
    custom = build_state(CLOSED_PORT_URL, "p:", 10, 60, retry_after_s=1.0)
    assert isinstance(custom, ResilientState)
    assert isinstance(custom.fallback, MemoryState)
    assert (custom.fallback.max_entries, custom.fallback.default_ttl_s) == (10, 60)
    assert custom.retry_after_s == 1.0
    await custom.set("k", b"v")  # unreachable Redis: served by the fallback
    assert await custom.get("k") == b"v" and custom.degraded is True
    await custom.close()
