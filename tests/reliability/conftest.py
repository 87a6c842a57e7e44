"""`store`: circuit breakers on MemoryState (one process) or on real Redis (an isolated key
prefix per test), with an injected clock; `store.breakers()` makes another CircuitBreakers on the
same store, as another worker would have."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from gatewayz.reliability import CircuitBreakers
from gatewayz.state import MemoryState, RedisState, StateBackend


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Store:
    kind: str
    clock: FakeClock
    states: list[StateBackend] = field(default_factory=list)
    url: str = ""
    prefix: str = ""

    def backend(self) -> StateBackend:
        """Memory: the one shared store; Redis: a new client (a worker's own connection)."""
        if self.kind == "memory":
            if not self.states:
                self.states.append(MemoryState(prefix="gw:", clock=self.clock))
            return self.states[0]
        state = RedisState(self.url, prefix=self.prefix)
        self.states.append(state)
        return state

    def breakers(self, **kwargs: Any) -> CircuitBreakers:
        kwargs.setdefault("clock", self.clock)
        return CircuitBreakers(self.backend(), **kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Store]:
    if request.param == "memory":
        s = Store("memory", clock)
    else:
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        s = Store("redis", clock, url=url, prefix=prefix)
    yield s
    for state in s.states:
        await state.close()


@pytest.fixture
def breakers(store: Store) -> CircuitBreakers:
    return store.breakers()
