"""The credit ledger: balances, holds, charges and grants, exact and safe under concurrency.

Model
    A user's balance is their subscription allowance (`users.allowance_nanos`: spent first,
    reset monthly to the plan's amount, no roll-over) plus purchased credits
    (`users.credits_nanos`: never expire, untouched by plan changes). Amounts are integer
    nano-dollars inside, `Decimal` USD at the edges (`Balance`, `grant`).

    Every change to allowance or purchased credits writes one `credit_transactions` row
    (type, signed amount, balance after, request id), so for every user
    `allowance + purchased == sum(amount_nanos)` and each row's `balance_after_nanos` is the
    running sum: `storage.ledger.money.verify_ledger` checks exactly that.

Holds
    Before a provider call the caller reserves the estimated maximum cost with `hold`. A hold
    is not a balance change (no ledger row): it is a `credit_holds` row plus the user's
    `held_nanos` (the sum of their open holds), and `available = allowance + purchased - held`.
    `settle` turns the hold into one `usage` row of the actual cost (allowance first, then
    purchased) and releases the rest; `release` drops it with nothing charged (refund path);
    `release_expired` sweeps holds whose process died. A hold row outlives its request, so a
    request id is single-use: a second settle, a settle after release or a release after
    settle are no-ops. The hold operations live in `storage.ledger.holds` (plain SQL,
    synchronous) so that the request path can run them without SQLAlchemy's per-statement cost
    (`storage.ledger.runner`); the functions here run the same code on an async connection.

Concurrency
    Each operation (reads included) is one transaction: its own when the connection is idle,
    the caller's when one is open. Why the operations stay exact under any number of workers
    (the conditional UPDATE of a hold, the user-row lock, the idempotent ledger key, the lock
    order) is argued with the SQL that does it, in `storage.ledger`.

The SQL is the money repository's (`storage.ledger`); what is here is the rules: which grants
exist, what a charge may take, when an allowance resets, which plans exist, and USD at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from gatewayz.billing.plans import TrialTerms, load_plans
from gatewayz.money import nanos_to_usd, usd_to_nanos
from gatewayz.storage.db import DbConnection
from gatewayz.storage.ledger import holds, money, outbox
from gatewayz.storage.ledger.holds import DEFAULT_HOLD_TTL
from gatewayz.storage.ledger.money import (
    check_nanos,
    lock_user,
    set_allowance,
    set_money,
    transaction,
    write_row,
)
from gatewayz.storage.tables import utcnow

GRANT_TYPES: tuple[str, ...] = ("grant", "purchase", "refund", "adjustment")


class InsufficientCredits(Exception):
    """The user's available balance does not cover the amount (the caller answers 402)."""


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


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` calendar months later (the month's last day when it is shorter)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    next_first = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=moment.tzinfo)
    last_day = (next_first - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


async def balance(conn: DbConnection, user_id: str) -> Balance:
    """The user's allowance, purchased credits, open holds and available amount."""
    allowance, purchased, held = await money.read_money(conn, user_id)
    return Balance(
        allowance=nanos_to_usd(allowance),
        purchased=nanos_to_usd(purchased),
        held=nanos_to_usd(held),
        available=nanos_to_usd(allowance + purchased - held),
    )


async def grant(
    conn: DbConnection,
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
        reason = description or type
        await conn.run_sync(
            outbox.balance_changed, user_id, state.total, state.total + nanos, reason
        )
        return True


async def hold(
    conn: DbConnection,
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
    conn: DbConnection,
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
            trial_plan=load_plans().trial.plan,
        )


async def release(conn: DbConnection, request_id: str) -> bool:
    """Drop an open hold with nothing charged (refund path); False if it was not open."""
    async with transaction(conn):
        return await conn.run_sync(holds.release, request_id)


async def release_expired(conn: DbConnection, now: datetime | None = None) -> int:
    """Release every open hold whose expiry has passed (its worker died); how many."""
    moment = now or utcnow()
    async with transaction(conn):
        count = 0
        for request_id in await money.expired_holds(conn, moment):
            count += await release(conn, request_id)
        return count


async def charge(conn: DbConnection, user_id: str, request_id: str, nanos: int) -> bool:
    """Deduct `nanos` once per request id (allowance first); False for a repeat.

    `InsufficientCredits` (nothing written) when the available balance does not cover it.
    """
    check_nanos("nanos", nanos)
    async with transaction(conn):
        state = await lock_user(conn, user_id)
        if await money.usage_charged(conn, request_id):
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
    conn: DbConnection, user_id: str, plan_amount_nanos: int, now: datetime
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
    conn: DbConnection,
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
            await money.set_plan(conn, user_id, plan)
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
