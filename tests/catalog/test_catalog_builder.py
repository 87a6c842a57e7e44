"""Which offers the catalog holds (CM-9.2.1 – CM-9.2.4): priced ones only, from active
providers only; the unique view deduplicated with its providers, the full view one row per
provider offer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from gatewayz.billing.pricing import Price
from gatewayz.catalog.offers import Offer, load_offers, replace_offers
from gatewayz.catalog.query import Query
from gatewayz.simulators import Simulator
from gatewayz.simulators.model_lists import lists_of
from gatewayz.storage.catalog import record
from tests.catalog.conftest import KEY, catalog_settings, open_catalog


@pytest.fixture(scope="module")
def router_sim() -> Iterator[Simulator]:
    """A second OpenAI-compatible upstream (an aggregator with its own model list)."""
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


async def _models(catalog: Any, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(await catalog.models_body(Query(**params)))
    return body


async def test_cm_9_2_1_model_without_pricing_excluded(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    # Image, audio and made-up models: no chat price in the pricing data.
    lists_of(sim).set("openai", ["gpt-4o", "dall-e-3", "made-up-model-9", "whisper-1"])
    settings = catalog_settings(tmp_path, db_url, sim, "openai")
    async with open_catalog(settings) as catalog:
        (result,) = await catalog.sync(catalog.registry.enabled, force=True)
        assert result.status == "ok" and result.listed == 4
        assert result.models == 1 and result.excluded == {"unpriced": 3}
        ids = [m["id"] for m in (await _models(catalog))["data"]]
        assert ids == ["openai/gpt-4o"]
        async with catalog.db.begin() as conn:
            stored = await load_offers(conn, "openai")
        assert [o.native_id for o in stored] == ["gpt-4o"]  # never stored either


async def test_cm_9_2_2_model_with_inactive_provider_excluded(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    lists_of(sim).set("openai", ["gpt-4o"])
    settings = catalog_settings(tmp_path, db_url, sim, "openai")
    async with open_catalog(settings) as catalog:
        await catalog.sync(catalog.registry.enabled, force=True)
        # Rows of a provider that is registered but not served here (no key for groq), and of
        # one that is not registered at all, as a replica with other keys could have written.
        now = datetime.now(UTC)
        price = Price(prompt=Decimal("0.1"), completion=Decimal("0.2"))
        ghost = [
            Offer(
                "meta-llama/llama-3.1-8b-instruct",
                "groq",
                "llama-3.1-8b-instant",
                "x",
                8192,
                "text->text",
                price,
            ),
            Offer("gone/model", "gone-provider", "model", "y", 8192, "text->text", price),
        ]
        async with catalog.db.begin() as conn:
            for offer in ghost:
                await replace_offers(conn, offer.provider, [offer], now)
                await record(conn, offer.provider, "ok", now, models=1)
        catalog.invalidate()
        body = await _models(catalog, view="full")
        assert {o["provider_slug"] for o in body["data"]} == {"openai"}
        assert "meta-llama/llama-3.1-8b-instruct" not in {o["id"] for o in body["data"]}
        providers = orjson.loads(await catalog.providers_body())["data"]
        assert [p["slug"] for p in providers] == ["openai"]
        # An inactive provider is never asked for its list either.
        calls = lists_of(sim).calls["openai"]
        results = await catalog.sync(catalog.registry.enabled, force=True)
        assert [r.provider for r in results] == ["openai"]
        assert lists_of(sim).calls["openai"] == calls + 1


async def test_cm_9_2_3_deduplicated_view_no_duplicate_ids(
    tmp_path: Path, db_url: str, sim: Simulator, router_sim: Simulator
) -> None:
    lists_of(sim).set("openai", ["gpt-4o", "gpt-4o-mini"])
    lists_of(sim).set("anthropic", ["claude-sonnet-4-5"])
    lists_of(router_sim).set(
        "openai", ["openai/gpt-4o", "anthropic/claude-sonnet-4.5", "openai/gpt-4o-mini"]
    )
    sims = {"openai": sim, "anthropic": sim, "openrouter": router_sim}
    settings = catalog_settings(tmp_path, db_url, sims, "openai", "anthropic", "openrouter")
    async with open_catalog(settings) as catalog:
        await catalog.sync(catalog.registry.enabled, force=True)
        body = await _models(catalog)
        ids = [m["id"] for m in body["data"]]
        assert len(ids) == len(set(ids)) == body["total"] == 3
        assert ids == ["anthropic/claude-sonnet-4-5", "openai/gpt-4o", "openai/gpt-4o-mini"]
        for m in body["data"]:
            assert len({p["slug"] for p in m["providers"]}) == len(m["providers"]) == 2
        # The model's maker is its primary offer; OpenRouter's spelling is its native id.
        sonnet = body["data"][0]
        assert sonnet["provider_slug"] == "anthropic"
        assert sonnet["providers"][1] == {
            **sonnet["providers"][1],
            "slug": "openrouter",
            "native_id": "anthropic/claude-sonnet-4.5",
        }
        # With a provider filter, each model shows that provider's offer.
        routed = await _models(catalog, provider="openrouter")
        assert {m["provider_slug"] for m in routed["data"]} == {"openrouter"}
        assert routed["total"] == 3


async def test_cm_9_2_4_full_view_shows_all_providers(
    tmp_path: Path, db_url: str, sim: Simulator, router_sim: Simulator
) -> None:
    lists_of(sim).set("openai", ["gpt-4o"])
    lists_of(router_sim).set("openai", ["openai/gpt-4o"])
    sims = {"openai": sim, "openrouter": router_sim}
    settings = catalog_settings(tmp_path, db_url, sims, "openai", "openrouter")
    async with open_catalog(settings) as catalog:
        await catalog.sync(catalog.registry.enabled, force=True)
        full = await _models(catalog, view="full")
        rows = [(o["id"], o["provider_slug"], o["native_id"]) for o in full["data"]]
        assert rows == [
            ("openai/gpt-4o", "openai", "gpt-4o"),
            ("openai/gpt-4o", "openrouter", "openai/gpt-4o"),
        ]
        assert full["total"] == 2
        # Each row has its own provider's price (OpenRouter: billed at the dearest known row).
        assert all(o["pricing"]["prompt"] == "2.5" for o in full["data"])
        unique = await _models(catalog)
        assert unique["total"] == 1


async def test_offers_before_any_sync_come_from_the_pricing_data(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    settings = catalog_settings(tmp_path, db_url, sim, "openai", catalog_sync=False)
    async with open_catalog(settings, start=True) as catalog:
        body = await _models(catalog, limit=500)
        assert body["total"] > 50  # OpenAI's rows in the pricing data
        assert {p["source"] for m in body["data"] for p in m["providers"]} == {"pricing"}
        assert lists_of(sim).calls["openai"] == 0  # nothing was read from the provider
        lists_of(sim).set("openai", ["gpt-4o"])
        await catalog.sync(catalog.registry.enabled, force=True)
        after = await _models(catalog)
        assert [m["id"] for m in after["data"]] == ["openai/gpt-4o"]  # the list now decides
        assert after["data"][0]["providers"][0]["source"] == "api"


async def test_an_admin_price_override_shows_without_a_sync(
    tmp_path: Path, db_url: str, sim: Simulator
) -> None:
    lists_of(sim).set("openai", ["gpt-4o"])
    settings = catalog_settings(tmp_path, db_url, sim, "openai")
    async with open_catalog(settings) as catalog:
        await catalog.sync(catalog.registry.enabled, force=True)
        book = catalog.builder.price_book().with_overrides(
            [{"model": "openai/gpt-4o", "provider": "openai", "prompt": "2", "completion": "8"}]
        )
        catalog.builder.price_book = lambda: book
        catalog.invalidate()
        (m,) = (await _models(catalog))["data"]
        assert (m["pricing"]["prompt"], m["pricing"]["completion"]) == ("2", "8")
