"""Resolution against a synced catalog (SPEC §3 with §9): a route found only by a weak rule (the
org-prefix fallback, an aggregator) needs the provider to list the model (a catalog offer) or
price it, unless the routing data knows the name; a name nobody lists, prices or aliases is a
404 `model_not_found` with close suggestions. The catalog is a real one: providers' model lists
from simulators, synced into each database backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewayz.catalog.service import Catalog
from gatewayz.errors import ModelNotFound
from gatewayz.routing.resolve import Resolver
from gatewayz.simulators import Simulator
from gatewayz.simulators.model_lists import lists_of
from tests.catalog.conftest import KEY, catalog_settings, open_catalog

ROUTER_LIST = [
    {"id": "meta-llama/llama-3.3-70b-instruct", "context_length": 131072},
    {"id": "meta-llama/llama-3.1-405b-instruct", "context_length": 131072},
    {"id": "perplexity/sonar-medium-chat", "context_length": 16384},
    {"id": "microsoft/phi-4", "context_length": 16384},
]
UNKNOWN = "meta-llama/llama-5-400b-instruct"  # its org: served by aggregators only


@pytest.fixture(scope="module")
def router() -> Iterator[Simulator]:
    """The aggregator's upstream (openrouter)."""
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(scope="module")
def maker() -> Iterator[Simulator]:
    """A model maker's own API (deepseek: serves the `deepseek/` organisation natively)."""
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(autouse=True)
def _lists(router: Simulator, maker: Simulator) -> Iterator[None]:
    lists_of(router).set("openai", ROUTER_LIST)
    lists_of(maker).set("openai", [{"id": "deepseek-chat", "context_length": 65536}])
    yield
    lists_of(router).reset()
    lists_of(maker).reset()


def _settings(tmp_path: Path, db_url: str, router: Simulator, maker: Simulator, **kw: object):  # type: ignore[no-untyped-def]
    sims = {"openrouter": router, "deepseek": maker}
    return catalog_settings(tmp_path, db_url, sims, "openrouter", "deepseek", **kw)


async def _synced(catalog: Catalog) -> Resolver:
    results = await catalog.sync(catalog.registry.enabled, force=True)
    assert {r.status for r in results} == {"ok"}
    return Resolver(catalog.registry, known=catalog.known)


def _route(resolver: Resolver, model: str) -> list[tuple[str, str]]:
    return [(r.provider.slug, r.native_id) for r in resolver.resolve(model)]


async def test_an_unlisted_name_under_an_aggregator_only_org_is_404_with_suggestions(
    tmp_path: Path, db_url: str, router: Simulator, maker: Simulator
) -> None:
    async with open_catalog(_settings(tmp_path, db_url, router, maker)) as catalog:
        resolver = await _synced(catalog)
        with pytest.raises(ModelNotFound) as e:
            resolver.resolve(UNKNOWN)
        err = e.value
        assert (err.status, err.code, err.param) == (404, "model_not_found", "model")
        # The closest served names, each model once (not also as its alias `llama-3.1-405b-…`).
        assert err.suggestions == (
            "meta-llama/llama-3.1-405b-instruct",
            "meta-llama/llama-3.3-70b-instruct",
        )
        for name in err.suggestions:
            assert resolver.resolve(name)[-1].provider.slug == "openrouter"
        assert err.message == (
            f"The model '{UNKNOWN}' does not exist: no served provider lists, prices or "
            f"aliases it. Did you mean: {', '.join(err.suggestions)}?"
        )
        exp = resolver.explain(UNKNOWN).to_dict()
        assert exp["route"] == [] and exp["suggestions"] == list(err.suggestions)
        assert any("dropped openrouter (aggregator)" in step for step in exp["steps"])


async def test_listed_priced_and_aliased_names_still_route(
    tmp_path: Path, db_url: str, router: Simulator, maker: Simulator
) -> None:
    async with open_catalog(_settings(tmp_path, db_url, router, maker)) as catalog:
        resolver = await _synced(catalog)
        # Listed by the aggregator (its price is another provider's row: listing alone counts).
        assert _route(resolver, "perplexity/sonar-medium-chat") == [
            ("openrouter", "perplexity/sonar-medium-chat")
        ]
        # Aliases and ids the routing data knows keep every route, listed or not.
        assert ("openrouter", "deepseek/deepseek-r1") in _route(resolver, "r1")
        assert _route(resolver, "microsoft/phi-3.5-mini-128k-instruct") == [
            ("openrouter", "microsoft/phi-3.5-mini-128k-instruct")
        ]
        # A price row for the provider is enough without a listing.
        book = catalog.builder.price_book().with_overrides(
            [{"model": UNKNOWN, "provider": "openrouter", "prompt": "1", "completion": "2"}]
        )
        catalog.builder.price_book = lambda: book
        assert _route(resolver, UNKNOWN) == [("openrouter", UNKNOWN)]
        # ... but another provider's price is not the aggregator's.
        with pytest.raises(ModelNotFound):
            resolver.resolve("perplexity/sonar-small-online")


