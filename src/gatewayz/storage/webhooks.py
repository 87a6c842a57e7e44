"""Customer webhooks, the storage side (tables: `storage/webhook_tables.py`; the rules:
`gatewayz.webhooks`).

Events are written into the outbox by `storage.ledger.outbox`, inside the transaction of the
change that causes them; these are the endpoints, the fan-out and the deliveries.

Claims are exclusive: PostgreSQL takes rows with `FOR UPDATE SKIP LOCKED`, SQLite has one writer;
a claimed delivery's `next_attempt_at` moves past the claim's lease, so a worker that dies while
sending gives it back when the lease ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.ledger.outbox import new_id
from gatewayz.storage.tables import utcnow
from gatewayz.storage.webhook_tables import webhook_deliveries, webhook_endpoints, webhook_events

LOG_KEPT = 20  # attempts kept in a delivery's log


# ---- endpoints ---------------------------------------------------------------------------------
async def create_endpoint(conn: AsyncConnection, values: Mapping[str, Any]) -> dict[str, Any]:
    now = utcnow()
    row = {"id": new_id("whk"), **values, "created_at": now, "updated_at": now}
    await conn.execute(insert(webhook_endpoints).values(**row))
    return row


async def list_endpoints(conn: AsyncConnection, user_id: str) -> list[dict[str, Any]]:
    query = select(webhook_endpoints).where(webhook_endpoints.c.user_id == user_id)
    rows = await conn.execute(query.order_by(webhook_endpoints.c.created_at))
    return [dict(r._mapping) for r in rows]


async def get_endpoint(
    conn: AsyncConnection, user_id: str | None, endpoint_id: str
) -> dict[str, Any] | None:
    """One endpoint (of `user_id`, when given: another user's is None, like a missing one)."""
    query = select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
    if user_id is not None:
        query = query.where(webhook_endpoints.c.user_id == user_id)
    row = (await conn.execute(query)).first()
    return None if row is None else dict(row._mapping)


async def update_endpoint(conn: AsyncConnection, endpoint_id: str, **values: Any) -> None:
    values["updated_at"] = utcnow()
    await conn.execute(
        update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(**values)
    )


async def delete_endpoint(conn: AsyncConnection, user_id: str, endpoint_id: str) -> bool:
    e = webhook_endpoints.c
    done = await conn.execute(
        delete(webhook_endpoints).where(e.id == endpoint_id, e.user_id == user_id)
    )
    return bool(done.rowcount)


# ---- the dispatcher ----------------------------------------------------------------------------
def _skip_locked(conn: AsyncConnection, query: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


async def work_waiting(conn: AsyncConnection, now: datetime | None = None) -> tuple[bool, bool]:
    """(undispatched events?, deliveries due?): read first, so an idle round takes no write
    lock (SQLite's is the whole database), and the claims then start with their write."""
    ev, d = webhook_events.c, webhook_deliveries.c
    events = select(ev.id).where(ev.dispatched.is_(False)).limit(1)
    due = select(d.id).where(d.status == "pending", d.next_attempt_at <= (now or utcnow()))
    found = [(await conn.execute(q.limit(1))).first() is not None for q in (events, due)]
    return found[0], found[1]


async def claim_events(conn: AsyncConnection, limit: int) -> list[dict[str, Any]]:
    """Take undispatched events, oldest first: marked dispatched by this transaction, which
    fans them out (one statement: under SQLite's write lock, or skipping the rows another
    PostgreSQL transaction holds)."""
    ev = webhook_events.c
    oldest = select(ev.id).where(ev.dispatched.is_(False)).order_by(ev.created_at).limit(limit)
    taken = (
        update(webhook_events)
        .where(ev.id.in_(_skip_locked(conn, oldest)))
        .values(dispatched=True)
        .returning(*webhook_events.c)
    )
    rows = [dict(r._mapping) for r in await conn.execute(taken)]
    return sorted(rows, key=lambda r: r["created_at"])


async def subscribed(
    conn: AsyncConnection, user_id: str | None, event_type: str
) -> list[dict[str, Any]]:
    """Enabled endpoints that want `event_type` (of `user_id`; None: every user's)."""
    e = webhook_endpoints.c
    query = select(webhook_endpoints).where(e.enabled.is_(True))
    if user_id is not None:
        query = query.where(e.user_id == user_id)
    rows = [dict(r._mapping) for r in await conn.execute(query)]
    return [r for r in rows if event_type in (r["events"] or ())]


async def add_deliveries(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        now = utcnow()
        await conn.execute(
            insert(webhook_deliveries),
            [
                {
                    **r,
                    "status": "pending",
                    "attempts": 0,
                    "log": [],
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for r in rows
            ],
        )


async def claim_due(
    conn: AsyncConnection, limit: int, lease: timedelta, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Pending deliveries due now, claimed for `lease` (their next attempt moved past it), in
    one statement, like `claim_events`."""
    now = now or utcnow()
    d = webhook_deliveries.c
    due = select(d.id).where(d.status == "pending", d.next_attempt_at <= now)
    due = _skip_locked(conn, due.order_by(d.next_attempt_at).limit(limit))
    taken = (
        update(webhook_deliveries)
        .where(d.id.in_(due))
        .values(next_attempt_at=now + lease)
        .returning(*webhook_deliveries.c)
    )
    return [dict(r._mapping) for r in await conn.execute(taken)]


async def record_attempt(
    conn: AsyncConnection,
    delivery: Mapping[str, Any],
    attempt: Mapping[str, Any],
    *,
    status: str,
    next_attempt_at: datetime | None,
) -> None:
    """One attempt's outcome: the delivery's status, counters, log (the last `LOG_KEPT`)."""
    log = [*(delivery.get("log") or ()), dict(attempt)][-LOG_KEPT:]
    await conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery["id"])
        .values(
            status=status,
            attempts=webhook_deliveries.c.attempts + 1,
            next_attempt_at=next_attempt_at,
            last_status=attempt.get("status"),
            last_error=(attempt.get("error") or None) and str(attempt["error"])[:300],
            log=log,
            delivered_at=utcnow() if status == "delivered" else None,
        )
    )


async def list_deliveries(
    conn: AsyncConnection, endpoint_id: str, limit: int, before: str | None
) -> list[dict[str, Any]]:
    """Newest first; `before`: a delivery id, the page starts after it (deliveries of one
    fan-out share their time: the id breaks the tie)."""
    d = webhook_deliveries.c
    query = select(webhook_deliveries).where(d.endpoint_id == endpoint_id)
    if before is not None:
        mark = (await conn.execute(select(d.created_at).where(d.id == before))).first()
        if mark is None:
            return []
        query = query.where(tuple_(d.created_at, d.id) < tuple_(mark[0], before))
    query = query.order_by(d.created_at.desc(), d.id.desc()).limit(limit)
    return [dict(r._mapping) for r in await conn.execute(query)]


async def get_delivery(
    conn: AsyncConnection, endpoint_id: str, delivery_id: str
) -> dict[str, Any] | None:
    d = webhook_deliveries.c
    query = select(webhook_deliveries).where(d.id == delivery_id, d.endpoint_id == endpoint_id)
    row = (await conn.execute(query)).first()
    return None if row is None else dict(row._mapping)


async def redeliver(conn: AsyncConnection, delivery_id: str) -> None:
    """Due again now (its attempts and log kept)."""
    await conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id)
        .values(status="pending", next_attempt_at=utcnow())
    )
