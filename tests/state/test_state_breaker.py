"""`breaker_update`, the circuit-breaker transition primitive, on MemoryState and RedisState
(same suite, `backend` fixture), and through ResilientState while Redis is down."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
import redis.exceptions

from gatewayz.state import BreakerRecord, MemoryState, ResilientState, StateBackend

from .harness import Backend, FakeClock, Flaky

T0 = 1_700_000_000.0
TTL = 3600.0


async def update(s: StateBackend, ok: bool, now: float, threshold: int = 3) -> BreakerRecord:
    return await s.breaker_update("b", "probe", ok, threshold, 60.0, now, TTL)


async def test_missing_record_is_closed_and_success_writes_nothing(backend: Backend) -> None:
    s = backend.state
    assert await update(s, True, T0) == BreakerRecord("closed", 0, 0.0)
    assert await s.hget_all("b") == {}


async def test_failures_open_at_threshold(backend: Backend) -> None:
    s = backend.state
    assert await update(s, False, T0) == ("closed", 1, 0.0)
    assert await update(s, False, T0 + 1) == ("closed", 2, 0.0)
    assert await update(s, False, T0 + 2) == ("open", 3, T0 + 2)
    fields = await s.hget_all("b")
    assert fields["state"] == b"open" and fields["failures"] == b"3"
    assert float(fields["opened_at"]) == T0 + 2
    ttl = await s.ttl("b")
    assert ttl is not None and TTL - 1 < ttl <= TTL


async def test_success_in_closed_resets_count(backend: Backend) -> None:
    s = backend.state
    await update(s, False, T0)
    await update(s, False, T0)
    assert await update(s, True, T0) == ("closed", 0, 0.0)
    assert await update(s, False, T0) == ("closed", 1, 0.0)


async def test_open_ignores_outcomes_until_open_s(backend: Backend) -> None:
    s = backend.state
    for _ in range(3):
        await update(s, False, T0)
    assert await update(s, True, T0 + 59.9) == ("open", 3, T0)
    assert await update(s, False, T0 + 30) == ("open", 3, T0)  # timer not restarted


async def test_half_open_success_closes_and_clears_probe(backend: Backend) -> None:
    s = backend.state
    for _ in range(3):
        await update(s, False, T0)
    assert await s.set_if_absent("probe", b"1", ttl_s=30) is True
    assert await update(s, True, T0 + 60) == ("closed", 0, 0.0)
    assert await s.get("probe") is None


async def test_half_open_failure_reopens_with_timer_restarted(backend: Backend) -> None:
    s = backend.state
    for _ in range(3):
        await update(s, False, T0)
    await s.set_if_absent("probe", b"1", ttl_s=30)
    assert await update(s, False, T0 + 61.5) == ("open", 4, T0 + 61.5)
    assert await s.get("probe") is None
    assert await update(s, True, T0 + 120) == ("open", 4, T0 + 61.5)  # open until T0 + 121.5
    assert await update(s, True, T0 + 121.5) == ("closed", 0, 0.0)


async def test_fractional_times_round_trip(backend: Backend) -> None:
    s = backend.state
    now = T0 + 0.123456789
    assert await update(s, False, now, threshold=1) == ("open", 1, now)


async def test_validation_and_wrong_type(backend: Backend) -> None:
    s = backend.state
    with pytest.raises(ValueError):
        await s.breaker_update("b", "p", False, 0, 60.0, T0, TTL)
    with pytest.raises(ValueError):
        await s.breaker_update("b", "p", False, 1, 60.0, T0, 0)
    with pytest.raises(ValueError):
        await s.breaker_update("b", "p", False, 1, float("nan"), T0, TTL)
    await s.set("str", b"x")
    with pytest.raises(ValueError):
        await s.breaker_update("str", "p", False, 1, 60.0, T0, TTL)


async def test_concurrent_failures_are_counted_exactly(backend: Backend) -> None:
    s = backend.state
    results = await asyncio.gather(*(update(s, False, T0, threshold=50) for _ in range(80)))
    # Exactly one call opened it; the 30 after it found it open and changed nothing.
    assert sorted(r.failures for r in results) == list(range(1, 51)) + [50] * 30
    assert sum(r.state == "open" for r in results) == 31
    assert (await s.hget_all("b"))["failures"] == b"50"


async def test_resilient_falls_back_for_breaker_update(clock: FakeClock) -> None:
    flaky = Flaky(MemoryState(clock=clock), lambda: redis.exceptions.ConnectionError("down"))
    fallback = MemoryState(clock=clock)
    state = ResilientState(cast(StateBackend, flaky), fallback, clock=clock)
    assert await update(state, False, T0) == ("closed", 1, 0.0)
    flaky.down = True
    assert await update(state, False, T0) == ("closed", 1, 0.0)  # served by the fallback
    assert state.degraded
    assert (await fallback.hget_all("b"))["failures"] == b"1"
    await state.close()
