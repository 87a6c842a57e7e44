"""Admin price overrides (`/admin/pricing`): rows of `price_overrides`.

A row wins over the packaged price book for its model (and provider, or any provider when
`provider` is NULL) from its `effective_from` date (NULL: at once). `list_rows` returns rows in
the shape `billing.pricing.PriceBook.with_overrides` takes; the meter rebuilds its book from
them after every change (`Meter.reload_prices`).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from sqlalchemy import delete as sql_delete
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.tables import price_overrides, utcnow

MAX_MODEL = 200  # price_overrides.model is String(200)
MAX_PROVIDER = 64  # price_overrides.provider is String(64)


class PriceRow(Protocol):
    """A price that gives its fields as the row's decimal strings, its mode and its image
    sizes (`billing.pricing.Price`)."""

    def as_row(self) -> dict[str, Any]: ...


def _value(value: Any) -> Any:
    """A stored field as `Price.from_row` reads it: a decimal string (or the mode), or an
    object of them (`image_sizes`: {"hd/1024x1024": "0.08"})."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return str(value)


def _shape(row: Any) -> dict[str, Any]:
    """A stored row as `PriceBook.with_overrides` reads it (plus who made it and when)."""
    eff = row.effective_from
    out: dict[str, Any] = {
        "id": int(row.id),
        "model": row.model,
        "provider": row.provider or None,
    }
    out.update({str(k): _value(v) for k, v in dict(row.price or {}).items() if v is not None})
    out["effective_from"] = date.fromisoformat(eff) if eff else None
    out["created_by"] = row.created_by
    out["created_at"] = row.created_at
    return out


async def list_rows(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every override row, oldest first: id, model, provider (None: any provider), the price
    fields as decimal strings (and `mode`, `image_sizes` when set), effective_from (`date` or
    None), created_by, created_at."""
    result = await conn.execute(select(price_overrides).order_by(price_overrides.c.id))
    return [_shape(r) for r in result]


async def add(
    conn: AsyncConnection,
    *,
    model: str,
    provider: str | None,
    price: PriceRow,
    effective_from: date | None,
    created_by: str | None,
) -> dict[str, Any]:
    """Store one override; the new row (shaped as `list_rows`). `ValueError` for a bad model
    or provider name."""
    model = model.strip()
    if not model or len(model) > MAX_MODEL:
        raise ValueError(f"model must be 1 to {MAX_MODEL} characters")
    provider = provider.strip() if provider else None
    if provider is not None and len(provider) > MAX_PROVIDER:
        raise ValueError(f"provider must be at most {MAX_PROVIDER} characters")
    row_id = (
        await conn.execute(
            insert(price_overrides)
            .values(
                model=model,
                provider=provider or None,
                price=price.as_row(),
                effective_from=effective_from.isoformat() if effective_from else None,
                created_by=created_by,
                created_at=utcnow(),
            )
            .returning(price_overrides.c.id)
        )
    ).scalar_one()
    stored = (
        await conn.execute(select(price_overrides).where(price_overrides.c.id == row_id))
    ).one()
    return _shape(stored)


async def get(conn: AsyncConnection, override_id: int) -> dict[str, Any] | None:
    row = (
        await conn.execute(select(price_overrides).where(price_overrides.c.id == override_id))
    ).first()
    return None if row is None else _shape(row)


async def delete(conn: AsyncConnection, override_id: int) -> bool:
    """Remove one override; False when there is no such id."""
    result = await conn.execute(
        sql_delete(price_overrides)
        .where(price_overrides.c.id == override_id)
        .returning(price_overrides.c.id)
    )
    return result.first() is not None
