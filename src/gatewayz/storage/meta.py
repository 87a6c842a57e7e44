"""Rows of `gateway_meta` (storage/meta_tables.py): a name's value, set once by whoever comes
first (`claim`), or replaced on purpose (`replace`)."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.meta_tables import gateway_meta
from gatewayz.storage.tables import utcnow


async def get(conn: AsyncConnection, name: str) -> str | None:
    row = await conn.execute(select(gateway_meta.c.value).where(gateway_meta.c.name == name))
    return row.scalar_one_or_none()


async def claim(conn: AsyncConnection, name: str, value: str) -> str:
    """The value stored under `name`: `value` if there was none (in a savepoint, so a
    concurrent claim losing the race reads the winner's instead of failing)."""
    found = await get(conn, name)
    if found is not None:
        return found
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(gateway_meta).values(name=name, value=value, updated_at=utcnow())
            )
    except IntegrityError:
        stored = await get(conn, name)
        assert stored is not None
        return stored
    return value


async def replace(conn: AsyncConnection, name: str, value: str) -> None:
    done = await conn.execute(
        update(gateway_meta)
        .where(gateway_meta.c.name == name)
        .values(value=value, updated_at=utcnow())
    )
    if done.rowcount == 0:
        await conn.execute(insert(gateway_meta).values(name=name, value=value, updated_at=utcnow()))
