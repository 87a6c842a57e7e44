"""Ledger building blocks: errors, the `Balance` value, row locking, ledger rows, the check.

See `gatewayz.billing.ledger` for the model and the operations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.tables import (
    UTCDateTime,
    credit_holds,
    credit_transactions,
    users,
    utcnow,
)


class InsufficientCredits(Exception):
    """The user's available balance does not cover the amount (the caller answers 402)."""


class UnknownUser(LookupError):
    """No user with that id."""


class LedgerInconsistent(AssertionError):
    """A user's balance and ledger rows disagree."""


@dataclass(frozen=True, slots=True)
class Balance:
    """A user's balance in USD. `available` is what a new request may reserve."""

    allowance: Decimal
    purchased: Decimal
    held: Decimal
    available: Decimal

    @property
    def total(self) -> Decimal:
        """Allowance plus purchased credits (holds not deducted)."""
        return self.allowance + self.purchased


@dataclass(frozen=True, slots=True)
class LockedMoney:
    allowance: int
    purchased: int
    held: int
    resets_at: datetime | None

    @property
    def total(self) -> int:
        return self.allowance + self.purchased


@asynccontextmanager
async def transaction(conn: AsyncConnection) -> AsyncIterator[None]:
    if conn.in_transaction():
        yield
        return
    async with conn.begin():
        yield


def check_nanos(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be int nano-dollars")
    if value < 0:
        raise ValueError(f"{name} must not be negative")


def dialect_insert(conn: AsyncConnection | Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


_LOCK_USER = (
    text(
        "UPDATE users SET updated_at = :moment WHERE id = :user_id "
        "RETURNING allowance_nanos, credits_nanos, held_nanos, allowance_resets_at"
    )
    .bindparams(bindparam("moment", type_=UTCDateTime()))
    .columns(
        allowance_nanos=BigInteger(),
        credits_nanos=BigInteger(),
        held_nanos=BigInteger(),
        allowance_resets_at=UTCDateTime(),
    )
)
# One ledger row; no row back when `(request_id, type)` exists (idempotency).
WRITE_ROW = text(
    "INSERT INTO credit_transactions (user_id, type, amount_nanos, balance_after_nanos, "
    "request_id, description, created_at) VALUES (:user_id, :type, :amount, :after, "
    ":request_id, :description, :moment) ON CONFLICT DO NOTHING RETURNING id"
).bindparams(bindparam("moment", type_=UTCDateTime()))


def lock_user_sync(conn: Connection, user_id: str) -> LockedMoney:
    """Lock the user's row (SQLite: the database) for this transaction and read its money."""
    row = conn.execute(_LOCK_USER, {"moment": utcnow(), "user_id": user_id}).first()
    if row is None:
        raise UnknownUser(user_id)
    return LockedMoney(int(row[0]), int(row[1]), int(row[2]), row[3])


def write_row_sync(
    conn: Connection,
    user_id: str,
    type_: str,
    amount: int,
    balance_after: int,
    request_id: str | None,
    description: str | None,
) -> bool:
    """Insert one ledger row; False when `(request_id, type)` already exists."""
    params = {
        "user_id": user_id,
        "type": type_,
        "amount": amount,
        "after": balance_after,
        "request_id": request_id,
        "description": description,
        "moment": utcnow(),
    }
    return conn.execute(WRITE_ROW, params).first() is not None


def set_money_sync(
    conn: Connection, user_id: str, allowance: int, purchased: int, held: int, **extra: Any
) -> None:
    conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(allowance_nanos=allowance, credits_nanos=purchased, held_nanos=held, **extra)
    )


# Async twins (one implementation: the sync code runs on the async connection's greenlet).
async def lock_user(conn: AsyncConnection, user_id: str) -> LockedMoney:
    return await conn.run_sync(lock_user_sync, user_id)


async def write_row(
    conn: AsyncConnection,
    user_id: str,
    type_: str,
    amount: int,
    balance_after: int,
    request_id: str | None,
    description: str | None,
) -> bool:
    return await conn.run_sync(
        write_row_sync, user_id, type_, amount, balance_after, request_id, description
    )


async def set_money(
    conn: AsyncConnection, user_id: str, allowance: int, purchased: int, held: int, **extra: Any
) -> None:
    await conn.run_sync(set_money_sync, user_id, allowance, purchased, held, **extra)


def add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    next_first = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=moment.tzinfo)
    last_day = (next_first - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


async def set_allowance(
    conn: AsyncConnection,
    user_id: str,
    state: LockedMoney,
    amount: int,
    next_reset: datetime,
    description: str,
    **extra: Any,
) -> None:
    delta = amount - state.allowance
    await write_row(conn, user_id, "reset", delta, state.total + delta, None, description)
    await set_money(
        conn,
        user_id,
        amount,
        state.purchased,
        state.held,
        allowance_resets_at=next_reset,
        **extra,
    )


async def verify_ledger(conn: AsyncConnection, user_id: str) -> None:
    """Raise `LedgerInconsistent` unless the user's money matches their ledger and holds.

    Checks: allowance + purchased == sum of ledger amounts; each row's balance_after is the
    running sum; held == sum of open holds; the allowance is not negative. Purchased credits
    may be: a charge is never capped, so a provider that billed more than the hold's bound
    leaves the balance below zero by the difference (`holds.settle`).
    """
    async with transaction(conn):
        await _verify(conn, user_id)


async def _verify(conn: AsyncConnection, user_id: str) -> None:
    row = (
        await conn.execute(
            select(users.c.allowance_nanos, users.c.credits_nanos, users.c.held_nanos).where(
                users.c.id == user_id
            )
        )
    ).first()
    if row is None:
        raise UnknownUser(user_id)
    allowance, purchased, held = int(row[0]), int(row[1]), int(row[2])
    entries = await conn.execute(
        select(credit_transactions.c.amount_nanos, credit_transactions.c.balance_after_nanos)
        .where(credit_transactions.c.user_id == user_id)
        .order_by(credit_transactions.c.id)
    )
    running = 0
    for amount, after in entries:
        running += int(amount)
        if int(after) != running:
            raise LedgerInconsistent(f"{user_id}: balance_after {after} != running sum {running}")
    if running != allowance + purchased:
        raise LedgerInconsistent(
            f"{user_id}: ledger sums to {running}, balance is {allowance + purchased}"
        )
    open_holds = (
        await conn.execute(
            select(func.coalesce(func.sum(credit_holds.c.amount_nanos), 0)).where(
                credit_holds.c.user_id == user_id, credit_holds.c.status == "held"
            )
        )
    ).scalar_one()
    if int(open_holds) != held:
        raise LedgerInconsistent(f"{user_id}: held {held} != open holds {open_holds}")
    if allowance < 0:
        raise LedgerInconsistent(f"{user_id}: negative allowance")
