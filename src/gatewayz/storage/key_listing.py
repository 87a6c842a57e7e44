"""API keys as an operator lists them (`gatewayz keys list|revoke|rotate`): revoked ones too,
and only the columns that may be shown — never the lookup hash, never the encrypted key (the
columns are named one by one, so a column added to `api_keys` later is not shown by default)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.tables import api_keys

_SHOWN = (
    api_keys.c.id,
    api_keys.c.user_id,
    api_keys.c.name,
    api_keys.c.env,
    api_keys.c.prefix,
    api_keys.c.is_active,
    api_keys.c.is_primary,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.expires_at,
    api_keys.c.revoked_at,
)


async def user_keys(conn: AsyncConnection, user_id: str, *, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` of the user's keys, revoked ones included, oldest first."""
    result = await conn.execute(
        select(*_SHOWN)
        .where(api_keys.c.user_id == user_id)
        .order_by(api_keys.c.created_at, api_keys.c.id)
        .limit(limit)
    )
    return [dict(r) for r in result.mappings()]


async def key_by_id(conn: AsyncConnection, key_id: str) -> dict[str, Any] | None:
    """One key by id, revoked or not, or None."""
    found = (await conn.execute(select(*_SHOWN).where(api_keys.c.id == key_id))).mappings()
    row = found.first()
    return dict(row) if row is not None else None


async def count_user_keys(conn: AsyncConnection, user_id: str) -> tuple[int, int]:
    """(keys not revoked, revoked keys) of the user."""
    result = await conn.execute(
        select(func.count(), func.count(api_keys.c.revoked_at)).where(api_keys.c.user_id == user_id)
    )
    total, revoked = result.one()
    return int(total) - int(revoked), int(revoked)
