"""The catalog's schema (CM-9.1.1 – CM-9.1.5) over a running gateway: providers synced from their
model list APIs (simulated, one per OpenAI-compatible provider so each has its own list), one
whose list fails from the start and one without a list API (both served from the pricing data),
read back page by page through `GET /catalog/models`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from gatewayz.billing.pricing import PriceBook
from gatewayz.canonical.modality import MODALITIES
from gatewayz.routing.resolve import Route
from gatewayz.simulators import Simulator
from gatewayz.simulators.model_lists import ListFault, lists_of
from tests.catalog.conftest import KEY, provider_env
from tests.e2e.harness import Gateway, gateway_settings, start_gateway

CANONICAL = re.compile(r"^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9@._:~+-][^\s]*$")
OPENROUTER_LIST = [
    {
        "id": "openai/gpt-4o",
        "name": "OpenAI: GPT-4o",
        "context_length": 128000,
        "input_modalities": ["text", "image"],
        "output_modalities": ["text"],
        "tools": True,
    },
    {"id": "anthropic/claude-sonnet-4.5", "name": "Anthropic: Claude Sonnet 4.5"},
    {
        "id": "meta-llama/llama-3.3-70b-instruct",
        "context_length": 131072,
        "hugging_face_id": "meta-llama/Llama-3.3-70B-Instruct",
        "tools": True,
    },
    {"id": "nobody/unpriced-model-x"},
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    sims = {name: Simulator(api_key=KEY) for name in ("main", "openrouter", "fireworks")}
    for s in sims.values():
        s.start_in_thread()
    main = sims["main"]
    lists_of(main).set("openai", ["gpt-4o", "gpt-4o-mini", "o3-mini", "dall-e-3"])
    lists_of(main).set(
        "anthropic", [{"id": "claude-sonnet-4-5", "name": "Claude Sonnet 4.5"}, "claude-haiku-4-5"]
    )
    lists_of(main).set(
        "gemini",
        [
            {"id": "gemini-2.5-flash", "name": "Gemini 2.5 Flash", "context_length": 1048576},
            {"id": "text-embedding-004", "output_modalities": ["embeddings"]},
        ],
    )
    lists_of(main).set("cohere", [{"id": "command-r-plus", "tools": True}])
    lists_of(sims["openrouter"]).set("openai", OPENROUTER_LIST)
    lists_of(sims["fireworks"]).fail("openai", ListFault(status=500))
    by_slug = {
        "openai": main,
        "anthropic": main,
        "google-ai-studio": main,
        "cohere": main,
        "aws-bedrock": main,
        "openrouter": sims["openrouter"],
        "fireworks": sims["fireworks"],
    }
    env = provider_env(by_slug, *by_slug)
    gw = start_gateway(
        gateway_settings(tmp_path_factory.mktemp("catalog"), main, provider_env=env), main
    )
    yield gw
    gw.stop()
    for s in sims.values():
        s.stop_thread()


def _pages(gw: Gateway, view: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        r = httpx2.get(
            f"{gw.root}/catalog/models",
            params={"view": view, "limit": 500, "offset": offset},
            trust_env=False,
        )
        assert r.status_code == 200, r.text
        page = r.json()
        out += page["data"]
        offset = page["next_offset"]
    assert len(out) == page["total"]
    return out


@pytest.fixture(scope="module")
def models(gateway: Gateway) -> list[dict[str, Any]]:
    found = _pages(gateway, "unique")
    # Synced lists and the pricing data together: hundreds of models, from both sources.
    assert len(found) > 300
    sources = {p["source"] for m in found for p in m["providers"]}
    assert sources == {"api", "pricing"}
    return found


@pytest.fixture(scope="module")
def offers(gateway: Gateway) -> list[dict[str, Any]]:
    return _pages(gateway, "full")


def test_cm_9_1_1_every_model_has_required_fields(
    models: list[dict[str, Any]], offers: list[dict[str, Any]]
) -> None:
    required = {
        "id": str,
        "name": str,
        "provider_slug": str,
        "context_length": int,
        "modality": str,
        "pricing": dict,
        "supports_streaming": bool,
        "supports_function_calling": bool,
        "supports_vision": bool,
        "health_status": str,
    }
    for entry in [*models, *offers]:
        for name, kind in required.items():
            assert isinstance(entry.get(name), kind), (name, entry)
        assert entry["name"] and entry["provider_slug"]
        assert entry["health_status"] in ("operational", "degraded", "down")
        assert "benchmarks" in entry and "huggingface" in entry  # null when not known
    for m in models:
        assert m["providers"], m
        assert m["provider_slug"] in {p["slug"] for p in m["providers"]}
        for p in m["providers"]:
            assert {"slug", "native_id", "pricing", "context_length", "health_status"} <= set(p)
    llama = next(m for m in models if m["id"] == "meta-llama/llama-3.3-70b-instruct")
    assert llama["huggingface"]["id"] == "meta-llama/Llama-3.3-70B-Instruct"  # from the list


def test_cm_9_1_2_model_id_is_canonical_format(
    gateway: Gateway, models: list[dict[str, Any]], offers: list[dict[str, Any]]
) -> None:
    registry = gateway.services.registry
    orgs = {slug for slug in registry.providers}  # `{provider}/{native}` pins a provider
    orgs |= {o for p in registry.providers.values() for o in p.orgs}
    orgs |= {m.partition("/")[0] for m in PriceBook.load().models}
    orgs |= {c.partition("/")[0] for c in gateway.services.resolver.data.aliases.values()}
    for m in models:
        assert CANONICAL.match(m["id"]), m["id"]
        assert m["id"].partition("/")[0] in orgs, m["id"]
    # The ids are usable: sent by a client, each reaches the offer's provider and native id.
    resolver = gateway.services.resolver
    for o in offers:
        routes = {(r.provider.slug, r.native_id) for r in resolver.resolve(o["id"])}
        assert (o["provider_slug"], o["native_id"]) in routes, o
    ids = {m["id"] for m in models}
    assert {"openai/gpt-4o", "anthropic/claude-sonnet-4-5", "google/gemini-2.5-flash"} <= ids
    assert "cohere/command-r-plus" in ids


def test_cm_9_1_3_pricing_field_never_null(gateway: Gateway, offers: list[dict[str, Any]]) -> None:
    meter, providers = gateway.services.meter, gateway.services.registry.providers
    for o in offers:
        pricing = o["pricing"]
        assert pricing is not None and {"prompt", "completion"} <= set(pricing), o
        prompt, completion = Decimal(pricing["prompt"]), Decimal(pricing["completion"])
        assert prompt >= 0 and completion >= 0 and prompt + completion > 0, o
        # The price shown is the price a request is charged.
        route = Route(providers[o["provider_slug"]], o["native_id"], o["id"])
        assert meter.lookup(route).price.as_row() == pricing, o


def test_cm_9_1_4_modality_is_known_type(
    models: list[dict[str, Any]], offers: list[dict[str, Any]]
) -> None:
    seen = {e["modality"] for e in [*models, *offers]}
    assert seen <= MODALITIES
    assert {"text->text", "text+image->text"} <= seen
    for example in ("text->text", "text->image", "image->text", "text->audio", "audio->text"):
        assert example in MODALITIES
    assert "text=>text" not in MODALITIES and "->text" not in MODALITIES
    flash = next(m for m in models if m["id"] == "google/gemini-2.5-flash")
    assert flash["modality"] == "text+image+audio+video->text" and flash["supports_vision"]


def test_cm_9_1_5_context_length_is_positive_integer(
    models: list[dict[str, Any]], offers: list[dict[str, Any]]
) -> None:
    for e in [*models, *offers]:
        assert type(e["context_length"]) is int and e["context_length"] > 0, e
    for m in models:
        for p in m["providers"]:
            assert type(p["context_length"]) is int and p["context_length"] > 0
    flash = next(m for m in models if m["id"] == "google/gemini-2.5-flash")
    assert flash["context_length"] == 1048576  # what the provider's list says


def test_catalog_endpoints_answer_in_openai_error_shape(gateway: Gateway) -> None:
    bad = httpx2.get(f"{gateway.root}/catalog/models?limit=0", trust_env=False)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"
    missing = httpx2.get(f"{gateway.root}/catalog/models/nobody/nothing", trust_env=False)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    one = httpx2.get(f"{gateway.root}/catalog/models/openai/gpt-4o", trust_env=False).json()
    assert [p["slug"] for p in one["providers"]] == ["openai", "openrouter"]


def test_catalog_providers_lists_each_served_provider_with_its_sync(gateway: Gateway) -> None:
    r = httpx2.get(f"{gateway.root}/catalog/providers", trust_env=False)
    assert r.status_code == 200
    rows = {p["slug"]: p for p in r.json()["data"]}
    assert rows["openai"]["sync"]["status"] == "ok" and rows["openai"]["source"] == "api"
    assert rows["openai"]["sync"]["excluded"] == {"unpriced": 1}  # dall-e-3
    assert rows["fireworks"]["sync"]["status"] == "failed"
    assert rows["fireworks"]["source"] == "pricing" and rows["fireworks"]["models"] > 100
    assert rows["aws-bedrock"]["sync"]["status"] == "skipped"
    assert rows["aws-bedrock"]["models"] > 100
    assert rows["simulated"]["sync"]["status"] == "skipped" and rows["simulated"]["models"] == 0
    assert "groq" not in rows  # not served


def test_v1_models_lists_the_catalog_then_configured_and_simulated(gateway: Gateway) -> None:
    headers = {"Authorization": f"Bearer {gateway.api_key}"}
    r = httpx2.get(f"{gateway.base_url}/models", headers=headers, trust_env=False)
    assert r.status_code == 200
    body = r.json()
    ids = [m["id"] for m in body["data"]]
    assert body["object"] == "list" and len(ids) == len(set(ids))
    assert "openai/gpt-4o" in ids and "simulated/echo" in ids
    assert all(m["object"] == "model" for m in body["data"])
    one = httpx2.get(
        f"{gateway.base_url}/models/anthropic/claude-sonnet-4-5", headers=headers, trust_env=False
    ).json()
    assert one["owned_by"] == "anthropic" and one["context_length"] == 200000
    assert httpx2.get(f"{gateway.base_url}/models", trust_env=False).status_code == 401
