"""The background sync: due every interval, claimed by one worker at a time, run at startup
only when the catalog never synced, seen by every other worker within `catalog_check_s`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from gatewayz.catalog.query import Query
from gatewayz.simulators import Simulator
from gatewayz.simulators.model_lists import ListFault, lists_of
from tests.catalog.conftest import catalog_settings, open_catalog


async def test_concurrent_workers_sync_a_provider_once(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    lists_of(sim).set("openai", ["gpt-4o"])
    settings = catalog_settings(tmp_path, db_url, sim, "openai")
    async with open_catalog(settings) as a, open_catalog(settings) as b:
        results = await asyncio.gather(
            *(w.sync(w.registry.enabled, force=False) for w in (a, b, a, b))
        )
        statuses = sorted(r.status for (r,) in results)
        assert statuses == ["not_due", "not_due", "not_due", "ok"]
        assert lists_of(sim).calls["openai"] == 1


async def test_startup_syncs_a_never_synced_catalog_before_serving(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    lists_of(sim).set("openai", ["gpt-4o", "gpt-4o-mini"])
    settings = catalog_settings(tmp_path, db_url, sim, "openai")
    async with open_catalog(settings, start=True) as catalog:
        assert lists_of(sim).calls["openai"] == 1  # done before start() returned
        body = orjson.loads(await catalog.models_body(Query()))
        assert body["total"] == 2
    # A restart within the interval does not sync again.
    async with open_catalog(settings, start=True):
        await asyncio.sleep(0.05)
        assert lists_of(sim).calls["openai"] == 1


async def test_startup_does_not_wait_longer_than_its_budget(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    lists_of(sim).set("openai", ["gpt-4o"])
    lists_of(sim).fail("openai", ListFault(status=None, delay_s=2.0, times=1))
    settings = catalog_settings(
        tmp_path, db_url, sim, "openai", catalog_startup_wait_s=0.2, catalog_sync_timeout_s=5.0
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with open_catalog(settings, start=True) as catalog:
        assert loop.time() - started < 1.5
        # Meanwhile the pricing data answers; the slow list lands in the background.
        assert orjson.loads(await catalog.models_body(Query()))["total"] > 50
        assert catalog._first is not None
        await catalog._first
        assert orjson.loads(await catalog.models_body(Query()))["total"] == 1


async def test_other_workers_see_a_sync_within_the_check_interval(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    lists_of(sim).set("openai", ["gpt-4o"])
    settings = catalog_settings(tmp_path, db_url, sim, "openai", catalog_check_s=0.05)
    async with open_catalog(settings, start=True) as a, open_catalog(settings, start=True) as b:
        assert orjson.loads(await b.models_body(Query()))["total"] == 1
        lists_of(sim).set("openai", ["gpt-4o", "o3-mini"])
        await a.sync(a.registry.enabled, force=True)  # e.g. `gatewayz models sync`
        for _ in range(100):
            if orjson.loads(await b.models_body(Query()))["total"] == 2:
                break
            await asyncio.sleep(0.02)
        assert orjson.loads(await b.models_body(Query()))["total"] == 2


async def test_due_syncs_run_in_the_background(tmp_path: Path, db_url: str, sim: Simulator) -> None:
    lists_of(sim).set("openai", ["gpt-4o"])
    settings = catalog_settings(
        tmp_path,
        db_url,
        sim,
        "openai",
        catalog_check_s=0.05,
        catalog_sync_interval_s=0.2,
        catalog_sync_retry_s=0.01,
    )
    async with open_catalog(settings, start=True) as catalog:
        lists_of(sim).set("openai", ["gpt-4o", "gpt-4o-mini"])
        for _ in range(100):
            if lists_of(sim).calls["openai"] >= 2:
                break
            await asyncio.sleep(0.02)
        assert lists_of(sim).calls["openai"] >= 2
        for _ in range(100):
            if orjson.loads(await catalog.models_body(Query()))["total"] == 2:
                break
            await asyncio.sleep(0.02)
        assert orjson.loads(await catalog.models_body(Query()))["total"] == 2


async def test_providers_without_a_list_api_are_never_called(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    settings = catalog_settings(tmp_path, db_url, sim, "aws-bedrock", simulated_provider=True)
    async with open_catalog(settings, start=True) as catalog:
        results = {r.provider: r for r in await catalog.sync(catalog.registry.enabled, force=True)}
        assert results["aws-bedrock"].status == "skipped"
        assert "ListFoundationModels" in results["aws-bedrock"].detail
        assert sim.requests == []
        body = orjson.loads(await catalog.models_body(Query(provider="aws-bedrock")))
        assert body["total"] > 100  # Bedrock's rows in the pricing data
