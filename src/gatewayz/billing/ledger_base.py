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

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.tables import credit_holds, credit_transactions, users, utcnow


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


def dialect_insert(conn: AsyncConnection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def lock_user(conn: AsyncConnection, user_id: str) -> LockedMoney:
    """Lock the user's row (SQLite: the database) for this transaction and read its money."""
    row = (
        await conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(updated_at=utcnow())
            .returning(
                users.c.allowance_nanos,
                users.c.credits_nanos,
                users.c.held_nanos,
                users.c.allowance_resets_at,
            )
        )
    ).first()
    if row is None:
        raise UnknownUser(user_id)
    return LockedMoney(int(row[0]), int(row[1]), int(row[2]), row[3])


async def write_row(
    conn: AsyncConnection,
    user_id: str,
    type_: str,
    amount: int,
    balance_after: int,
    request_id: str | None,
    description: str | None,
) -> bool:
    """Insert one ledger row; False when `(request_id, type)` already exists."""
    stmt = (
        dialect_insert(conn, credit_transactions)
        .values(
            user_id=user_id,
            type=type_,
            amount_nanos=amount,
            balance_after_nanos=balance_after,
            request_id=request_id,
            description=description,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing()
        .returning(credit_transactions.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def set_money(
    conn: AsyncConnection, user_id: str, allowance: int, purchased: int, held: int, **extra: Any
) -> None:
    await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(allowance_nanos=allowance, credits_nanos=purchased, held_nanos=held, **extra)
    )


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
    running sum; held == sum of open holds; neither allowance nor purchased is negative.
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
    if allowance < 0 or purchased < 0:
        raise LedgerInconsistent(f"{user_id}: negative allowance or purchased credits")
