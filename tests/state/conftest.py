"""`backend`: the same test against MemoryState (fake clock) and RedisState (real Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gatewayz.state import MemoryState, RedisState, StateBackend

from .harness import Backend, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Backend]:
    if request.param == "memory":
        stores: dict[str, MemoryState] = {}

        async def advance_fake(seconds: float) -> None:
            clock.advance(seconds)

        def memory_sibling(suffix: str) -> StateBackend:
            return stores.setdefault(suffix, MemoryState(prefix=f"{suffix}:", clock=clock))

        b = Backend("memory", MemoryState(prefix="a:", clock=clock), advance_fake, memory_sibling)
    else:
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")

        async def advance_real(seconds: float) -> None:
            await asyncio.sleep(seconds)

        def redis_sibling(suffix: str) -> StateBackend:
            state = RedisState(url, prefix=f"{prefix}{suffix}:")
            b.opened.append(state)
            return state

        b = Backend("redis", RedisState(url, prefix=f"{prefix}a:"), advance_real, redis_sibling)
    yield b
    for state in [b.state, *b.opened]:
        await state.close()
