"""CM-2.4: Redis down → the in-memory fallback (LRU 500 entries, 15 min) serves the limiter
without error and a warning is counted; fallback failing too → the request is allowed."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from gatewayz.ratelimit import LimiterMetrics, RateLimiter
from gatewayz.settings import Settings
from gatewayz.state import IncrItem, MemoryState, ResilientState, StateUnavailable, build_state

from .conftest import MINUTE, fixed, principal

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


class BrokenMemory(MemoryState):
    """A fallback that cannot serve either."""

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        raise ConnectionError("fallback broken")

    async def incr_many(self, items: Sequence[IncrItem]) -> list[int]:
        raise ConnectionError("fallback broken")

    async def window_add(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        raise ConnectionError("fallback broken")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_cm_2_4_1_redis_down_activates_fallback(caplog: pytest.LogCaptureFixture) -> None:
    metrics = LimiterMetrics()
    state = build_state(DEAD_REDIS, "rl:", on_fallback=metrics.on_state_fallback)
    limiter = RateLimiter(state, metrics=metrics, clock=fixed())
    p = principal("key_down", limits={"rpm": 2})
    try:
        with caplog.at_level(logging.WARNING, logger="gatewayz.ratelimit"):
            results = [await limiter.check_key(p) for _ in range(3)]
        # Served, and still enforced, by the in-memory fallback: no error reached the caller.
        assert [d.allowed for d in results] == [True, True, False]
        assert all(d.enforced for d in results)
        assert isinstance(state, ResilientState) and state.degraded
        assert await state.fallback.get(f"rate_limit:key_down:{MINUTE}") == b"3"
        assert metrics.state_fallbacks == 1 and metrics.fail_open == 0
        assert "in-memory fallback" in caplog.text
    finally:
        await state.close()


async def test_cm_2_4_2_fallback_lru_cache_500_entries() -> None:
    settings = Settings()
    assert settings.fallback_max_entries == 500
    state = build_state(
        DEAD_REDIS,
        "rl:",
        fallback_max_entries=settings.fallback_max_entries,
        fallback_ttl_s=settings.fallback_ttl_s,
    )
    assert isinstance(state, ResilientState)
    fallback = state.fallback
    assert isinstance(fallback, MemoryState) and fallback.max_entries == 500
    limiter = RateLimiter(state, clock=fixed())
    try:
        for i in range(501):  # 501 anonymous callers, one counter each, via the fallback
            assert (await limiter.check_anonymous(f"10.0.{i // 256}.{i % 256}")).allowed
        assert len(fallback) == 500 and fallback.evictions == 1
        # The least recently used (the first caller) went; the last is still counted.
        from gatewayz.ratelimit import ip_hash

        assert await fallback.get(f"anon_rate:{ip_hash('10.0.0.0')}:{MINUTE}") is None
        assert await fallback.get(f"anon_rate:{ip_hash('10.0.1.244')}:{MINUTE}") == b"1"
    finally:
        await state.close()


async def test_cm_2_4_3_fallback_ttl_15_minutes() -> None:
    settings = Settings()
    assert settings.fallback_ttl_s == 15 * 60
    built = build_state(DEAD_REDIS, "rl:", fallback_ttl_s=settings.fallback_ttl_s)
    assert isinstance(built, ResilientState) and isinstance(built.fallback, MemoryState)
    assert built.fallback.default_ttl_s == 900
    await built.close()
    # The same fallback with a fake clock: an entry written without its own TTL lives 15 min.
    clock = FakeClock()
    fallback = MemoryState(
        prefix="rl:",
        max_entries=settings.fallback_max_entries,
        default_ttl_s=settings.fallback_ttl_s,
        clock=clock,
    )
    await fallback.set("velocity", b"1")
    clock.now += 899
    assert await fallback.get("velocity") == b"1"
    clock.now += 1.01
    assert await fallback.get("velocity") is None
    # Rate-limit counters keep their own, shorter TTL (60 s) in the fallback too.
    await fallback.incr("rate_limit:k:1", 1, 60)
    clock.now += 60.01
    assert await fallback.get("rate_limit:k:1") is None


async def test_cm_2_4_4_requests_never_blocked_by_infra_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = LimiterMetrics()
    state = ResilientState(
        build_state(DEAD_REDIS, "rl:").primary,  # type: ignore[attr-defined]
        BrokenMemory(prefix="rl:"),
        on_fallback=metrics.on_state_fallback,
    )
    with pytest.raises(StateUnavailable):
        await state.incr("x")
    limiter = RateLimiter(state, metrics=metrics, clock=fixed())
    p = principal("key_broken", limits={"rpm": 1, "tokens_per_day": 1})
    with caplog.at_level(logging.ERROR, logger="gatewayz.ratelimit"):
        decisions = [await limiter.check_key(p) for _ in range(5)]
        decisions += [await limiter.check_anonymous("192.0.2.1") for _ in range(20)]
        decisions.append(await limiter.check_ip("192.0.2.1", 1))
        decisions.append(await limiter.check_ip("192.0.2.1", 1))
        await limiter.record_tokens(p, 1000)  # does not raise either
    assert all(d.allowed and not d.enforced for d in decisions)
    assert metrics.fail_open == len(decisions) + 1
    assert "request allowed" in caplog.text
    await state.close()
