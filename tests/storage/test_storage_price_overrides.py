"""storage/price_overrides.py on SQLite and PostgreSQL: rows round-trip exactly in the shape
`PriceBook.with_overrides` takes; a row not yet effective is ignored by the lookup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal

import pytest

from gatewayz.billing.pricing import Price, PriceBook
from gatewayz.storage import price_overrides
from gatewayz.storage.db import Database, upgrade

TODAY = date(2030, 6, 15)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    await upgrade(db_url)
    database = Database(db_url, pool_size=2, max_overflow=2)
    yield database
    await database.dispose()


async def test_rows_round_trip_exactly_and_delete(db: Database) -> None:
    price = Price(
        prompt=Decimal("0.150"),
        completion=Decimal("0.6"),
        cached_read=Decimal("0.075"),
        request=Decimal("0.000001"),
    )
    async with db.begin() as conn:
        added = await price_overrides.add(
            conn,
            model="acme/m",
            provider="vllm",
            price=price,
            effective_from=TODAY,
            created_by="usr_admin",
        )
        rows = await price_overrides.list_rows(conn)
    assert rows == [added]
    row = rows[0]
    assert isinstance(row["id"], int) and row["created_at"].tzinfo is not None
    assert {k: row[k] for k in ("model", "provider", "effective_from", "created_by")} == {
        "model": "acme/m",
        "provider": "vllm",
        "effective_from": TODAY,
        "created_by": "usr_admin",
    }
    assert (row["prompt"], row["completion"], row["cached_read"], row["request"]) == (
        "0.150",
        "0.6",
        "0.075",
        "0.000001",
    )
    assert "reasoning" not in row and "image" not in row
    assert Price.from_row(row) == Price(
        prompt=Decimal("0.150"),
        completion=Decimal("0.6"),
        cached_read=Decimal("0.075"),
        request=Decimal("0.000001"),
        effective_from=TODAY,
    )

    # Delete: True once, then False; get and list_rows no longer see it.
    async with db.begin() as conn:
        row = await price_overrides.add(
            conn,
            model="acme/m",
            provider=None,
            price=Price(prompt=Decimal(1), completion=Decimal(2)),
            effective_from=None,
            created_by=None,
        )
        assert row["provider"] is None and row["effective_from"] is None
        assert await price_overrides.get(conn, row["id"]) == row
        assert await price_overrides.delete(conn, row["id"]) is True
        assert await price_overrides.delete(conn, row["id"]) is False
        assert await price_overrides.get(conn, row["id"]) is None
        assert [r["id"] for r in await price_overrides.list_rows(conn)] == [added["id"]]


async def test_future_overrides_are_ignored_by_lookup(db: Database) -> None:
    async def add(prompt: str, effective_from: date | None, provider: str | None = None) -> None:
        async with db.begin() as conn:
            await price_overrides.add(
                conn,
                model="acme/m",
                provider=provider,
                price=Price(prompt=Decimal(prompt), completion=Decimal(prompt)),
                effective_from=effective_from,
                created_by=None,
            )

    await add("1", None)
    await add("2", TODAY - timedelta(days=1))
    await add("9", TODAY + timedelta(days=1))
    await add("7", TODAY + timedelta(days=30), provider="vllm")
    async with db.begin() as conn:
        rows = await price_overrides.list_rows(conn)
    assert len(rows) == 4
    book = PriceBook(models={}).with_overrides(rows, today=TODAY)
    found = book.lookup("acme/m", "vllm")
    assert (found.source, found.price.prompt) == ("override", Decimal("2"))  # latest effective
    later = PriceBook(models={}).with_overrides(rows, today=TODAY + timedelta(days=30))
    assert later.lookup("acme/m", "vllm").price.prompt == Decimal("7")
    assert later.lookup("acme/m", "openai").price.prompt == Decimal("9")


async def test_bad_names_are_refused(db: Database) -> None:
    for model, provider in [("", None), ("  ", None), ("m" * 201, None), ("m", "p" * 65)]:
        async with db.begin() as conn:
            with pytest.raises(ValueError):
                await price_overrides.add(
                    conn,
                    model=model,
                    provider=provider,
                    price=Price(prompt=Decimal(1), completion=Decimal(1)),
                    effective_from=None,
                    created_by=None,
                )
        async with db.begin() as conn:
            assert await price_overrides.list_rows(conn) == []
