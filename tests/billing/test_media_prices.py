"""Media prices: the rows the converter writes for embeddings, images and audio, the price of
one image by quality and size, and holds that bound every charge."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest

from gatewayz.billing.media_prices import (
    audio_nanos,
    embedding_bound,
    embedding_nanos,
    image_nanos,
    image_unit,
    worst_nanos,
)
from gatewayz.billing.pricing import Price, PriceBook, PricingUnavailable
from gatewayz.canonical.media import EmbeddingRequest, ImageRequest, TranscriptionRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import media_prices as converter

SIZES = {"standard/1024x1024": "0.04", "hd/1024x1024": "0.08", "1792x1024": "0.12"}


def image_price(**extra: str) -> Price:
    return Price.from_row({"mode": "image", "image_sizes": SIZES, **extra})


def test_the_packaged_book_prices_openai_media_from_the_shared_data() -> None:
    book = PriceBook.load()
    embed = book.lookup("openai/text-embedding-3-small", "openai").price
    assert (embed.kind, embed.prompt, embed.context) == ("embedding", Decimal("0.02"), 8191)
    whisper = book.lookup("openai/whisper-1", "openai").price
    assert (whisper.kind, whisper.second) == ("audio", Decimal("0.0001"))
    image = book.lookup("openai/gpt-image-1", "openai").price
    assert image.kind == "image" and dict(image.image_sizes)["high/1024x1024"] == Decimal("0.167")
    groq = book.lookup("whisper-large-v3", "groq").price  # a per-provider (native) row
    assert groq.second == Decimal("0.00003083")
    assert book.lookup("openai/gpt-4o-mini", "openai").price.kind == "chat"


@pytest.mark.parametrize(
    ("size", "quality", "usd"),
    [
        ("1024x1024", "standard", "0.04"),
        ("1024x1024", "hd", "0.08"),
        ("1024x1024", None, "0.08"),  # the dearest variant of that size
        (None, "standard", "0.12"),  # any size: 1792x1024 is priced for every quality
        ("1792x1024", "hd", "0.12"),  # priced by size alone
        (None, None, "0.12"),  # nothing named: the dearest of all
    ],
)
def test_one_image_is_priced_by_its_quality_and_size(
    size: str | None, quality: str | None, usd: str
) -> None:
    assert image_unit(image_price(), size, quality) == Decimal(usd)


def test_a_size_without_a_price_is_refused_unless_a_base_price_exists() -> None:
    with pytest.raises(PricingUnavailable):
        image_unit(image_price(), "512x512", None)
    assert image_unit(image_price(image="0.02"), "512x512", None) == Decimal("0.02")


def test_images_cost_per_image_returned_plus_the_request_price() -> None:
    req = ImageRequest(model="m", prompt="p", n=3, size="1024x1024", quality="hd")
    price = image_price(request="0.001")
    assert worst_nanos(req, price) == 241_000_000
    assert image_nanos(req, price, 1) == 81_000_000
    assert image_nanos(req, price, 0) == 0


def test_the_embedding_hold_bounds_any_tokenisation() -> None:
    req = EmbeddingRequest(model="m", texts=["héllo", "x" * 100])
    assert embedding_bound(req) == 6 + 2 + 100 + 2  # UTF-8 bytes + begin/end markers
    price = Price.from_row({"mode": "embedding", "prompt": "0.02"})
    assert worst_nanos(req, price) == embedding_nanos(price, embedding_bound(req))
    assert EmbeddingRequest(model="m", token_arrays=[[1, 2], [3]]).count == 2
    assert embedding_bound(EmbeddingRequest(model="m", token_arrays=[[1, 2], [3]])) == 3


def test_audio_costs_its_measured_seconds_to_the_millisecond() -> None:
    req = TranscriptionRequest("m", b"", "a.wav", "audio/wav", duration_s=2.0004)
    price = Price.from_row({"mode": "audio", "second": "0.0001"})
    assert audio_nanos(req, price) == 200_000  # 2.000 s
    assert worst_nanos(req, price) == audio_nanos(req, price)


def test_a_price_mode_is_checked_and_an_override_keeps_the_packaged_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        Price.from_row({"mode": "video", "prompt": "1", "completion": "1"})
    book = PriceBook.load().with_overrides(
        [
            {
                "model": "openai/text-embedding-3-small",
                "provider": "openai",
                "prompt": "0.5",
                "completion": "0",
            }
        ]
    )
    price = book.lookup("openai/text-embedding-3-small", "openai").price
    assert (price.kind, price.prompt) == ("embedding", Decimal("0.5"))


def test_the_converter_reads_variant_keys_and_per_pixel_prices() -> None:
    assert converter.split_variant("hd/1024-x-1024/dall-e-3") == ("dall-e-3", "hd/1024x1024")
    assert converter.split_variant("1024-x-1024/dall-e-2") == ("dall-e-2", "1024x1024")
    assert converter.split_variant("dall-e-3") == ("dall-e-3", None)
    assert converter.split_variant("512-x-512/50-steps/stability.sd") is None
    entry = {"input_cost_per_pixel": Decimal("4e-08")}
    assert converter.per_image(entry, "standard/1024x1024") == Decimal("4e-08") * 1024 * 1024
    row = converter.media_row({"input_cost_per_token": Decimal("2e-08")}, "embedding", None)
    assert row == {"mode": "embedding", "prompt": "0.02"}
    assert converter.media_row({"input_cost_per_token": 0}, "embedding", None) is None
    merged = converter.merge(
        {"mode": "image", "image": "0.04"}, {"mode": "image", "image_sizes": {"hd": "0.08"}}
    )
    assert merged == {"mode": "image", "image": "0.04", "image_sizes": {"hd": "0.08"}}
