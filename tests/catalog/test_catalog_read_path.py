"""The catalog's read path (CM-9.3.1 – CM-9.3.3): user requests read cache → database, never a
provider API; a failed sync keeps the last good data; an L1 hit answers from the stored bytes.
The < 10 ms figure of CM-9.3.3 is measured by bench/catalog_bench.py, not asserted here."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gatewayz.catalog.query import Query
from gatewayz.simulators import Simulator
from gatewayz.simulators.model_lists import ListFault, lists_of
from gatewayz.storage.db import Database
from tests.catalog.conftest import catalog_settings, open_catalog

SLUGS = ("openai", "anthropic", "google-ai-studio", "cohere")


def _script(sim: Simulator) -> None:
    lists_of(sim).set("openai", ["gpt-4o", "gpt-4o-mini"])
    lists_of(sim).set("anthropic", ["claude-sonnet-4-5"])
    lists_of(sim).set("gemini", ["gemini-2.5-flash"])
    lists_of(sim).set("cohere", ["command-r-plus"])


def _list_calls(sim: Simulator) -> tuple[int, int]:
    """(list calls the simulator counted, requests it received)."""
    return sum(lists_of(sim).calls.values()), len(sim.requests)


async def test_cm_9_3_1_catalog_served_from_cache_not_provider(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    _script(sim)
    settings = catalog_settings(tmp_path, db_url, sim, *SLUGS)
    async with open_catalog(settings, start=True) as catalog:  # the startup sync reads the lists
        assert lists_of(sim).calls == {"openai": 1, "anthropic": 1, "gemini": 1, "cohere": 1}
        before = _list_calls(sim)
        loads = catalog.l2.builds
        reads = [
            lambda: catalog.models_body(Query()),
            lambda: catalog.models_body(Query(view="full", q="gpt")),
            lambda: catalog.model_body("openai/gpt-4o"),
            catalog.providers_body,
            catalog.openai_list_body,
            lambda: catalog.openai_model_body("google/gemini-2.5-flash"),
        ]
        for _ in range(20):
            for read in reads:
                await read()
        # Each list was loaded once, from the DB, when the startup sync published what the
        # providers list (routing reads it): no read loaded one again.
        assert catalog.l2.builds == loads
        catalog.invalidate()  # every cache empty: the next reads go to the database
        for read in reads:
            await read()
        assert catalog.l2.builds == loads + len(SLUGS)
        assert _list_calls(sim) == before  # no provider API was called by any read
        body = orjson.loads(await catalog.models_body(Query()))
        assert body["total"] == 5


@pytest.mark.parametrize(
    "fault",
    [ListFault(status=503), ListFault(malformed=True), ListFault(status=None, delay_s=3.0)],
    ids=["http-503", "malformed", "timeout"],
)
async def test_cm_9_3_2_provider_api_down_serves_last_sync(
    tmp_path: Path, db_url: str, sim: Simulator, fault: ListFault
) -> None:
    _script(sim)
    settings = catalog_settings(tmp_path, db_url, sim, *SLUGS, catalog_sync_timeout_s=1.0)
    async with open_catalog(settings) as catalog:
        results = await catalog.sync(catalog.registry.enabled, force=True)
        assert {r.status for r in results} == {"ok"}
        good = orjson.loads(await catalog.models_body(Query()))
        assert good["total"] == 5
        # The provider's list now fails, and even lists something else once it answers.
        lists_of(sim).set("openai", ["o3-mini"])
        lists_of(sim).fail("openai", fault)
        results = {r.provider: r for r in await catalog.sync(catalog.registry.enabled, force=True)}
        assert results["openai"].status == "failed"
        assert "model list unreadable" in results["openai"].detail
        assert results["anthropic"].status == "ok"
        catalog.invalidate()  # not even a cache: straight from the database
        after = orjson.loads(await catalog.models_body(Query()))
        assert after["data"] == good["data"]
        providers = {p["slug"]: p for p in orjson.loads(await catalog.providers_body())["data"]}
        assert providers["openai"]["sync"]["status"] == "failed"
        assert providers["openai"]["sync"]["models"] == 2  # the last good sync's count
        assert providers["openai"]["source"] == "api"
        lists_of(sim).reset("openai")
        lists_of(sim).set("openai", ["o3-mini"])
        openai = catalog.registry.providers["openai"]
        (ok,) = await catalog.sync([openai], force=True)
        assert ok.status == "ok"
        ids = [m["id"] for m in orjson.loads(await catalog.models_body(Query()))["data"]]
        assert "openai/o3-mini" in ids and "openai/gpt-4o" not in ids  # recovered: new list


async def test_cm_9_3_3_l1_hit_answers_from_the_stored_bytes(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    _script(sim)
    settings = catalog_settings(tmp_path, db_url, sim, *SLUGS)
    async with open_catalog(settings) as catalog:
        await catalog.sync(catalog.registry.enabled, force=True)
        q = Query(view="full", capabilities=("tools",), min_context=100_000)
        first = await catalog.models_body(q)
        builds, loads = catalog.l1.builds, catalog.l2.builds
        healthy_db = catalog.db
        catalog.db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")  # unreachable
        try:
            for _ in range(100):
                assert await catalog.models_body(q) is first
        finally:
            catalog.db = healthy_db
        assert (catalog.l1.builds, catalog.l2.builds) == (builds, loads)
        assert catalog.l1.hits == 100


async def test_without_the_database_the_catalog_is_503_until_it_returns(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    _script(sim)
    settings = catalog_settings(tmp_path, db_url, sim, *SLUGS)
    async with open_catalog(settings) as catalog:
        await catalog.sync(catalog.registry.enabled, force=True)
        healthy_db = catalog.db
        catalog.db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
        catalog.invalidate()  # nothing cached: the read needs the database
        try:
            with pytest.raises(Exception) as err:
                await catalog.models_body(Query())
            assert getattr(err.value, "status", None) == 503
        finally:
            catalog.db = healthy_db
        assert orjson.loads(await catalog.models_body(Query()))["total"] == 5