async def test_the_org_prefix_fallback_needs_the_makers_list_too(
    tmp_path: Path, db_url: str, router: Simulator, maker: Simulator
) -> None:
    async with open_catalog(_settings(tmp_path, db_url, router, maker)) as catalog:
        resolver = await _synced(catalog)
        assert _route(resolver, "deepseek/deepseek-chat")[0] == ("deepseek", "deepseek-chat")
        with pytest.raises(ModelNotFound) as e:
            resolver.resolve("deepseek/deepseek-chatt")
        # The maker's own name for its model comes first (its catalog id names it once).
        assert e.value.suggestions[0] == "deepseek/deepseek-chat"
        assert "deepseek/deepseek-v3" not in e.value.suggestions


async def test_a_typo_suggests_the_listed_model_first(
    tmp_path: Path, db_url: str, router: Simulator, maker: Simulator
) -> None:
    async with open_catalog(_settings(tmp_path, db_url, router, maker)) as catalog:
        resolver = await _synced(catalog)
        for typo in ("perplexity/sonar-medium-chta", "microsoft/phi-4o", "Perplexity/Sonar-Medium"):
            with pytest.raises(ModelNotFound) as e:
                resolver.resolve(typo)
            assert e.value.suggestions, typo
        assert resolver.explain("microsoft/phi-4o").suggestions[0] == "microsoft/phi-4"
        chta = resolver.explain("perplexity/sonar-medium-chta")
        assert chta.suggestions[0] == "perplexity/sonar-medium-chat"
        # Nothing close: no suggestion, and the message says nothing about one.
        nothing = resolver.explain("zz/qqqqqqqqqqqqqqqqqq")
        assert nothing.suggestions == () and nothing.error is not None
        assert "Did you mean" not in nothing.error.message


async def test_an_override_cannot_force_an_unlisted_name_onto_an_aggregator(
    tmp_path: Path, db_url: str, router: Simulator, maker: Simulator
) -> None:
    async with open_catalog(_settings(tmp_path, db_url, router, maker)) as catalog:
        resolver = await _synced(catalog)
        for override in ("openrouter", {"order": ["openrouter"]}, {"only": ["openrouter"]}):
            with pytest.raises(ModelNotFound):
                resolver.resolve(UNKNOWN, override)
        # A name that pins the provider is the explicit way through: not checked.
        assert _route(resolver, f"openrouter/{UNKNOWN}") == [("openrouter", UNKNOWN)]


async def test_without_a_synced_catalog_resolution_is_unchanged(
    tmp_path: Path, db_url: str, router: Simulator, maker: Simulator
) -> None:
    settings = _settings(tmp_path, db_url, router, maker, catalog_sync=False)
    async with open_catalog(settings, start=True) as catalog:
        view = catalog.known()
        assert view is not None and not view.synced  # built from the pricing data only
        resolver = Resolver(catalog.registry, known=catalog.known)
        assert _route(resolver, UNKNOWN) == [("openrouter", UNKNOWN)]
        assert lists_of(router).calls["openai"] == 0


async def test_the_answer_changes_after_a_sync_here_or_by_another_worker(
    tmp_path: Path, db_url: str, router: Simulator, maker: Simulator
) -> None:
    settings = _settings(tmp_path, db_url, router, maker)
    async with open_catalog(settings) as here, open_catalog(settings) as there:
        resolver = await _synced(here)
        with pytest.raises(ModelNotFound):
            resolver.resolve(UNKNOWN)  # and the answer is cached
        lists_of(router).set("openai", [*ROUTER_LIST, {"id": UNKNOWN, "context_length": 8192}])
        book = here.builder.price_book().with_overrides(
            [{"model": UNKNOWN, "prompt": "1", "completion": "2"}]
        )
        # Another worker syncs: this one finds out at its next check.
        there.builder.price_book = lambda: book
        (result,) = await there.sync([there.registry.providers["openrouter"]], force=True)
        assert result.status == "ok"
        await here.check()
        listed = here.known()
        assert listed is not None and listed.offers("openrouter", UNKNOWN, UNKNOWN)
        assert _route(resolver, UNKNOWN) == [("openrouter", UNKNOWN)]
        # A sync here that drops it again: refused again.
        lists_of(router).set("openai", ROUTER_LIST)
        await here.sync([here.registry.providers["openrouter"]], force=True)
        with pytest.raises(ModelNotFound):
            resolver.resolve(UNKNOWN)
