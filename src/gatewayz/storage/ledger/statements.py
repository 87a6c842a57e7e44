"""A user's ledger rows, read: the statement pages of `/user/credit-transactions` and the
look-ups the money rules make of past rows (who used an idempotency key, how many purchases).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.tables import credit_transactions

_CT = credit_transactions.c


async def transactions_page(
    conn: AsyncConnection,
    user_id: str,
    *,
    limit: int,
    type_: str | None = None,
    before_id: int | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` of the user's rows (of `type_` only, when given), newest first, with ids
    below `before_id` (keyset pagination); and whether more rows follow."""
    query = select(credit_transactions).where(_CT.user_id == user_id)
    if type_ is not None:
        query = query.where(_CT.type == type_)
    if before_id is not None:
        query = query.where(_CT.id < before_id)
    query = query.order_by(_CT.id.desc()).limit(limit + 1)
    rows = [dict(r) for r in (await conn.execute(query)).mappings()]
    return rows[:limit], len(rows) > limit


async def request_id_owner(conn: AsyncConnection, request_id: str, type_: str) -> str | None:
    """The user whose `type_` row carries `request_id` (an idempotency key), or None."""
    found = await conn.execute(
        select(_CT.user_id).where(_CT.request_id == request_id, _CT.type == type_)
    )
    owner = found.scalar_one_or_none()
    return None if owner is None else str(owner)


async def count_rows(conn: AsyncConnection, user_id: str, type_: str) -> int:
    """How many `type_` rows the user has (e.g. purchases)."""
    found = await conn.execute(
        select(func.count())
        .select_from(credit_transactions)
        .where(_CT.user_id == user_id, _CT.type == type_)
    )
    return int(found.scalar_one())
