"""The catalog's supporting caches (CM-8.2.2 – CM-8.2.4): L1 whole responses for 5 minutes with
stampede protection, L2 per-provider lists for 15–30 minutes, health data for 6 minutes; each
with an injected clock."""

from __future__ import annotations

import asyncio
import random
import secrets
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import insert

from gatewayz.catalog.cache import TTLCache
from gatewayz.catalog.query import Query
from gatewayz.simulators import Simulator
from gatewayz.simulators.model_lists import lists_of
from gatewayz.storage.tables import incidents
from tests.catalog.conftest import Clock, catalog_settings, open_catalog

MINUTE = 60.0


async def test_cm_8_2_2_catalog_l1_cache_ttl_5_minutes(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    lists_of(sim).set("openai", ["gpt-4o"])
    settings = catalog_settings(tmp_path, db_url, sim, "openai")
    assert settings.catalog_l1_ttl_s == 5 * MINUTE
    clock = Clock()
    async with open_catalog(settings, clock=clock) as catalog:
        await catalog.sync(catalog.registry.enabled, force=True)
        first = await catalog.models_body(Query())
        assert catalog.l1.builds == 1
        assert orjson.loads(first)["total"] == 1
        clock.advance(5 * MINUTE - 1)
        assert await catalog.models_body(Query()) is first  # the stored bytes themselves
        assert (catalog.l1.builds, catalog.l1.hits) == (1, 1)
        clock.advance(2)  # past 5 minutes: rebuilt
        again = await catalog.models_body(Query())
        assert again is not first and again == first
        assert catalog.l1.builds == 2


async def test_cm_8_2_2_catalog_l1_concurrent_misses_share_one_build(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    lists_of(sim).set("openai", ["gpt-4o", "gpt-4o-mini"])
    settings = catalog_settings(tmp_path, db_url, sim, "openai")
    async with open_catalog(settings) as catalog:
        await catalog.sync(catalog.registry.enabled, force=True)
        bodies = await asyncio.gather(*(catalog.models_body(Query()) for _ in range(50)))
        assert len({id(b) for b in bodies}) == 1  # one build, every caller got its bytes
        assert (catalog.l1.builds, catalog.l2.builds) == (1, 1)
        assert catalog.l1.misses == 50


async def test_l1_stampede_survives_the_first_caller_going_away() -> None:
    release = asyncio.Event()
    calls = 0

    async def slow() -> bytes:
        nonlocal calls
        calls += 1
        await release.wait()
        return b"built"

    cache: TTLCache[str, bytes] = TTLCache(lambda _: 300.0)
    first = asyncio.ensure_future(cache.get("k", slow))
    others = [asyncio.ensure_future(cache.get("k", slow)) for _ in range(10)]
    await asyncio.sleep(0)
    first.cancel()  # the caller that started the build disconnects
    release.set()
    assert await asyncio.gather(*others) == [b"built"] * 10
    assert calls == 1 and cache.fresh("k") == b"built"


async def test_l1_is_bounded_by_entries_and_bytes() -> None:
    clock = Clock()
    cache: TTLCache[int, bytes] = TTLCache(
        lambda _: 300.0, max_entries=3, max_bytes=25, size=len, clock=clock
    )
    for i in range(5):
        await cache.get(i, lambda i=i: _value(b"x" * 10 + bytes([i])))
    assert len(cache) == 2 and cache.bytes == 22  # 3 entries would be 33 bytes > 25
    assert cache.fresh(0) is None and cache.fresh(4) is not None  # oldest out first


async def _value(v: bytes) -> bytes:
    return v


async def test_l2_serves_an_expired_list_while_it_reloads_and_keeps_it_on_failure() -> None:
    clock = Clock()
    cache: TTLCache[str, bytes] = TTLCache(
        lambda _: 900.0, refresh_ahead=True, stale_on_error_s=60.0, clock=clock
    )
    await cache.get("p", lambda: _value(b"old"))
    clock.advance(901)
    release = asyncio.Event()

    async def slow() -> bytes:
        await release.wait()
        return b"new"

    assert await cache.get("p", slow) == b"old"  # at once, not after the reload
    assert len(cache.pending()) == 1
    release.set()
    await asyncio.gather(*cache.pending())
    assert await cache.get("p", slow) == b"new"

    async def broken() -> bytes:
        raise OSError("database unreachable")

    clock.advance(901)
    assert await cache.get("p", broken) == b"new"
    await asyncio.gather(*cache.pending(), return_exceptions=True)
    assert cache.expires_at("p") == clock.now + 60.0  # kept a minute longer


async def test_cm_8_2_3_catalog_l2_cache_ttl_15_to_30_minutes(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    lists_of(sim).set("openai", ["gpt-4o"])
    lists_of(sim).set("anthropic", ["claude-sonnet-4-5"])
    lists_of(sim).set("cohere", ["command-r-plus"])
    settings = catalog_settings(tmp_path, db_url, sim, "openai", "anthropic", "cohere")
    assert (settings.catalog_l2_ttl_min_s, settings.catalog_l2_ttl_max_s) == (900.0, 1800.0)
    clock = Clock()
    async with open_catalog(settings, clock=clock, rng=random.Random(7)) as catalog:
        await catalog.sync(catalog.registry.enabled, force=True)
        await catalog.models_body(Query())
        ttls = {p: catalog.l2.expires_at(p) - clock.now for p in ("openai", "anthropic", "cohere")}
        assert all(15 * MINUTE <= t <= 30 * MINUTE for t in ttls.values()), ttls
        assert len(set(ttls.values())) == 3  # jittered: loaded together, not expiring together
        loads = catalog.l2.builds
        soonest = min(ttls.values())
        clock.advance(soonest - 1)
        catalog.l1.clear()  # an L1 miss: the lists still come from L2
        await catalog.models_body(Query())
        assert catalog.l2.builds == loads
        clock.advance(2)  # the first list expired: only it reloads (from the database)
        catalog.l1.clear()
        await catalog.models_body(Query())  # served meanwhile from the expired list
        await asyncio.gather(*catalog.l2.pending())
        assert catalog.l2.builds == loads + 1
        reloaded = min(ttls, key=ttls.__getitem__)
        assert 15 * MINUTE <= catalog.l2.expires_at(reloaded) - clock.now <= 30 * MINUTE
        clock.advance(30 * MINUTE)  # all of them expired
        catalog.l1.clear()
        await catalog.models_body(Query())
        await asyncio.gather(*catalog.l2.pending())
        assert catalog.l2.builds == loads + 4


async def test_cm_8_2_4_health_cache_ttl_6_minutes(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    lists_of(sim).set("openai", ["gpt-4o"])
    settings = catalog_settings(tmp_path, db_url, sim, "openai")
    assert settings.catalog_health_ttl_s == 6 * MINUTE
    clock = Clock()
    async with open_catalog(settings, clock=clock) as catalog:
        await catalog.sync(catalog.registry.enabled, force=True)

        async def status() -> str:
            catalog.l1.clear()  # only the health cache may answer from memory
            body = orjson.loads(await catalog.model_body("openai/gpt-4o"))
            return str(body["health_status"])

        assert await status() == "operational"
        await _open_incident(catalog, "openai", "gpt-4o", "high")
        clock.advance(6 * MINUTE - 1)
        assert await status() == "operational"  # the health data is still the cached one
        clock.advance(2)
        assert await status() == "down"  # expired after 6 minutes: the incident shows


async def _open_incident(catalog, provider: str, model: str, severity: str) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    async with catalog.db.begin() as conn:
        await conn.execute(
            insert(incidents).values(
                id=f"inc_{secrets.token_hex(6)}",
                provider=provider,
                model=model,
                severity=severity,
                status="open",
                title="test incident",
                started_at=now,
                updated_at=now,
                details={},
            )
        )


@pytest.mark.parametrize("severity,expected", [("low", "degraded"), ("critical", "down")])
async def test_health_status_follows_incident_severity(
    tmp_path: Path, db_url: str, sim: Simulator, severity: str, expected: str
) -> None:
    lists_of(sim).set("openai", ["gpt-4o"])
    settings = catalog_settings(tmp_path, db_url, sim, "openai")
    async with open_catalog(settings) as catalog:
        await catalog.sync(catalog.registry.enabled, force=True)
        # critical incidents are provider-wide (model ''), low ones are the model's
        await _open_incident(
            catalog, "openai", "" if severity == "critical" else "gpt-4o", severity
        )
        body = orjson.loads(await catalog.model_body("openai/gpt-4o"))
        assert body["health_status"] == expected
        assert body["providers"][0]["health_status"] == expected
