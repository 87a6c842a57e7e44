"""`store`: the same rate-limit test against MemoryState and RedisState (real Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from gatewayz.security.auth import Principal
from gatewayz.state import MemoryState, RedisState, StateBackend

# A fixed wall-clock moment, 30 s into its minute (1_700_000_010 = 28_333_333 * 60 + 30).
NOW = 1_700_000_010.0
MINUTE = 28_333_333


@dataclass
class Store:
    kind: str
    state: StateBackend
    prefix: str

    async def ttl(self, key: str) -> float | None:
        """TTL of the exact stored key (prefix included), read from the store itself."""
        if isinstance(self.state, RedisState):
            ms: int = await self.state.client.pttl(self.prefix + key)
            return None if ms < 0 else ms / 1000
        return await self.state.ttl(key)

    async def exists(self, key: str) -> bool:
        if isinstance(self.state, RedisState):
            return bool(await self.state.client.exists(self.prefix + key))
        return await self.state.get(key) is not None


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield Store("memory", MemoryState(prefix="rl:"), "rl:")
        return
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    state = RedisState(url, prefix=prefix)
    try:
        yield Store("redis", state, prefix)
    finally:
        await state.close()


def principal(
    key_id: str = "key_1", plan: str = "trial", limits: dict[str, Any] | None = None
) -> Principal:
    return Principal(
        api_key_id=key_id,
        user_id="user_1",
        env="test",
        role="dev",
        plan=plan,
        expires_at=None,
        record={"limits": limits},
    )


def fixed(now: float = NOW) -> Callable[[], float]:
    return lambda: now
