"""Payments: Stripe's events as recorded (`stripe_events`) and the Stripe columns of `users`
(customer, subscription). Everything runs on the caller's connection, inside the transaction of
the event being handled (`billing.stripe_webhook`) or of a checkout.

An event's row is its claim: inserted (or a `failed` one taken back) before the event is
applied, its final status written in the same transaction, so a delivery is applied once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.db import dialect_insert
from gatewayz.storage.ledger.money import lock_user
from gatewayz.storage.tables import stripe_events, users, utcnow

MAX_EVENT_TYPE = 64  # stripe_events.type is String(64)


# ---- events --------------------------------------------------------------------------------


async def claim_event(conn: AsyncConnection, event_id: str, event_type: str) -> bool:
    """Insert the event's row (or take back a `failed` one); False when it is recorded."""
    inserted = (
        await conn.execute(
            dialect_insert(conn, stripe_events)
            .values(
                id=event_id,
                type=event_type[:MAX_EVENT_TYPE],
                status="processing",
                created_at=utcnow(),
            )
            .on_conflict_do_nothing()
            .returning(stripe_events.c.id)
        )
    ).first()
    if inserted is not None:
        return True
    retried = (
        await conn.execute(
            update(stripe_events)
            .where(stripe_events.c.id == event_id, stripe_events.c.status == "failed")
            .values(status="processing")
            .returning(stripe_events.c.id)
        )
    ).first()
    return retried is not None


async def finish_event(
    conn: AsyncConnection,
    event_id: str,
    status: str,
    user_id: str | None,
    detail: dict[str, Any],
) -> None:
    """The claimed event's outcome (`processed` | `ignored`), committed with its effect."""
    await conn.execute(
        update(stripe_events)
        .where(stripe_events.c.id == event_id)
        .values(status=status, user_id=user_id, detail=detail)
    )


async def record_event_failure(
    conn: AsyncConnection, event_id: str, event_type: str, reason: str
) -> None:
    """The event failed (its transaction rolled back): a `failed` row, or the reason updated on
    the one a previous delivery left."""
    stmt = dialect_insert(conn, stripe_events).values(
        id=event_id,
        type=event_type[:MAX_EVENT_TYPE],
        status="failed",
        detail={"reason": reason},
        created_at=utcnow(),
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[stripe_events.c.id],
            set_={"detail": stmt.excluded.detail},
            where=stripe_events.c.status == "failed",
        )
    )


async def processed_event_details(conn: AsyncConnection, user_id: str) -> list[Any]:
    """The stored `detail` of each processed event of the user."""
    rows = await conn.execute(
        select(stripe_events.c.detail).where(
            stripe_events.c.user_id == user_id, stripe_events.c.status == "processed"
        )
    )
    return [detail for (detail,) in rows]


# ---- the Stripe columns of users -------------------------------------------------------------


async def find_user(
    conn: AsyncConnection,
    *,
    user_id: Any = None,
    customer: str | None = None,
    subscription: str | None = None,
) -> dict[str, Any] | None:
    """The user of an event: by the metadata user id, else the Stripe customer, else the
    subscription."""
    lookups = []
    if isinstance(user_id, str) and user_id:
        lookups.append(users.c.id == user_id)
    if customer:
        lookups.append(users.c.stripe_customer_id == customer)
    if subscription:
        lookups.append(users.c.stripe_subscription_id == subscription)
    for condition in lookups:
        row = (await conn.execute(select(users).where(condition).limit(1))).mappings().first()
        if row is not None:
            return dict(row)
    return None


async def locked_user(conn: AsyncConnection, user_id: str) -> dict[str, Any]:
    """The user's row, read after locking it for this transaction."""
    await lock_user(conn, user_id)
    row = (await conn.execute(select(users).where(users.c.id == user_id))).mappings().one()
    return dict(row)


async def customer_of(conn: AsyncConnection, user_id: str) -> dict[str, Any] | None:
    """The user's id, e-mail and Stripe customer id, or None for an unknown user."""
    row = (
        await conn.execute(
            select(users.c.id, users.c.email, users.c.stripe_customer_id).where(
                users.c.id == user_id
            )
        )
    ).first()
    return None if row is None else dict(row._mapping)


async def set_customer(
    conn: AsyncConnection, user_id: str, customer_id: str, *, at: datetime | None = None
) -> None:
    """Store the user's Stripe customer unless they have one already (the first one stays);
    `at`: the row's `updated_at` too."""
    values: dict[str, Any] = {"stripe_customer_id": customer_id}
    if at is not None:
        values["updated_at"] = at
    await conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.stripe_customer_id.is_(None))
        .values(**values)
    )


async def set_subscription(conn: AsyncConnection, user_id: str, subscription_id: str) -> None:
    await conn.execute(
        update(users).where(users.c.id == user_id).values(stripe_subscription_id=subscription_id)
    )


async def end_subscription(conn: AsyncConnection, user_id: str) -> None:
    """No subscription, no monthly allowance: nothing for the allowance sweep to renew."""
    await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(stripe_subscription_id=None, allowance_resets_at=None)
    )
