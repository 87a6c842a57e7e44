"""The webhook outbox, written inside the transaction of the change that causes an event (a
ledger change, an incident), so the event exists exactly when the change does. Plain SQL on any
connection the ledger uses (`sql.py`).

The request path's charges call `balance_fell`: a `credits.check` event when a charge took a
balance below the account's watch (`users.webhook_watch_nanos`: the highest armed threshold of
its webhook endpoints, `gatewayz.webhooks`), and the watch turned off until the dispatcher has
looked. One integer compared per charge; a row only on a crossing.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.money import usd_text
from gatewayz.storage.ledger.sql import MOMENTS, Conn, execute, sql
from gatewayz.storage.tables import users, utcnow
from gatewayz.storage.webhook_tables import webhook_endpoints

CHECK = "credits.check"  # internal: look at an account's balance against its endpoints

_EVENT = sql(
    "INSERT INTO webhook_events (id, user_id, type, data, dispatched, created_at) "
    "VALUES (:id, :user_id, :type, :data, :no, :moment)",
    MOMENTS[0],
)
_UNWATCH = sql("UPDATE users SET webhook_watch_nanos = NULL WHERE id = :user_id")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def add_event(
    conn: Conn,
    type: str,
    data: Mapping[str, Any],
    *,
    user_id: str | None,
    moment: datetime | None = None,
) -> str:
    """Write an event into the outbox, in the caller's transaction; its id."""
    event_id = new_id("evt")
    params = {
        "id": event_id,
        "user_id": user_id,
        "type": type,
        "data": json.dumps(dict(data), separators=(",", ":")),
        "no": False,
        "moment": moment or utcnow(),
    }
    execute(conn, _EVENT, params)
    return event_id


async def add_event_async(
    conn: AsyncConnection, type: str, data: Mapping[str, Any], *, user_id: str | None
) -> str:
    return await conn.run_sync(lambda c: add_event(c, type, data, user_id=user_id))


def balance_fell(
    conn: Conn, user_id: str, watch: int | None, balance: int, moment: datetime
) -> None:
    """After a charge: below the account's watch, a `credits.check` event and the watch off."""
    if watch is None or balance >= int(watch):
        return
    add_event(conn, CHECK, {"balance_nanos": str(balance)}, user_id=user_id, moment=moment)
    execute(conn, _UNWATCH, {"user_id": user_id})


ADDED, LOW, DEPLETED = "credits.added", "credits.low", "credits.depleted"
Crossed = tuple[dict[str, Any], str]  # (an endpoint's row, the event type it crossed)


def balance_changed(
    conn: Conn, user_id: str, before: int, after: int, reason: str, moment: datetime | None = None
) -> None:
    """After a grant, a purchase or an allowance reset (a SQLAlchemy connection): when the
    balance grew, `credits.added`, and the account's low-balance events armed again where it is
    back above their thresholds (here, in this transaction: the next charge must see them);
    when it fell, a `credits.check`."""
    assert not isinstance(conn, sqlite3.Connection)
    if after > before:
        data = {
            "amount_usd": usd_text(after - before),
            "balance_usd": usd_text(after),
            "reason": reason,
        }
        add_event(conn, ADDED, data, user_id=user_id, moment=moment)
        alarms(conn, user_id, fire=False)
    elif after < before:
        add_event(conn, CHECK, {"balance_nanos": str(after)}, user_id=user_id, moment=moment)


def alarms(conn: Connection, user_id: str, *, fire: bool) -> tuple[int, list[Crossed]]:
    """The account's balance alarms against its balance now, one rule for every caller: each
    enabled endpoint's `credits.low` / `credits.depleted` armed again where the balance is back
    at or above its threshold (above 0); with `fire`, those armed that the balance is below
    are returned and disarmed (once per crossing). Then the account's watch. (balance,
    crossings)"""
    u, e = users.c, webhook_endpoints.c
    balance = int(
        conn.execute(
            select(u.allowance_nanos + u.credits_nanos).where(u.id == user_id)
        ).scalar_one()
    )
    found = conn.execute(select(webhook_endpoints).where(e.user_id == user_id, e.enabled.is_(True)))
    endpoints = [dict(r._mapping) for r in found]
    crossed: list[Crossed] = []
    for endpoint in endpoints:
        armed = {LOW: endpoint["low_armed"], DEPLETED: endpoint["depleted_armed"]}
        above = {LOW: balance >= endpoint["low_threshold_nanos"], DEPLETED: balance > 0}
        now = dict(armed)
        for kind in (LOW, DEPLETED):
            if above[kind]:
                now[kind] = True
            elif fire and armed[kind] and kind in endpoint["events"]:
                now[kind] = False
                crossed.append((endpoint, kind))
        if now != armed:
            values = {"low_armed": now[LOW], "depleted_armed": now[DEPLETED]}
            conn.execute(update(webhook_endpoints).where(e.id == endpoint["id"]).values(**values))
            endpoint.update(values)
    conn.execute(
        update(users).where(u.id == user_id).values(webhook_watch_nanos=watch_of(endpoints))
    )
    return balance, crossed


def watch_of(endpoints: list[dict[str, Any]]) -> int | None:
    """An account's watch from its enabled endpoints: the highest armed `credits.low`
    threshold (1 nano for an armed `credits.depleted`); None when nothing is armed."""
    marks = [e["low_threshold_nanos"] for e in endpoints if LOW in e["events"] and e["low_armed"]]
    marks += [1 for e in endpoints if DEPLETED in e["events"] and e["depleted_armed"]]
    return max(marks) if marks else None
