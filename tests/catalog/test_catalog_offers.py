"""Offers from listed models: naming (native id → model id that routes back), pricing exactly as
billing prices, capabilities from the data (generated with the prices) and from the lists."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from gatewayz.billing.pricing import PRICES_FILE, PriceBook
from gatewayz.canonical.modality import MODALITIES, is_modality, modality
from gatewayz.catalog.capabilities import CAPABILITIES_FILE, CapabilityTable
from gatewayz.catalog.naming import Naming
from gatewayz.catalog.offers import OfferBuilder, offer_price
from gatewayz.providers.provider import Listed
from gatewayz.providers.registry import Registry, load_registry
from gatewayz.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(Settings(env="test"), simulated_base_url="http://127.0.0.1:1/v1")


@pytest.fixture(scope="module")
def builder(registry: Registry) -> OfferBuilder:
    return OfferBuilder(Naming(registry), CapabilityTable.load(), PriceBook.load, max_offers=3)


@pytest.mark.parametrize(
    "slug,native,model_id",
    [
        ("openai", "gpt-4o", "openai/gpt-4o"),  # the org the provider serves natively
        ("openrouter", "anthropic/claude-sonnet-4.5", "anthropic/claude-sonnet-4-5"),  # alias
        ("groq", "llama-3.3-70b-versatile", "meta-llama/llama-3.3-70b-instruct"),  # native_ids
        ("deepseek", "deepseek-chat", "deepseek/deepseek-v3"),
        # No canonical id routes there: the id that pins the provider.
        ("groq", "qwen/qwen3.8-27b", "groq/qwen/qwen3.8-27b"),
        (
            "fireworks",
            "accounts/fireworks/models/chronos-hermes-13b-v2",
            "fireworks/accounts/fireworks/models/chronos-hermes-13b-v2",
        ),
        ("openai", "ft:gpt-4o-2024-08-06", None),  # nothing a client sends reaches it
    ],
)
def test_model_ids_route_back_to_the_offer(
    registry: Registry, slug: str, native: str, model_id: str | None
) -> None:
    naming = Naming(registry)
    provider = registry.providers[slug]
    assert naming.model_id(provider, native) == model_id
    if model_id is not None:
        routes = naming.resolver.explain(model_id).candidates
        assert any(c.provider is provider and c.native_id == native for c in routes)


def test_prices_are_billings_and_free_or_missing_ones_are_none() -> None:
    book = PriceBook.load()
    assert offer_price(book, "openai/gpt-4o", "openai", "gpt-4o").as_row()["prompt"] == "2.5"
    assert offer_price(book, "openai/dall-e-3", "openai", "dall-e-3") is None  # default rate
    assert offer_price(book, "openai/gpt-4o:free", "openrouter", "openai/gpt-4o:free") is None
    assert offer_price(book, "simulated/echo", "simulated", "simulated/echo") is None
    zero = book.with_overrides(
        [{"model": "openai/gpt-4o", "provider": "openai", "prompt": "0", "completion": "0"}]
    )
    assert offer_price(zero, "openai/gpt-4o", "openai", "gpt-4o") is None


def test_the_list_wins_over_the_data_where_it_speaks(
    registry: Registry, builder: OfferBuilder
) -> None:
    openai = registry.providers["openai"]
    offers, excluded = builder.build(
        openai,
        [
            Listed("gpt-4o"),
            Listed("gpt-4o-mini", name="GPT-4o mini", context_length=64000, tools=False),
            Listed("gpt-4o"),  # listed twice: once
            Listed("no-such-model"),
        ],
    )
    assert excluded == {"unpriced": 1}
    gpt, mini = offers
    assert (gpt.name, gpt.context_length, gpt.modality, gpt.tools, gpt.vision) == (
        "gpt-4o",
        128000,
        "text+image->text",
        True,
        True,
    )
    assert (mini.name, mini.context_length, mini.tools) == ("GPT-4o mini", 64000, False)
    assert gpt.price.prompt == Decimal("2.5") and gpt.source == "api"


def test_offers_per_provider_are_bounded(registry: Registry, builder: OfferBuilder) -> None:
    listed = [Listed(n) for n in ("gpt-4o", "gpt-4o-mini", "o3-mini", "o1", "gpt-4.1")]
    offers, excluded = builder.build(registry.providers["openai"], listed)
    assert len(offers) == 3 and excluded == {"over_limit": 2}


def test_modality_vocabulary() -> None:
    assert modality(["image", "text"], ["text"]) == "text+image->text"
    assert modality(["audio"], ["text"]) == "audio->text"
    assert modality(["text"], ["bogus"]) is None
    assert all(is_modality(m) for m in ("text->text", "text->image", "image->text", "text->audio"))
    assert not is_modality("image+text->text")  # one spelling per modality
    assert len(MODALITIES) == 31 * 31


def test_capabilities_cover_exactly_the_priced_rows() -> None:
    with PRICES_FILE.open("rb") as f:
        prices = tomllib.load(f)
    with CAPABILITIES_FILE.open("rb") as f:
        caps = tomllib.load(f)
    for section in ("models", "native"):
        assert {k: set(v) for k, v in prices[section].items()} == {
            k: set(v) for k, v in caps[section].items()
        }
    table = CapabilityTable.load()
    assert table.lookup("openai/gpt-4o", "openai", "gpt-4o").vision is True
    # Another provider's row stands in: capabilities belong to the model.
    assert table.lookup("openai/gpt-4o", "openrouter", "openai/gpt-4o") is not None
