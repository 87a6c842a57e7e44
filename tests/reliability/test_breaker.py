"""Circuit breakers (SPEC §5, CM-5.3), each claim on MemoryState and on real Redis, with an
injected clock; plus sharing between workers, the single half-open probe, the hot path's cost
and failing open when the state is unavailable."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from gatewayz.reliability import BreakerState, CircuitBreakers
from gatewayz.state import MemoryState, StateBackend, StateUnavailable

from .conftest import FakeClock, Store

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


async def fail(b: CircuitBreakers, provider: str, times: int, model: str | None = None) -> None:
    for _ in range(times):
        await b.record_failure(provider, model)


# ---- CM-5.3 -----------------------------------------------------------------------------
async def test_cm_5_3_1_circuit_breaker_starts_closed(breakers: CircuitBreakers) -> None:
    assert await breakers.state_of("openai") is CLOSED
    assert await breakers.allow("openai") is True
    assert await breakers.snapshot() == [
        {
            "provider": "openai",
            "model": None,
            "state": "closed",
            "failures": 0,
            "opened_at": None,
            "retry_at": None,
        }
    ]


async def test_cm_5_3_2_circuit_breaker_opens_after_5_failures(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    await fail(breakers, "openai", 4)
    assert await breakers.state_of("openai") is CLOSED
    await breakers.record_failure("openai")
    assert await breakers.state_of("openai") is OPEN
    (entry,) = await breakers.snapshot()
    assert entry == {
        "provider": "openai",
        "model": None,
        "state": "open",
        "failures": 5,
        "opened_at": clock.now,
        "retry_at": clock.now + 300,
    }


async def test_cm_5_3_3_circuit_breaker_4_failures_stays_closed(
    breakers: CircuitBreakers,
) -> None:
    await fail(breakers, "openai", 4)
    assert await breakers.state_of("openai") is CLOSED
    assert await breakers.allow("openai") is True
    assert (await breakers.get("openai"))["failures"] == 4


async def test_cm_5_3_4_circuit_breaker_open_blocks_requests(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    await fail(breakers, "openai", 5)
    assert [await breakers.allow("openai") for _ in range(10)] == [False] * 10
    clock.advance(299.9)
    assert await breakers.allow("openai") is False
    assert await breakers.state_of("openai") is OPEN


async def test_cm_5_3_5_circuit_breaker_recovery_after_5_minutes(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    await fail(breakers, "openai", 5)
    clock.advance(299.0)
    assert await breakers.state_of("openai") is OPEN
    clock.advance(1.0)
    assert await breakers.state_of("openai") is HALF_OPEN
    assert (await breakers.get("openai"))["state"] == "half_open"
    assert await breakers.allow("openai") is True  # the probe
    assert await breakers.allow("openai") is False  # the probe is in flight


async def test_cm_5_3_6_circuit_breaker_half_open_success_closes(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    await fail(breakers, "openai", 5)
    clock.advance(300)
    assert await breakers.allow("openai") is True
    await breakers.record_success("openai")
    assert await breakers.state_of("openai") is CLOSED
    assert (await breakers.get("openai"))["failures"] == 0
    assert [await breakers.allow("openai") for _ in range(3)] == [True] * 3
    # Closed with a fresh count: it takes 5 failures again to open.
    await fail(breakers, "openai", 4)
    assert await breakers.state_of("openai") is CLOSED


async def test_cm_5_3_7_circuit_breaker_half_open_failure_reopens(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    await fail(breakers, "openai", 5)
    clock.advance(400)
    assert await breakers.allow("openai") is True
    await breakers.record_failure("openai")
    reopened_at = clock.now
    assert await breakers.state_of("openai") is OPEN
    entry = await breakers.get("openai")
    assert entry["opened_at"] == reopened_at and entry["retry_at"] == reopened_at + 300
    clock.advance(299)  # the timer restarted: still open 299 s after the probe failed
    assert await breakers.allow("openai") is False
    clock.advance(1)
    assert await breakers.state_of("openai") is HALF_OPEN
    assert await breakers.allow("openai") is True


async def test_cm_5_3_8_circuit_breaker_success_resets_failure_count(
    breakers: CircuitBreakers,
) -> None:
    await fail(breakers, "openai", 4)
    await breakers.record_success("openai")
    assert (await breakers.get("openai"))["failures"] == 0
    await fail(breakers, "openai", 4)  # 4 consecutive, not 8
    assert await breakers.state_of("openai") is CLOSED
    await breakers.record_failure("openai")
    assert await breakers.state_of("openai") is OPEN


async def test_cm_5_3_9_circuit_breaker_independent_per_provider(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    await fail(breakers, "openai", 5)
    await fail(breakers, "anthropic", 3)
    assert await breakers.allow("openai") is False
    assert await breakers.allow("anthropic") is True
    assert await breakers.state_of("together") is CLOSED
    # Per provider × model breakers are independent of the provider's own and of each other.
    await fail(breakers, "together", 5, model="meta-llama/llama-3:free")
    assert await breakers.allow("together", "meta-llama/llama-3:free") is False
    assert await breakers.allow("together") is True
    assert await breakers.allow("together", "other-model") is True
    await breakers.record_success("anthropic")
    assert (await breakers.get("openai"))["failures"] == 5
    states = {(e["provider"], e["model"]): e["state"] for e in await breakers.snapshot()}
    assert states == {
        ("anthropic", None): "closed",
        ("openai", None): "open",
        ("together", None): "closed",
        ("together", "meta-llama/llama-3:free"): "open",
        ("together", "other-model"): "closed",
    }


# ---- settings and keys ------------------------------------------------------------------
async def test_threshold_and_open_s_are_settings(store: Store, clock: FakeClock) -> None:
    b = store.breakers(failure_threshold=2, open_s=10.0)
    await fail(b, "openai", 2)
    assert await b.allow("openai") is False
    clock.advance(10)
    assert await b.allow("openai") is True


def test_settings_defaults_and_env() -> None:
    from gatewayz.settings import Settings

    defaults = Settings.model_fields
    assert defaults["breaker_failure_threshold"].default == 5
    assert defaults["breaker_open_s"].default == 300.0
    s = Settings.from_env(
        environ={"GATEWAYZ_BREAKER_FAILURE_THRESHOLD": "3", "GATEWAYZ_BREAKER_OPEN_S": "42.5"}
    )
    assert s.breaker_failure_threshold == 3 and s.breaker_open_s == 42.5


def test_keys(breakers: CircuitBreakers) -> None:
    assert breakers.key("openai") == "breaker:openai"
    assert breakers.key("openai", "gpt-4o") == "breaker:openai|gpt-4o"
    assert breakers.key("openai", None) == breakers.key("openai", "")
    with pytest.raises(ValueError):
        breakers.key("")


async def test_reset_closes_an_open_breaker(breakers: CircuitBreakers, clock: FakeClock) -> None:
    await fail(breakers, "openai", 5)
    await fail(breakers, "openai", 5, model="gpt-4o")
    assert await breakers.reset("openai") is True
    assert await breakers.allow("openai") is True
    assert (await breakers.get("openai"))["failures"] == 0
    assert await breakers.allow("openai", "gpt-4o") is False  # only the one named
    assert await breakers.reset("openai", "gpt-4o") is True
    assert await breakers.allow("openai", "gpt-4o") is True
    assert await breakers.reset("never-seen") is False


# ---- several workers on one store -------------------------------------------------------
async def test_two_workers_share_one_breaker(store: Store, clock: FakeClock) -> None:
    a = store.breakers(local_ttl_s=0.5)
    b = store.breakers(local_ttl_s=0.5)
    assert await b.allow("openai") is True  # b now holds a local view: closed
    await fail(a, "openai", 5)
    assert await a.allow("openai") is False
    assert await b.allow("openai") is True  # b's local view is at most local_ttl_s old...
    clock.advance(0.5)
    assert await b.allow("openai") is False  # ...then b sees the breaker a opened
    # Failures from both workers count toward one streak.
    await fail(a, "anthropic", 3)
    await fail(b, "anthropic", 2)
    assert await a.state_of("anthropic") is OPEN
    assert await b.allow("anthropic") is False
    # A reset by one worker is seen by the other within local_ttl_s.
    await a.reset("anthropic")
    clock.advance(0.5)
    assert await b.allow("anthropic") is True
    # The half-open probe's success, recorded by b, closes the breaker for a too.
    clock.advance(300)
    assert await b.allow("openai") is True
    assert await a.allow("openai") is False  # b's probe is in flight
    await b.record_success("openai")
    clock.advance(0.5)
    assert await a.allow("openai") is True


async def test_concurrent_failures_from_two_workers_open_exactly_once(store: Store) -> None:
    a, b = store.breakers(), store.breakers()
    await asyncio.gather(*(w.record_failure("openai") for w in (a, b) * 2))
    assert await a.state_of("openai") is CLOSED  # 4 failures counted, none lost
    await asyncio.gather(*(w.record_failure("openai") for w in (a, b) * 10))
    entry = await a.get("openai")
    assert entry["state"] == "open" and entry["failures"] == 5  # no count past the opening


async def test_half_open_probe_admits_exactly_one_caller(store: Store, clock: FakeClock) -> None:
    a = store.breakers(local_ttl_s=0.0)
    b = store.breakers(local_ttl_s=0.0)
    await fail(a, "openai", 5)
    clock.advance(300)
    results = await asyncio.gather(*(w.allow("openai") for w in (a, b) * 25))
    assert sum(results) == 1
    assert not any([await a.allow("openai"), await b.allow("openai")])


async def test_half_open_probe_that_never_reports_frees_its_slot(
    store: Store, clock: FakeClock
) -> None:
    b = store.breakers(probe_ttl_s=0.2)
    await fail(b, "openai", 5)
    clock.advance(300)
    assert await b.allow("openai") is True
    assert await b.allow("openai") is False
    clock.advance(0.25)  # the memory store's clock...
    if store.kind == "redis":
        await asyncio.sleep(0.25)  # ...Redis's own
    assert await b.allow("openai") is True


# ---- the hot path -----------------------------------------------------------------------
class Counting:
    """Wraps a backend; counts the calls per operation."""

    name = "counting"

    def __init__(self, inner: StateBackend) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, op: str) -> Callable[..., Awaitable[Any]]:
        target = getattr(self.inner, op)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[op] = self.calls.get(op, 0) + 1
            return await target(*args, **kwargs)

        return call


async def test_hot_path_reads_once_per_local_ttl_and_success_is_free(
    store: Store, clock: FakeClock
) -> None:
    counting = Counting(store.backend())
    b = CircuitBreakers(cast(StateBackend, counting), clock=clock, local_ttl_s=1.0)
    # Concurrent first calls share one read.
    assert all(await asyncio.gather(*(b.allow("openai") for _ in range(100))))
    for _ in range(1000):
        assert await b.allow("openai") is True
        await b.record_success("openai")
        clock.advance(0.0005)
    assert counting.calls == {"hget_all": 1}
    clock.advance(0.51)  # over one second since the read
    assert await b.allow("openai") is True
    assert counting.calls == {"hget_all": 2}
    # After a failure the next success writes (to reset the count); then it is free again.
    await b.record_failure("openai")
    await b.record_success("openai")
    await b.record_success("openai")
    assert counting.calls["breaker_update"] == 2
    # While OPEN (seen locally), failures that cannot change anything are not written.
    await fail(b, "openai", 5)
    writes = counting.calls["breaker_update"]
    await fail(b, "openai", 10)
    assert counting.calls["breaker_update"] == writes


# ---- infrastructure failure never blocks a request -------------------------------------
class Broken:
    name = "broken"

    def __getattr__(self, op: str) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            raise StateUnavailable("down")

        return call


async def test_state_unavailable_fails_open(clock: FakeClock) -> None:
    b = CircuitBreakers(cast(StateBackend, Broken()), clock=clock)
    for _ in range(10):
        await b.record_failure("openai")
        assert await b.allow("openai") is True
        await b.record_success("openai")


async def test_probe_token_unavailable_fails_open(clock: FakeClock) -> None:
    memory = MemoryState(clock=clock)
    b = CircuitBreakers(memory, clock=clock)
    await fail(b, "openai", 5)
    clock.advance(300)

    async def broken(*args: Any, **kwargs: Any) -> bool:
        raise StateUnavailable("down")

    memory.set_if_absent = broken  # type: ignore[method-assign]
    assert await b.allow("openai") is True


def test_invalid_arguments() -> None:
    state = MemoryState()
    with pytest.raises(ValueError):
        CircuitBreakers(state, failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreakers(state, open_s=-1)
