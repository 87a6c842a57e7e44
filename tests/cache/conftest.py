"""Response-cache fixtures: each store test against memory and real Redis (its own key prefix),
and gateways (in memory, and in Redis) in front of a provider simulator."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gatewayz.cache.response_redis import RedisResponseStore
from gatewayz.cache.response_store import MemoryResponseStore, ResponseStore
from gatewayz.simulators import Simulator
from gatewayz.state import RedisState
from tests.conftest import RUN_ID
from tests.e2e.harness import Gateway, gateway_settings, start_gateway


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Stores:
    """Builds stores of one backend; `redis` is set for the Redis backend."""

    name: str
    clock: FakeClock
    redis: RedisState | None = None

    def make(self, max_entries: int, max_ttl_s: float = 86_400.0) -> ResponseStore:
        if self.redis is None:
            return MemoryResponseStore(max_entries, clock=self.clock)
        return RedisResponseStore(self.redis, max_entries, max_ttl_s)


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    clock = FakeClock()
    if request.param == "memory":
        yield Stores("memory", clock)
        return
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    redis = RedisState(url, prefix=prefix)
    yield Stores("redis", clock, redis)
    await redis.close()


@pytest.fixture(autouse=True)
def _clean_upstream(request: pytest.FixtureRequest) -> None:
    if "upstream" in request.fixturenames:
        sim: Simulator = request.getfixturevalue("upstream")
        sim.clear()


def start_cached_gateway(
    tmp: Path, upstream: Simulator, redis_url: str | None = None, **overrides: Any
) -> Gateway:
    values: dict[str, Any] = {}
    if redis_url is not None:
        values["redis_url"] = redis_url
        values["redis_key_prefix"] = f"gwtest:{RUN_ID}:{secrets.token_hex(3)}:"
    values.update(overrides)
    return start_gateway(gateway_settings(tmp, upstream, **values), upstream)


def drop_prefix(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module", params=["memory", "redis"])
def gateway(
    request: pytest.FixtureRequest, upstream: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A gateway whose response cache is in memory, or in (real, shared) Redis."""
    redis_url = None
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
    gw = start_cached_gateway(tmp_path_factory.mktemp("cache"), upstream, redis_url)
    yield gw
    gw.stop()
    if redis_url is not None:
        drop_prefix(redis_url, gw.settings.redis_key_prefix)
