"""The credit ledger: balances, holds, charges and grants, exact and safe under concurrency.

Model
    A user's balance is their subscription allowance (`users.allowance_nanos`: spent first,
    reset monthly to the plan's amount, no roll-over) plus purchased credits
    (`users.credits_nanos`: never expire, untouched by plan changes). Amounts are integer
    nano-dollars inside, `Decimal` USD at the edges (`Balance`, `grant`).

    Every change to allowance or purchased credits writes one `credit_transactions` row
    (type, signed amount, balance after, request id), so for every user
    `allowance + purchased == sum(amount_nanos)` and each row's `balance_after_nanos` is the
    running sum: `verify_ledger` checks exactly that.

Holds
    Before a provider call the caller reserves the estimated maximum cost with `hold`. A hold
    is not a balance change (no ledger row): it is a `credit_holds` row plus the user's
    `held_nanos` (the sum of their open holds), and `available = allowance + purchased - held`.
    `settle` turns the hold into one `usage` row of the actual cost (allowance first, then
    purchased) and releases the rest; `release` drops it with nothing charged (refund path);
    `release_expired` sweeps holds whose process died. A hold row outlives its request, so a
    request id is single-use: a second settle, a settle after release or a release after
    settle are no-ops. The hold operations live in `billing.holds` (plain SQL, synchronous) so
    that the request path can run them without SQLAlchemy's per-statement cost
    (`billing.ledger_runner`); the functions here run the same code on an async connection.

Concurrency
    Each operation (reads included) is one transaction: its own, committed on return, when the
    connection is idle; the caller's, which the caller commits, when one is already open (note
    that SQLAlchemy opens one implicitly on any statement). On PostgreSQL a hold is a single
    conditional UPDATE (`held = held + m WHERE allowance + purchased - held >= m`), which
    row-locks the user and re-checks the condition against the latest committed row, so any
    number of workers can never reserve more than the balance. Every other operation first
    locks the user row with an UPDATE … RETURNING (on SQLite that takes the database write
    lock, which serialises writers); settle and release first flip the hold's status with a
    conditional UPDATE, their idempotency gate. Charges are idempotent by the unique
    `(request_id, type)` ledger key, inserted with ON CONFLICT DO NOTHING. Lock order is
    always hold row, then user row: no deadlocks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.billing import holds
from gatewayz.billing.holds import DEFAULT_HOLD_TTL
from gatewayz.billing.ledger_base import (
    Balance,
    InsufficientCredits,
    LedgerInconsistent,
    UnknownUser,
    add_months,
    check_nanos,
    lock_user,
    set_allowance,
    set_money,
    transaction,
    verify_ledger,
    write_row,
)
from gatewayz.billing.plans import TrialTerms, load_plans
from gatewayz.money import nanos_to_usd, usd_to_nanos
from gatewayz.storage.tables import credit_holds, credit_transactions, users, utcnow

__all__ = [
    "DEFAULT_HOLD_TTL",
    "GRANT_TYPES",
    "Balance",
    "InsufficientCredits",
    "LedgerInconsistent",
    "UnknownUser",
    "balance",
    "change_plan",
    "charge",
    "grant",
    "hold",
    "release",
    "release_expired",
    "reset_allowance",
    "settle",
    "verify_ledger",
]

GRANT_TYPES: tuple[str, ...] = ("grant", "purchase", "refund", "adjustment")


async def balance(conn: AsyncConnection, user_id: str) -> Balance:
    """The user's allowance, purchased credits, open holds and available amount."""
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
    allowance, purchased, held = int(row[0]), int(row[1]), int(row[2])
    return Balance(
        allowance=nanos_to_usd(allowance),
        purchased=nanos_to_usd(purchased),
        held=nanos_to_usd(held),
        available=nanos_to_usd(allowance + purchased - held),
    )


async def grant(
    conn: AsyncConnection,
    user_id: str,
    usd: Decimal | int | str,
    type: str = "grant",
    request_id: str | None = None,
    description: str | None = None,
) -> bool:
    """Add (or, for a negative `adjustment`, remove) purchased credits; one ledger row.

    With a `request_id` (e.g. a payment id) the grant is idempotent: a repeat returns False and
    changes nothing. A removal may not take the available balance below zero.
    """
    if type not in GRANT_TYPES:
        raise ValueError(f"unknown grant type {type!r}; expected one of {', '.join(GRANT_TYPES)}")
    nanos = usd_to_nanos(usd)
    if nanos == 0 or (nanos < 0 and type != "adjustment"):
        raise ValueError(f"a {type} must be a positive amount (only adjustments may be negative)")
    async with transaction(conn):
        state = await lock_user(conn, user_id)
        if nanos < 0 and (state.purchased + nanos < 0 or state.total - state.held + nanos < 0):
            raise InsufficientCredits(f"cannot remove {nanos_to_usd(-nanos)} USD")
        if not await write_row(
            conn, user_id, type, nanos, state.total + nanos, request_id, description
        ):
            return False
        await set_money(conn, user_id, state.allowance, state.purchased + nanos, state.held)
        return True


