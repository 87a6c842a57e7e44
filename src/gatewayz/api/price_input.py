"""What `POST /admin/pricing` takes (api/admin_billing_routes.py): the override's fields read
into a `Price`, every amount a decimal string or integer (a JSON float is refused: it cannot hold
most decimal amounts exactly), bounded, with a 400 naming the field; and an override row as the
API shows it.

A price override has a `mode` (billing/media_prices.py): chat, embedding (`prompt` per 1M input
tokens), image (`image` per image and/or `image_sizes` per "quality/WxH", "WxH" or "quality")
or audio (`second` per second). Without one it keeps the packaged row's mode, and is checked as
a price of that mode. Token prices are required for chat only (`prompt` for embeddings too).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gatewayz.api.billing_routes import iso
from gatewayz.api.media_requests import IMAGE_QUALITIES
from gatewayz.billing.pricing import Price, PriceBook
from gatewayz.errors import InvalidRequest
from gatewayz.money import usd_text as usd
from gatewayz.storage import price_overrides

MAX_PRICE_USD = Decimal(1_000_000)  # per 1M tokens, per image, per request or per second
PRICE_FIELDS = (
    "prompt",
    "completion",
    "cached_read",
    "cache_write",
    "reasoning",
    "image",
    "request",
    "second",
)
MAX_PRICE_PLACES = 18  # decimal places of a price (a nano-dollar is 9; per 1M tokens, 15)
MODES = ("chat", "embedding", "image", "audio")
MAX_IMAGE_SIZES = 64
_QUALITY = "|".join(sorted(IMAGE_QUALITIES - {"auto"}))  # what a request may name
_SIZE_KEY = re.compile(rf"(?:(?:{_QUALITY})/)?(\d{{2,5}})x(\d{{2,5}})|(?:{_QUALITY})")  # fullmatch


def decimal_field(value: Any, name: str, param: str | None = None) -> Decimal:
    """A decimal string or integer as a finite `Decimal`; floats, booleans and anything else
    are an `InvalidRequest` (for `param`, default `name`)."""
    param = param or name
    if isinstance(value, bool) or not isinstance(value, str | int):
        kind = "a float" if isinstance(value, float) else type(value).__name__
        raise InvalidRequest(
            f"'{name}' must be a decimal string (e.g. \"1.25\") or an integer, not {kind}: "
            "floats cannot hold decimal amounts exactly.",
            param=param,
        )
    try:
        result = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidRequest(f"'{name}' is not a number: {value!r}.", param=param) from None
    if not result.is_finite():
        raise InvalidRequest(f"'{name}' must be a finite amount.", param=param)
    return result


class PriceOverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=price_overrides.MAX_MODEL)
    provider: str | None = Field(
        default=None, min_length=1, max_length=price_overrides.MAX_PROVIDER
    )
    mode: Any = None
    prompt: Any = None
    completion: Any = None
    cached_read: Any = None
    cache_write: Any = None
    reasoning: Any = None
    image: Any = None
    request: Any = None
    second: Any = None
    image_sizes: Any = None
    effective_from: str | None = None


def _amount(raw: Any, name: str, param: str) -> Decimal:
    value = decimal_field(raw, name, param)
    if value < 0:
        raise InvalidRequest(f"'{name}' must not be negative.", param=param)
    if value > MAX_PRICE_USD:
        raise InvalidRequest(f"'{name}' may be at most {MAX_PRICE_USD} USD.", param=param)
    if value != value.quantize(Decimal(1).scaleb(-MAX_PRICE_PLACES)):  # exact: value <= max
        raise InvalidRequest(
            f"'{name}' may have at most {MAX_PRICE_PLACES} decimal places.", param=param
        )
    return value


def _image_sizes(raw: Any) -> tuple[tuple[str, Decimal], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not 1 <= len(raw) <= MAX_IMAGE_SIZES:
        raise InvalidRequest(
            f"'image_sizes' must be an object of 1 to {MAX_IMAGE_SIZES} prices per image, "
            'such as {"hd/1024x1024": "0.08", "1792x1024": "0.08", "standard": "0.04"}.',
            param="image_sizes",
        )
    sizes = []
    for key, value in raw.items():
        match = _SIZE_KEY.fullmatch(key)
        if match is None or not all(64 <= int(d) <= 8192 for d in match.groups() if d):
            raise InvalidRequest(
                f"'image_sizes' key {key[:80]!r} must be 'quality/WxH', 'WxH' or 'quality', "
                f"with quality one of {_QUALITY.replace('|', ', ')} and WxH in pixels (64 to "
                "8192 each), such as 'hd/1024x1024'.",
                param="image_sizes",
            )
        sizes.append((key, _amount(value, f"image_sizes.{key}", "image_sizes")))
    return tuple(sorted(sizes))


def packaged_modes(book: PriceBook, model: str, provider: str | None) -> set[str | None]:
    """The modes an override of `model` (on `provider`, or on any) takes from the packaged rows
    when it names none (`PriceBook._find`); empty when no packaged row prices it."""
    if provider is not None:
        found = book.lookup(model, provider)
        return {found.price.mode} if found.source in ("packaged", "model") else set()
    rows = [*book.models.get(model, {}).values()]
    rows += [table[model] for table in book.native.values() if model in table]
    return {p.mode for p in rows}


def _mode(body: PriceOverrideIn, packaged: set[str | None]) -> tuple[str | None, str]:
    """(the mode to store, None to keep the packaged row's; the mode the price is checked as)."""
    if body.mode is None:
        only = next(iter(packaged)) if len(packaged) == 1 else None
        return None, only or "chat"
    if not isinstance(body.mode, str) or body.mode not in MODES:
        raise InvalidRequest(
            f"'mode' must be one of {', '.join(MODES)}; got {body.mode!r}.", param="mode"
        )
    if body.mode == "chat" and packaged - {None}:  # stored as no mode: it would keep theirs
        raise InvalidRequest(
            f"'{body.model}' is priced as {'/'.join(sorted(m for m in packaged if m))} here; a "
            "chat price cannot replace that. Override it per provider, or in its own mode.",
            param="mode",
        )
    return (None if body.mode == "chat" else body.mode), body.mode


def price_of(body: PriceOverrideIn, packaged: set[str | None]) -> Price:
    stored, mode = _mode(body, packaged)
    required = {"chat": ("prompt", "completion"), "embedding": ("prompt",), "audio": ("second",)}
    values: dict[str, Any] = {"prompt": Decimal(0), "completion": Decimal(0)}
    for name in PRICE_FIELDS:
        raw = getattr(body, name)
        if raw is None:
            if name in required.get(mode, ()):
                raise InvalidRequest(f"'{name}' is required for mode {mode}.", param=name)
            continue
        values[name] = _amount(raw, name, name)
    values["image_sizes"] = _image_sizes(body.image_sizes)
    for name, priced in (("second", "audio"), ("image_sizes", "image")):
        if values.get(name) and mode != priced:
            raise InvalidRequest(
                f"'{name}' prices {priced} requests; this is a {mode} price (set \"mode\": "
                f'"{priced}").',
                param=name,
            )
    if mode == "image" and values.get("image") is None and not values["image_sizes"]:
        raise InvalidRequest(
            "An image price needs 'image' (per image) or 'image_sizes' (per quality/size).",
            param="image",
        )
    return Price(**values, mode=stored)


def effective_from(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            "'effective_from' must be an ISO date (YYYY-MM-DD).", param="effective_from"
        ) from None


def override_json(row: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    eff: date | None = row.get("effective_from")
    out: dict[str, Any] = {"id": row["id"], "model": row["model"], "provider": row["provider"]}
    if row.get("mode"):
        out["mode"] = row["mode"]
    out.update({n: usd(Decimal(row[n])) for n in PRICE_FIELDS if row.get(n) is not None})
    if row.get("image_sizes"):
        out["image_sizes"] = {k: usd(Decimal(v)) for k, v in row["image_sizes"].items()}
    out.update(
        effective_from=eff.isoformat() if eff else None,
        in_effect=eff is None or eff <= (today or date.today()),
        created_by=row.get("created_by"),
        created_at=iso(row.get("created_at")),
    )
    return out
