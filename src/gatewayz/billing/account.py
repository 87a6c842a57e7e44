"""A user's money as the `/user/*` billing routes show it: the user's row with their balance,
and pages of their ledger. Each function is one transaction on the database it is given."""

from __future__ import annotations

from typing import Any

from gatewayz.billing import ledger
from gatewayz.errors import InvalidRequest, NotFound
from gatewayz.storage import users
from gatewayz.storage.db import Database, DbConnection
from gatewayz.storage.ledger import statements
from gatewayz.storage.tables import CREDIT_TYPES


async def _user(conn: DbConnection, user_id: str) -> dict[str, Any]:
    row = await users.get_user(conn, user_id)
    if row is None:  # deleted while its key was still cached
        raise NotFound("Your user account no longer exists.", code="user_not_found")
    return row


async def current_user(db: Database, user_id: str) -> dict[str, Any]:
    """The user's current row (read afresh: a principal's copy may be cached); 404 when the
    user is gone."""
    async with db.begin() as conn:
        return await _user(conn, user_id)


async def user_and_balance(db: Database, user_id: str) -> tuple[dict[str, Any], ledger.Balance]:
    """The user's row and their balance, read in one transaction; 404 when the user is gone."""
    async with db.begin() as conn:
        user = await _user(conn, user_id)
        return user, await ledger.balance(conn, user_id)


async def transactions_page(
    db: Database, user_id: str, *, limit: int, type_: str | None, before_id: int | None
) -> tuple[list[dict[str, Any]], bool]:
    """The user's ledger rows, newest first (`statements.transactions_page`); 400 for an
    unknown `type`."""
    if type_ is not None and type_ not in CREDIT_TYPES:
        raise InvalidRequest(
            f"'type' must be one of {', '.join(CREDIT_TYPES)}; got {type_!r}.", param="type"
        )
    async with db.begin() as conn:
        return await statements.transactions_page(
            conn, user_id, limit=limit, type_=type_, before_id=before_id
        )
