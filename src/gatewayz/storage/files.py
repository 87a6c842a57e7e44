"""Rows of `files` (storage/batch_tables.py): what the Files API lists; the bytes are on disk
(gatewayz.batches.files). A user sees only their own files: another user's is None, like a
missing one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.batch_tables import files


async def insert_file(conn: AsyncConnection, row: Mapping[str, Any]) -> None:
    await conn.execute(insert(files).values(**row))


async def get_file(conn: AsyncConnection, user_id: str, file_id: str) -> dict[str, Any] | None:
    f = files.c
    found = (await conn.execute(select(files).where(f.id == file_id, f.user_id == user_id))).first()
    return None if found is None else dict(found._mapping)


async def list_files(
    conn: AsyncConnection,
    user_id: str,
    *,
    limit: int,
    newest_first: bool,
    purpose: str | None = None,
    after: str | None = None,
) -> list[dict[str, Any]]:
    """Up to `limit` of the user's files by creation time (the id breaks ties), starting after
    the file `after` (an id of the previous page; an unknown one gives an empty page)."""
    f = files.c
    query = select(files).where(f.user_id == user_id)
    if purpose is not None:
        query = query.where(f.purpose == purpose)
    key = tuple_(f.created_at, f.id)
    if after is not None:
        mark = (
            await conn.execute(select(f.created_at).where(f.id == after, f.user_id == user_id))
        ).first()
        if mark is None:
            return []
        bound = tuple_(mark[0], after)
        query = query.where(key < bound if newest_first else key > bound)
    if newest_first:
        query = query.order_by(f.created_at.desc(), f.id.desc())
    else:
        query = query.order_by(f.created_at, f.id)
    return [dict(r._mapping) for r in await conn.execute(query.limit(limit))]


async def delete_file(conn: AsyncConnection, user_id: str, file_id: str) -> bool:
    f = files.c
    done = await conn.execute(delete(files).where(f.id == file_id, f.user_id == user_id))
    return bool(done.rowcount)