async def hold(
    conn: AsyncConnection,
    user_id: str,
    request_id: str,
    max_nanos: int,
    *,
    now: datetime | None = None,
    ttl: timedelta = DEFAULT_HOLD_TTL,
    daily_cap_nanos: int | None = None,
    trial: TrialTerms | None = None,
) -> bool:
    """Reserve `max_nanos` for a request; False when the available balance (or the daily spend
    cap, or the trial's limits) does not allow it. See `holds.hold`."""
    async with transaction(conn):
        return await conn.run_sync(
            holds.hold,
            user_id,
            request_id,
            max_nanos,
            now=now,
            ttl=ttl,
            daily_cap_nanos=daily_cap_nanos,
            trial=trial,
        )


async def settle(
    conn: AsyncConnection,
    user_id: str,
    request_id: str,
    actual_nanos: int,
    *,
    tokens: int = 0,
    now: datetime | None = None,
    description: str = "",
) -> int:
    """Charge the actual cost of a held request once; the nanos charged. See `holds.settle`."""
    async with transaction(conn):
        return await conn.run_sync(
            holds.settle,
            user_id,
            request_id,
            actual_nanos,
            tokens=tokens,
            now=now,
            description=description,
        )


async def release(conn: AsyncConnection, request_id: str) -> bool:
    """Drop an open hold with nothing charged (refund path); False if it was not open."""
    async with transaction(conn):
        return await conn.run_sync(holds.release, request_id)


async def release_expired(conn: AsyncConnection, now: datetime | None = None) -> int:
    """Release every open hold whose expiry has passed (its worker died); how many."""
    moment = now or utcnow()
    async with transaction(conn):
        expired = (
            await conn.execute(
                select(credit_holds.c.request_id).where(
                    credit_holds.c.status == "held", credit_holds.c.expires_at <= moment
                )
            )
        ).scalars()
        count = 0
        for request_id in list(expired):
            count += await release(conn, request_id)
        return count


async def charge(conn: AsyncConnection, user_id: str, request_id: str, nanos: int) -> bool:
    """Deduct `nanos` once per request id (allowance first); False for a repeat.

    `InsufficientCredits` (nothing written) when the available balance does not cover it.
    """
    check_nanos("nanos", nanos)
    async with transaction(conn):
        state = await lock_user(conn, user_id)
        seen = await conn.execute(
            select(credit_transactions.c.id).where(
                credit_transactions.c.request_id == request_id,
                credit_transactions.c.type == "usage",
            )
        )
        if seen.first() is not None:
            return False
        if state.total - state.held < nanos:
            raise InsufficientCredits(f"{nanos_to_usd(nanos)} USD exceeds the available balance")
        from_allowance = min(state.allowance, nanos)
        description = f"allowance {from_allowance} + purchased {nanos - from_allowance} nanos"
        if not await write_row(
            conn, user_id, "usage", -nanos, state.total - nanos, request_id, description
        ):
            return False
        await set_money(
            conn,
            user_id,
            state.allowance - from_allowance,
            state.purchased - (nanos - from_allowance),
            state.held,
        )
        return True


async def reset_allowance(
    conn: AsyncConnection, user_id: str, plan_amount_nanos: int, now: datetime
) -> bool:
    """Monthly reset: the allowance becomes exactly the plan's amount (unused part is lost).

    Runs only when due (`users.allowance_resets_at` unset or reached); the next reset is one
    calendar month after the previous one. False when not due.
    """
    check_nanos("plan_amount_nanos", plan_amount_nanos)
    async with transaction(conn):
        state = await lock_user(conn, user_id)
        if state.resets_at is not None and now < state.resets_at:
            return False
        base = state.resets_at or now
        months = 1
        while add_months(base, months) <= now:
            months += 1
        await set_allowance(
            conn, user_id, state, plan_amount_nanos, add_months(base, months), "monthly reset"
        )
        return True


async def change_plan(
    conn: AsyncConnection,
    user_id: str,
    plan: str,
    *,
    allowance_nanos: int | None = None,
    now: datetime | None = None,
) -> None:
    """Switch the user's plan. Purchased credits are never touched.

    With `allowance_nanos` the new plan's allowance starts now (a `reset` row; the old
    allowance is not carried over) and renews monthly from today.
    """
    if plan not in load_plans().tiers:
        raise ValueError(f"unknown plan {plan!r}")
    async with transaction(conn):
        state = await lock_user(conn, user_id)
        if allowance_nanos is None:
            await conn.execute(update(users).where(users.c.id == user_id).values(plan=plan))
            return
        check_nanos("allowance_nanos", allowance_nanos)
        moment = now or utcnow()
        await set_allowance(
            conn,
            user_id,
            state,
            allowance_nanos,
            add_months(moment, 1),
            f"plan changed to {plan}",
            plan=plan,
        )
