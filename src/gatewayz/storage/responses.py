"""Stored Responses-API responses, the storage side (table: `storage/response_tables.py`; the
rules: pipeline/stored_responses.py). Every read and delete is its owner's: another user's
response is not found, like a missing one; an expired one is not found either (and is deleted
when read, besides the periodic purge)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.response_tables import responses
from gatewayz.storage.tables import utcnow


async def insert_response(conn: AsyncConnection, row: Mapping[str, Any]) -> None:
    await conn.execute(insert(responses).values(**row))


async def get_response(
    conn: AsyncConnection, user_id: str, response_id: str, now: datetime | None = None
) -> dict[str, Any] | None:
    """The user's response, unless it is missing, someone else's or expired (then deleted)."""
    r = responses.c
    row = (
        await conn.execute(select(responses).where(r.id == response_id, r.user_id == user_id))
    ).first()
    if row is None:
        return None
    if row.expires_at <= (now or utcnow()):
        await conn.execute(delete(responses).where(r.id == response_id))
        return None
    return dict(row._mapping)


async def delete_response(conn: AsyncConnection, user_id: str, response_id: str) -> bool:
    """Whether the user's response was there (expired ones were not) and is now gone."""
    r = responses.c
    done = await conn.execute(
        delete(responses).where(r.id == response_id, r.user_id == user_id, r.expires_at > utcnow())
    )
    return bool(done.rowcount)


async def delete_expired(conn: AsyncConnection, limit: int, now: datetime | None = None) -> int:
    """Delete up to `limit` expired responses (oldest expiry first); how many went."""
    r = responses.c
    ids = select(r.id).where(r.expires_at <= (now or utcnow())).order_by(r.expires_at)
    done = await conn.execute(delete(responses).where(r.id.in_(ids.limit(limit).scalar_subquery())))
    return int(done.rowcount or 0)
