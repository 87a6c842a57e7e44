"""What embeddings, images and audio cost, and the most they can cost (the hold), exact.

A price row's `mode` says what it prices (billing/prices.toml, from scripts/convert_prices.py):
- `embedding`: input tokens at `prompt` per 1M. The hold counts every input byte as a token (a
  BPE token is at least one byte) plus two per input for begin/end markers — a true upper
  bound; the charge is the tokens the provider reports (our estimate when it reports none).
- `image`: per image returned, at the price of the requested quality and size (`image_sizes`
  rows keyed "quality/WxH", "WxH" or "quality"; the base `image` price otherwise). A request
  that leaves the size or the quality to the provider pays the dearest variant matching what it
  did name, held and charged alike: name both to pay exactly for them.
- `audio`: per second of audio, as the gateway measured it from the file (api/audio_file.py),
  to the millisecond.
A per-request price (`request`) is added to any of them that produced something.
"""

from __future__ import annotations

from decimal import Decimal

from gatewayz.billing.pricing import FREE, Price, PricingUnavailable, cost_nanos, to_nanos
from gatewayz.canonical.media import (
    EmbeddingRequest,
    ImageRequest,
    MediaRequest,
    TranscriptionRequest,
)

EMBEDDING_MARKERS = 2  # tokens a model may add around each input (begin/end of sequence)


def embedding_bound(req: EmbeddingRequest) -> int:
    """The most input tokens `req` can be billed for."""
    if req.token_arrays is not None:
        return sum(len(a) for a in req.token_arrays)
    texts = req.texts or ()
    return sum(len(t.encode()) + EMBEDDING_MARKERS for t in texts)


def image_unit(price: Price, size: str | None, quality: str | None) -> Decimal:
    """One image's price at `size` ("1024x1024") and `quality`; None: any (the dearest)."""
    if price == FREE:  # the simulated provider, `:free` models
        return Decimal(0)
    if price.image_sizes:
        matching = [v for key, v in price.image_sizes if _matches(key, size, quality)]
        if matching:
            return max(matching)
    if price.image is not None:
        return price.image
    if price.image_sizes and size is None and quality is None:
        return max(v for _, v in price.image_sizes)
    named = " ".join(p for p in (quality, size) if p)
    raise PricingUnavailable(
        f"No price is configured for {named or 'these'} images with this model; choose a "
        f"quality/size it prices: {', '.join(k for k, _ in price.image_sizes) or 'none'}.",
        param="size" if size else "quality",
    )


def _matches(key: str, size: str | None, quality: str | None) -> bool:
    parts = key.split("/")
    key_quality = next((p for p in parts if "x" not in p), None)
    key_size = next((p for p in parts if "x" in p), None)
    if size is not None and key_size is not None and key_size != size:
        return False
    if quality is not None and key_quality is not None and key_quality != quality:
        return False
    # A variant that names neither what was asked nor anything else does not price it.
    return not (size is not None and key_size is None and quality is None)


def _with_request(price: Price, usd: Decimal, produced: bool) -> int:
    if produced and price.request is not None:
        usd += price.request
    return to_nanos(usd)


def worst_nanos(req: MediaRequest, price: Price) -> int:
    """The most `req` can cost at `price` (the hold)."""
    if isinstance(req, EmbeddingRequest):
        tokens = embedding_bound(req)
        return cost_nanos(price, {"prompt_tokens": tokens, "completion_tokens": 0})
    if isinstance(req, ImageRequest):
        return image_nanos(req, price, req.n)
    return audio_nanos(req, price)


def image_nanos(req: ImageRequest, price: Price, images: int) -> int:
    usd = images * image_unit(price, req.size, req.quality)
    return _with_request(price, usd, images > 0)


def audio_nanos(req: TranscriptionRequest, price: Price) -> int:
    seconds = Decimal(round(req.duration_s * 1000)) / 1000
    return _with_request(price, seconds * (price.second or Decimal(0)), True)


def embedding_nanos(price: Price, tokens: int) -> int:
    return cost_nanos(price, {"prompt_tokens": tokens, "completion_tokens": 0})
