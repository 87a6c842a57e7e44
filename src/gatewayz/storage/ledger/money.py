"""The money repository: a user's money columns, row locking, ledger rows, the check.

The SQL of the ledger's operations (`billing.ledger` has the model and the rules; the hold
operations of the request path are `storage.ledger.holds`). The concurrency argument is in
`storage.ledger`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, bindparam, func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.ledger import outbox
from gatewayz.storage.tables import (
    UTCDateTime,
    credit_holds,
    credit_transactions,
    users,
    utcnow,
)


class UnknownUser(LookupError):
    """No user with that id."""


class LedgerInconsistent(AssertionError):
    """A user's balance and ledger rows disagree."""


@dataclass(frozen=True, slots=True)
class LockedMoney:
    """A user's money in nano-dollars, read with their row locked for the transaction."""

    allowance: int
    purchased: int
    held: int
    resets_at: datetime | None

    @property
    def total(self) -> int:
        return self.allowance + self.purchased


@asynccontextmanager
async def transaction(conn: AsyncConnection) -> AsyncIterator[None]:
    """The caller's transaction when one is open, else one of its own, committed on exit."""
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


async def set_allowance(
    conn: AsyncConnection,
    user_id: str,
    state: LockedMoney,
    amount: int,
    next_reset: datetime,
    description: str,
    **extra: Any,
) -> None:
    """The allowance becomes `amount` (a `reset` row for the difference), renewing at
    `next_reset`; `extra` columns are set on the user's row too."""
    delta = amount - state.allowance
    await write_row(conn, user_id, "reset", delta, state.total + delta, None, description)
    await conn.run_sync(
        outbox.balance_changed, user_id, state.total, state.total + delta, description
    )
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
    leaves the balance below zero by the difference (`storage.ledger.holds.settle`).
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


# ---- reads and plain updates of the ledger's operations ------------------------------------


async def read_money(conn: AsyncConnection, user_id: str) -> tuple[int, int, int]:
    """The user's (allowance, purchased, held) nanos, in one transaction; `UnknownUser`."""
    async with transaction(conn):
        row = (
            await conn.execute(
                select(users.c.allowance_nanos, users.c.credits_nanos, users.c.held_nanos).where(
                    users.c.id == user_id
                )
            )
        ).first()
    if row is None:
        raise UnknownUser(user_id)
    return int(row[0]), int(row[1]), int(row[2])


async def expired_holds(conn: AsyncConnection, moment: datetime) -> list[str]:
    """The request ids of the open holds whose expiry is at or before `moment`."""
    found = await conn.execute(
        select(credit_holds.c.request_id).where(
            credit_holds.c.status == "held", credit_holds.c.expires_at <= moment
        )
    )
    return list(found.scalars())


async def usage_charged(conn: AsyncConnection, request_id: str) -> bool:
    """Whether the request id has its `usage` ledger row already."""
    seen = await conn.execute(
        select(credit_transactions.c.id).where(
            credit_transactions.c.request_id == request_id,
            credit_transactions.c.type == "usage",
        )
    )
    return seen.first() is not None


async def set_plan(conn: AsyncConnection, user_id: str, plan: str) -> None:
    """The user's plan name, nothing else (their money stays)."""
    await conn.execute(update(users).where(users.c.id == user_id).values(plan=plan))


async def spending_state(conn: AsyncConnection, user_id: str) -> dict[str, Any]:
    """What decides whether the user may hold more: plan, money, trial counters, today's
    spend."""
    row = (
        (
            await conn.execute(
                select(
                    users.c.plan,
                    users.c.allowance_nanos,
                    users.c.credits_nanos,
                    users.c.held_nanos,
                    users.c.trial_ends_at,
                    users.c.trial_tokens_used,
                    users.c.trial_requests_used,
                    users.c.spend_day,
                    users.c.spend_day_nanos,
                ).where(users.c.id == user_id)
            )
        )
        .mappings()
        .one()
    )
    return dict(row)


async def due_allowance_resets(conn: AsyncConnection, moment: datetime) -> list[tuple[str, str]]:
    """(user id, plan) of each user whose allowance renews by `moment` without a Stripe
    subscription (Stripe renewals reset on `invoice.paid`)."""
    rows = await conn.execute(
        select(users.c.id, users.c.plan).where(
            users.c.allowance_resets_at <= moment,
            users.c.stripe_subscription_id.is_(None),
        )
    )
    return [(str(user_id), str(plan)) for user_id, plan in rows]
