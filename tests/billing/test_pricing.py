"""Pricing: the cost formula, exactness, model-specific prices, premium refusal (CM-6.1, CM-6.6)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from gatewayz.billing.pricing import (
    PRICES_FILE,
    Price,
    PriceBook,
    PriceLookup,
    PricingMetrics,
    PricingUnavailable,
    check_priceable,
    cost_nanos,
    cost_usd,
    estimate_max_nanos,
    is_premium,
    to_nanos,
)
from gatewayz.canonical.types import Usage
from gatewayz.catalog.capabilities import CAPABILITIES_FILE
from gatewayz.errors import InvalidRequest
from gatewayz.money import nanos_to_usd

ROOT = Path(__file__).resolve().parents[2]


def P(prompt: str, completion: str, **kw: str) -> Price:
    return Price.from_row({"prompt": prompt, "completion": completion, **kw})


def test_cm_6_1_1_cost_formula_prompt_plus_completion() -> None:
    # $2.50 / 1M prompt, $10 / 1M completion: 1234 × 2.5e-6 + 567 × 1e-5 = 0.003085 + 0.00567
    price = P("2.5", "10")
    assert cost_usd(price, Usage(1234, 567)) == Decimal("0.008755")
    assert cost_nanos(price, Usage(1234, 567)) == 8_755_000
    assert cost_nanos(price, Usage(1234, 0)) == 3_085_000
    assert cost_nanos(price, Usage(0, 567)) == 5_670_000


def test_cm_6_1_1_cached_cache_write_and_reasoning_components() -> None:
    price = P("3", "15", cached_read="0.3", cache_write="3.75", reasoning="20", request="0.005")
    usage = Usage(
        prompt_tokens=1000,  # 600 plain + 300 cached + 100 written
        completion_tokens=500,  # 400 plain + 100 reasoning
        cached_tokens=300,
        cache_write_tokens=100,
        reasoning_tokens=100,
    )
    expected = (
        (600 * Decimal(3) + 300 * Decimal("0.3") + 100 * Decimal("3.75")) / 1_000_000
        + (400 * Decimal(15) + 100 * Decimal(20)) / 1_000_000
        + Decimal("0.005")
    )
    assert cost_usd(price, usage) == expected
    assert cost_nanos(price, usage) == 15_265_000  # 0.002265 + 0.008 + 0.005
    # Without separate prices those tokens are billed at the normal rates.
    plain = P("3", "15")
    assert cost_nanos(plain, usage) == cost_nanos(plain, Usage(1000, 500))


def test_cm_6_1_1_image_price_and_mapping_usage() -> None:
    price = P("0.3", "2.5", image="0.039")
    assert cost_nanos(price, {"prompt_tokens": 10, "completion_tokens": 0}, images=2) == (
        3_000 + 78_000_000
    )


def test_cm_6_1_2_zero_tokens_zero_cost() -> None:
    for price in (P("2.5", "10"), P("3", "15", cached_read="0.3", request="0.01")):
        assert cost_usd(price, Usage(0, 0)) == 0
        assert cost_nanos(price, Usage(0, 0)) == 0
        assert cost_nanos(price, {"prompt_tokens": 0, "completion_tokens": 0}) == 0


def test_cm_6_1_3_cost_uses_model_specific_pricing() -> None:
    book = PriceBook.load()
    gpt = book.lookup("openai/gpt-4o", "openai")
    llama = book.lookup("meta-llama/llama-3.3-70b-instruct", "fireworks")
    assert not gpt.is_default and not llama.is_default
    assert (gpt.price.prompt, gpt.price.completion) == (Decimal("2.5"), Decimal("10"))
    assert (llama.price.prompt, llama.price.completion) == (Decimal("0.9"), Decimal("0.9"))
    usage = Usage(1_000_000, 1_000_000)
    assert cost_nanos(gpt.price, usage) == 12_500_000_000
    assert cost_nanos(llama.price, usage) == 1_800_000_000
    # The same model on another provider has that provider's price.
    groq_like = book.lookup("meta-llama/llama-3.3-70b-instruct", "deepinfra").price
    assert groq_like.prompt != llama.price.prompt


def test_cm_6_1_4_cost_calculation_precision() -> None:
    # $0.075 per 1M tokens = $0.000000075 per token, summed a million times: exactly $0.075.
    price = P("75", "0")  # $75 per 1M = $0.000075 per token → 75_000 nanos
    tiny = P("0.075", "0")  # $0.075 per 1M = $0.000000075 per token → 75 nanos
    one = cost_usd(tiny, Usage(1, 0))
    assert one == Decimal("0.000000075")
    assert sum((one for _ in range(1_000_000)), Decimal(0)) == Decimal("0.075")
    assert cost_usd(tiny, Usage(1_000_000, 0)) == Decimal("0.075")
    assert cost_nanos(tiny, Usage(1_000_000, 0)) == 75_000_000
    assert nanos_to_usd(cost_nanos(tiny, Usage(1_000_000, 0))) == Decimal("0.075")
    assert cost_nanos(price, Usage(1, 0)) == 75_000
    assert cost_nanos(tiny, Usage(1, 0)) == 75
    # Sub-nano prices stay exact until the single rounding at the end of a charge.
    sub = P("0.0001", "0")  # 0.1 nano per token
    assert cost_usd(sub, Usage(7, 0)) == Decimal("0.0000000007")
    assert cost_nanos(sub, Usage(10_000_000, 0)) == 1_000_000
    # A float sum drifts; ours does not.
    assert sum(0.000000075 for _ in range(1_000)) != 0.000075
    assert cost_usd(tiny, Usage(1_000, 0)) == Decimal("0.000075")
    with pytest.raises(TypeError):
        Price.from_row({"prompt": 0.1, "completion": "1"})


def test_cm_6_1_4_rounding_half_up_to_the_nano() -> None:
    tiny = P("0.0005", "0")  # $0.0005 per 1M tokens = 0.5 nano per token
    assert cost_nanos(tiny, Usage(1, 0)) == 1  # 0.5 → 1 (half up)
    assert cost_nanos(P("0.0004", "0"), Usage(1, 0)) == 0  # 0.4 → 0
    assert cost_nanos(P("0.0006", "0"), Usage(1, 0)) == 1
    assert cost_nanos(tiny, Usage(3, 0)) == 2  # 1.5 → 2
    assert to_nanos(Decimal("0.0000000025")) == 3
    # Monotonic: a pre-flight estimate is never below the settled cost.
    price = P("0.123", "0.777")
    est = estimate_max_nanos(price, 333, 1000)
    assert all(cost_nanos(price, Usage(333, n)) <= est for n in range(0, 1001, 7))


def test_estimate_uses_dearest_output_rate() -> None:
    price = P("1", "2", reasoning="8")
    assert estimate_max_nanos(price, 1000, 1000) == 1_000_000 + 8_000_000
    assert estimate_max_nanos(P("1", "2"), 0, 0) == 0


@pytest.mark.parametrize(
    "model",
    [
        "openai/gpt-4o",
        "openai/gpt-4.1-mini",
        "openai/gpt-5",
        "openai/o1",
        "openai/o3-mini",
        "openai/o4-mini",
        "anthropic/claude-sonnet-4-5",
        "google/gemini-2.5-flash",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "openai/gpt-4o:nitro",
    ],
)
def test_cm_6_6_1_premium_model_blocked_if_pricing_is_default(model: str) -> None:
    assert is_premium(model)
    book = PriceBook(models={})  # nothing priced: every lookup falls to the default rate
    lookup = book.lookup(model)
    assert lookup.is_default and lookup.source == "default"
    metrics = PricingMetrics()
    with pytest.raises(PricingUnavailable) as err:
        check_priceable(model, lookup, metrics)
    assert isinstance(err.value, InvalidRequest)
    assert err.value.status == 400 and err.value.code == "pricing_unavailable"
    assert model in err.value.message and "price" in err.value.message
    assert not metrics.default_priced


def test_cm_6_6_1_unknown_premium_model_in_packaged_book_is_refused() -> None:
    lookup = PriceBook.load().lookup("openai/gpt-4o-not-a-real-model")
    assert lookup.is_default
    with pytest.raises(PricingUnavailable):
        check_priceable("openai/gpt-4o-not-a-real-model", lookup, PricingMetrics())


@pytest.mark.parametrize(
    "model", ["openai/gpt-4o", "anthropic/claude-sonnet-4-5", "google/gemini-2.5-flash"]
)
def test_cm_6_6_2_premium_model_allowed_with_explicit_pricing(model: str) -> None:
    metrics = PricingMetrics()
    lookup = PriceBook.load().lookup(model)
    assert not lookup.is_default
    assert check_priceable(model, lookup, metrics) is lookup
    assert not metrics.default_priced
    # An admin override prices a model the packaged data does not know.
    book = PriceBook(models={}).with_overrides([{"model": model, "prompt": "1", "completion": "4"}])
    lookup = book.lookup(model, "openrouter")
    assert not lookup.is_default and lookup.source == "override"
    assert check_priceable(model, lookup, metrics) is lookup


@pytest.mark.parametrize(
    "model", ["meta-llama/llama-9-1t-instruct", "someorg/open-model-7b", "google/gemma-9-2b-it"]
)
def test_cm_6_6_3_non_premium_model_allowed_with_default_pricing(model: str) -> None:
    assert not is_premium(model)
    metrics = PricingMetrics()
    book = PriceBook(models={}, default=P("1", "2"))
    lookup = book.lookup(model, "together")
    assert lookup.is_default and lookup.price == P("1", "2")
    assert check_priceable(model, lookup, metrics) is lookup
    assert check_priceable(model, lookup, metrics) is lookup
    assert metrics.default_priced[model] == 2
    assert cost_nanos(lookup.price, Usage(1000, 1000)) == 3_000_000


def test_is_premium_rejects_open_models() -> None:
    for model in ("openai/gpt-oss-120b", "google/gemma-3-27b-it", "meta-llama/llama-3.3-70b"):
        assert not is_premium(model)
    assert not is_premium("someorg/olmo-2")
    assert is_premium("ft:gpt-4o-2024-08-06:org::id")


def test_lookup_order_and_variants() -> None:
    book = PriceBook(
        models={"org/m": {"a": P("1", "1"), "b": P("5", "7")}},
        native={"fw": {"accounts/x/models/m": P("0.2", "0.2")}},
    )
    assert book.lookup("org/m", "a").price == P("1", "1")
    unknown_provider = book.lookup("org/m", "zzz")  # dearest known row: never undercharge
    assert unknown_provider.price == P("5", "7") and unknown_provider.priced_provider == "b"
    assert unknown_provider.source == "model"
    assert book.lookup("accounts/x/models/m", "fw").price == P("0.2", "0.2")
    assert book.lookup("org/m:nitro", "a").price == P("1", "1")
    free = book.lookup("org/m:free")
    assert not free.is_default and cost_nanos(free.price, Usage(10**6, 10**6)) == 0


def test_with_overrides_effective_dates_and_precedence() -> None:
    base = PriceBook(models={"org/m": {"a": P("1", "1")}})
    book = base.with_overrides(
        [
            {
                "model": "org/m",
                "provider": "a",
                "prompt": "2",
                "completion": "2",
                "effective_from": "2025-01-01",
            },
            {
                "model": "org/m",
                "provider": "a",
                "prompt": "3",
                "completion": "3",
                "effective_from": "2025-06-01",
            },
            {
                "model": "org/m",
                "provider": "a",
                "prompt": "9",
                "completion": "9",
                "effective_from": "2030-01-01",
            },
            {"model": "org/m", "prompt": "4", "completion": "4"},
        ],
        today=date(2026, 1, 1),
    )
    assert book.lookup("org/m", "a").price.prompt == Decimal(3)
    assert book.lookup("org/m", "b").price.prompt == Decimal(4)  # any-provider override
    assert base.lookup("org/m", "a").price.prompt == Decimal(1)  # the original is unchanged


def test_packaged_book_loads_and_covers_popular_models() -> None:
    book = PriceBook.load()
    assert PriceBook.load() is book  # cached
    for model in (
        "openai/gpt-4o",
        "anthropic/claude-sonnet-4-5",
        "google/gemini-2.5-flash",
        "deepseek/deepseek-r1",
        "meta-llama/llama-3.3-70b-instruct",
    ):
        lookup = book.lookup(model)
        assert isinstance(lookup, PriceLookup) and not lookup.is_default, model
        assert lookup.price.prompt > 0 and lookup.price.completion > 0
        assert lookup.price.effective_from is not None
    sonnet = book.lookup("anthropic/claude-sonnet-4-5", "anthropic").price
    assert sonnet == Price(
        prompt=Decimal(3),
        completion=Decimal(15),
        cached_read=Decimal("0.3"),
        cache_write=Decimal("3.75"),
        context=200_000,
        output=64_000,
        effective_from=sonnet.effective_from,
    )
    r1 = book.lookup("deepseek/deepseek-r1", "deepseek").price
    assert r1.cached_read is not None and r1.cached_read < r1.prompt
    assert book.lookup("google/gemini-2.5-flash", "google-ai-studio").price.reasoning is not None


def test_packaged_file_uses_decimal_strings_and_no_zero_prices() -> None:
    with PRICES_FILE.open("rb") as f:
        data = tomllib.load(f)
    rows = [r for t in ("models", "native") for p in data[t].values() for r in p.values()]
    assert len(rows) > 500
    for row in rows:
        for key in ("prompt", "completion", "cached_read", "cache_write", "reasoning"):
            if key in row:
                assert isinstance(row[key], str) and Decimal(row[key]) >= 0
        unit = {"embedding": "prompt", "image": None, "audio": "second"}.get(row.get("mode"), "")
        if unit == "":  # chat: a token price
            assert Decimal(row["prompt"]) + Decimal(row["completion"]) > 0
        elif unit is None:  # images: per image, or per image by quality and size
            assert Decimal(row.get("image", 0)) > 0 or row["image_sizes"]
        else:
            assert Decimal(row[unit]) > 0
        assert isinstance(row["effective_from"], date)


def test_converter_reproduces_prices_and_capabilities(tmp_path: Path) -> None:
    source = ROOT.parent / "shared" / "data" / "model_prices.json"
    if not source.exists():
        pytest.skip("litellm source data not present")
    with PRICES_FILE.open("rb") as f:
        effective = tomllib.load(f)["meta"]["effective_from"].isoformat()
    out = tmp_path / "prices.toml"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "convert_prices.py"),
            str(source),
            "--effective-from",
            effective,
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    assert out.read_text() == PRICES_FILE.read_text()
    # The catalog's capabilities table comes from the same rows, in the same run.
    assert (tmp_path / "capabilities.toml").read_text() == CAPABILITIES_FILE.read_text()


def test_converter_keeps_exact_decimals(tmp_path: Path) -> None:
    source = tmp_path / "src.json"
    source.write_text(
        json.dumps(
            {
                "gpt-4o": {
                    "litellm_provider": "openai",
                    "mode": "chat",
                    "max_input_tokens": 128000,
                    "input_cost_per_token": 2.5e-06,
                    "output_cost_per_token": 1e-05,
                    "cache_read_input_token_cost": 1.25e-06,
                },
                "fireworks_ai/accounts/fireworks/models/llama-v3p3-70b-instruct": {
                    "litellm_provider": "fireworks_ai",
                    "mode": "chat",
                    "input_cost_per_token": 9e-07,
                    "output_cost_per_token": 9e-07,
                },
                "fireworks_ai/accounts/fireworks/models/some-odd-model": {
                    "litellm_provider": "fireworks_ai",
                    "mode": "chat",
                    "input_cost_per_token": 1.1e-07,
                    "output_cost_per_token": 3.3e-07,
                },
                "zero": {
                    "litellm_provider": "openai",
                    "mode": "chat",
                    "input_cost_per_token": 0,
                    "output_cost_per_token": 0,
                },
            }
        )
    )
    out = tmp_path / "prices.toml"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "convert_prices.py"),
            str(source),
            "--effective-from",
            "2025-01-02",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    book = PriceBook.from_mapping(tomllib.loads(out.read_text()))
    gpt = book.lookup("openai/gpt-4o", "openai").price
    assert (gpt.prompt, gpt.completion, gpt.cached_read) == (
        Decimal("2.5"),
        Decimal("10"),
        Decimal("1.25"),
    )
    assert gpt.effective_from == date(2025, 1, 2) and gpt.context == 128000
    llama = book.lookup("meta-llama/llama-3.3-70b-instruct", "fireworks")
    assert llama.source == "packaged" and llama.price.prompt == Decimal("0.9")
    odd = book.lookup("accounts/fireworks/models/some-odd-model", "fireworks").price
    assert (odd.prompt, odd.completion) == (Decimal("0.11"), Decimal("0.33"))
    assert book.lookup("openai/zero").is_default
