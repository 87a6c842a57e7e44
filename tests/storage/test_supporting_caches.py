"""CM-8.2.1, CM-8.2.5, CM-8.2.6, CM-8.3.1, CM-8.3.2: the auth cache's TTL, the local-memory
fallback's size and TTL, Redis down → local memory, and every cache layer missing → the
database, through the real components (Authenticator, the query cache built from settings,
ResilientState over a Redis that is down or real, SQLite and PostgreSQL), counting the SQL
statements that reach the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import update

from gatewayz.security.auth import Authenticator
from gatewayz.settings import Settings
from gatewayz.state import MemoryState, RedisState, ResilientState
from gatewayz.storage.query_cache import KEYS, USAGE, QueryCache, build_query_cache
from gatewayz.storage.tables import users
from tests.state.harness import FakeClock

from .helpers import counting, list_keys, make_world

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'gatewayz.db'}"


def _fallback(cache: QueryCache) -> MemoryState:
    assert isinstance(cache.store, ResilientState)
    fallback = cache.store.fallback
    assert isinstance(fallback, MemoryState)
    return fallback


async def test_cm_8_2_1_auth_cache_ttl_5_to_10_minutes(tmp_path: Path) -> None:
    ttl = Settings().auth_cache_ttl_s
    assert 5 * 60 <= ttl <= 10 * 60
    world = await make_world(_sqlite(tmp_path))
    clock = FakeClock()
    auth = Authenticator(world.db, world.ring, ttl_s=ttl, negative_ttl_s=5, clock=clock)
    try:
        with counting(world.db.engine) as sql:
            assert (await auth.authenticate(world.key)).plan == "dev"
            assert sql.total == 1
            async with world.db.begin() as conn:  # the user changes plan behind the cache
                await conn.execute(
                    update(users).where(users.c.id == world.user_id).values(plan="team")
                )
            clock.advance(ttl - 1)
            # Still within the TTL: the cached user data, no query.
            assert (await auth.authenticate(world.key)).plan == "dev"
            assert sql.total == 2  # the UPDATE above; no lookup
            clock.advance(1)
            # Expired at the TTL (5 min here, at most 10): read afresh.
            assert (await auth.authenticate(world.key)).plan == "team"
            assert sql.total == 3 and auth.db_lookups == 2
    finally:
        await world.db.dispose()


async def test_cm_8_2_5_local_memory_cache_500_entries() -> None:
    settings = Settings(redis_url=DEAD_REDIS)
    assert settings.fallback_max_entries == 500
    cache = build_query_cache(settings)
    fallback = _fallback(cache)
    loads: list[str] = []

    def loader(user: str) -> Any:
        async def load() -> dict[str, str]:
            loads.append(user)
            return {"user": user}

        return load

    try:
        for i in range(501):  # Redis is down: every entry goes to local memory
            assert await cache.get(KEYS, f"usr_{i}", loader(f"usr_{i}")) == {"user": f"usr_{i}"}
        assert len(fallback) == 500 and fallback.evictions == 1
        # The least recently used entry went: it is loaded again; the newest is still there.
        await cache.get(KEYS, "usr_500", loader("usr_500"))
        await cache.get(KEYS, "usr_0", loader("usr_0"))
        assert loads.count("usr_500") == 1 and loads.count("usr_0") == 2
        assert len(fallback) == 500
    finally:
        await cache.close()


async def test_cm_8_2_6_local_memory_cache_ttl_15_minutes() -> None:
    settings = Settings(redis_url=DEAD_REDIS)
    assert settings.fallback_ttl_s == 15 * 60
    clock = FakeClock()
    cache = build_query_cache(settings, clock=clock)
    fallback = _fallback(cache)
    assert cache.store is not None
    try:
        # An entry written to local memory without a TTL of its own lives 15 minutes.
        await cache.store.set("plain", b"1")
        assert fallback.default_ttl_s == 900 and await fallback.get("plain") == b"1"
        clock.advance(15 * 60 - 0.01)
        assert await cache.store.get("plain") == b"1"
        clock.advance(0.02)
        assert await cache.store.get("plain") is None
        # The query cache's own entries expire sooner, at their TTL (both within 15 minutes).
        ttl = settings.query_cache_usage_ttl_s
        assert ttl <= 15 * 60 and settings.query_cache_keys_ttl_s <= 15 * 60
        loads = 0

        async def load() -> int:
            nonlocal loads
            loads += 1
            return loads

        assert await cache.get(USAGE, "usr_1:report", load) == 1
        clock.advance(ttl - 0.01)
        assert await cache.get(USAGE, "usr_1:report", load) == 1
        clock.advance(0.02)
        assert await cache.get(USAGE, "usr_1:report", load) == 2
    finally:
        await cache.close()


async def test_cm_8_3_1_redis_down_falls_back_to_local_memory(tmp_path: Path) -> None:
    world = await make_world(_sqlite(tmp_path))
    cache = build_query_cache(Settings(redis_url=DEAD_REDIS))
    try:
        with counting(world.db.engine) as sql:
            first = await cache.get(KEYS, world.user_id, lambda: list_keys(world))
            second = await cache.get(KEYS, world.user_id, lambda: list_keys(world))
        assert [k["name"] for k in first] == ["first", "second"] and second == first
        # Redis refused the connection; the second lookup was served by local memory.
        assert isinstance(cache.store, ResilientState) and cache.store.degraded
        assert sql.total == 1 and (cache.stats.misses, cache.stats.hits) == (1, 1)
        assert await _fallback(cache).get(f"{KEYS}:{world.user_id}") is not None
    finally:
        await cache.close()
        await world.db.dispose()


async def test_cm_8_3_1_several_workers_read_the_db_while_redis_is_down(tmp_path: Path) -> None:
    """With several workers local memory cannot see the others' invalidations: the query
    cache is bypassed (the database answers) until Redis is back."""
    world = await make_world(_sqlite(tmp_path))
    cache = build_query_cache(Settings(redis_url=DEAD_REDIS, workers=2))
    try:
        with counting(world.db.engine) as sql:
            for _ in range(3):
                await cache.get(KEYS, world.user_id, lambda: list_keys(world))
        assert sql.total == 3 and cache.stats.bypassed == 3 and cache.stats.hits == 0
    finally:
        await cache.close()
        await world.db.dispose()


async def test_cm_8_3_2_all_caches_miss_falls_through_to_db(
    db_url: str, redis_url: str, redis_prefix: str
) -> None:
    world = await make_world(db_url)
    settings = Settings(redis_url=redis_url, redis_key_prefix=redis_prefix)
    worker_a, worker_b = build_query_cache(settings), build_query_cache(settings)
    redis = RedisState(redis_url, prefix=f"{redis_prefix}qc:")
    auth = Authenticator(world.db, world.ring, ttl_s=300, negative_ttl_s=5)
    try:
        with counting(world.db.engine) as sql:
            # Nothing in Redis, nothing in local memory: the database is read, once.
            listing = await worker_a.get(KEYS, world.user_id, lambda: list_keys(world))
            assert [k["name"] for k in listing] == ["first", "second"]
            assert sql.by_table["api_keys"] == 1 and worker_a.stats.misses == 1
            assert await redis.get(f"{KEYS}:{world.user_id}") is not None
            # Now Redis has it: this worker and another one are served without a query.
            assert await worker_a.get(KEYS, world.user_id, lambda: list_keys(world)) == listing
            assert await worker_b.get(KEYS, world.user_id, lambda: list_keys(world)) == listing
            assert sql.total == 1
            # Invalidated: every layer misses again, so the database is read again.
            await worker_a.invalidate(KEYS, world.user_id)
            assert await worker_b.get(KEYS, world.user_id, lambda: list_keys(world)) == listing
            assert sql.total == 2 and worker_b.stats.misses == 1
            # The auth cache the same way: a miss reads the key's row, a hit does not.
            await auth.authenticate(world.key)
            await auth.authenticate(world.key)
            assert sql.total == 3 and auth.db_lookups == 1
    finally:
        await worker_a.close()
        await worker_b.close()
        await redis.close()
        await world.db.dispose()
