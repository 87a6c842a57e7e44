"""The media rows of the price book (scripts/convert_prices.py's part for them): litellm's
`embedding`, `image_generation` and `audio_transcription` rows of providers Gatewayz knows.

- embedding: `mode = "embedding"`, `prompt` = input_cost_per_token per 1M tokens (a $0 price is
  a missing price), `context` = max_input_tokens.
- audio_transcription: `mode = "audio"`, `second` = input_cost_per_second (USD per second).
- image_generation: `mode = "image"`, `image` = the model's per-image price
  (output_cost_per_image, else input_cost_per_image, which litellm uses for OpenAI's images),
  and `image_sizes` from its variant rows keyed `quality/W-x-H/model` or `W-x-H/model`
  ("quality/WxH" or "WxH" → USD per image; a per-pixel price times W×H). Variants by
  diffusion steps (`50-steps/…`, `max-x-max/…`) are left out: the gateway sends no steps.
A model with no usable price for its mode is left out (it cannot be held for, so not served).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

MEDIA_MODES = {
    "embedding": "embedding",
    "image_generation": "image",
    "audio_transcription": "audio",
}
MEDIA_MODALITIES = {"embedding": "text->embeddings", "image": "text->image", "audio": "audio->text"}
# Media-only litellm provider names (the chat ones are convert_prices.LITELLM_PROVIDERS').
MEDIA_PROVIDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "vertex_ai-embedding-models": ("google-vertex", ("vertex_ai/", "")),
    "vertex_ai-image-models": ("google-vertex", ("vertex_ai/", "")),
    "vertex_ai": ("google-vertex", ("vertex_ai/", "")),
    "fireworks_ai-embedding-models": ("fireworks", ("fireworks_ai/",)),
    "fal_ai": ("fal", ("fal_ai/",)),
}
QUALITIES = {"standard", "hd", "low", "medium", "high"}
_SIZE = re.compile(r"^(\d+)-x-(\d+)$")
_STEPS = re.compile(r"^(?:\d+|max)-steps$|^max-x-max$")


def _usd(entry: dict[str, Any], name: str) -> Decimal | None:
    raw = entry.get(name)
    if raw is None or isinstance(raw, bool) or not isinstance(raw, int | Decimal):
        return None
    value = Decimal(raw)
    return value if value.is_finite() and value > 0 else None


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def split_variant(native: str) -> tuple[str, str | None] | None:
    """`hd/1024-x-1024/dall-e-3` → (`dall-e-3`, "hd/1024x1024"); a plain id → (id, None);
    a diffusion-steps variant → None (left out)."""
    parts = native.split("/")
    key: list[str] = []
    while len(parts) > 1:
        head = parts[0]
        if head in QUALITIES:
            key.append(head)
        elif _SIZE.match(head):
            w, h = _SIZE.match(head).groups()  # type: ignore[union-attr]
            key.append(f"{w}x{h}")
        elif _STEPS.match(head):
            return None
        else:
            break
        parts = parts[1:]
    return "/".join(parts), "/".join(key) or None


def per_image(entry: dict[str, Any], variant: str | None) -> Decimal | None:
    price = _usd(entry, "output_cost_per_image") or _usd(entry, "input_cost_per_image")
    if price is not None or variant is None:
        return price
    size = next((p for p in variant.split("/") if "x" in p), None)
    pixel = (_usd(entry, "input_cost_per_pixel") or 0) + (_usd(entry, "output_cost_per_pixel") or 0)
    if size is None or not pixel:
        return None
    w, h = (int(d) for d in size.split("x"))
    return pixel * w * h


def media_row(entry: dict[str, Any], mode: str, variant: str | None) -> dict[str, Any] | None:
    """The row of one source entry (an image variant: a row holding only that size)."""
    if mode == "embedding":
        prompt = _usd(entry, "input_cost_per_token")
        if prompt is None:
            return None
        row: dict[str, Any] = {"mode": "embedding", "prompt": _text(prompt.scaleb(6))}
        context = entry.get("max_input_tokens")
        if isinstance(context, int) and not isinstance(context, bool) and context > 0:
            row["context"] = context
        return row
    if mode == "audio":
        second = _usd(entry, "input_cost_per_second")
        return None if second is None else {"mode": "audio", "second": _text(second)}
    price = per_image(entry, variant)
    if price is None:
        return None
    if variant is None:
        return {"mode": "image", "image": _text(price)}
    return {"mode": "image", "image_sizes": {variant: _text(price)}}


def merge(slot: dict[str, Any] | None, row: dict[str, Any]) -> dict[str, Any]:
    """One model's image row from its base and variant rows (the first price seen wins)."""
    if slot is None:
        return row
    if "image" in row:
        slot.setdefault("image", row["image"])
    for key, value in row.get("image_sizes", {}).items():
        slot.setdefault("image_sizes", {}).setdefault(key, value)
    return slot
