"""Which events exist, what their payloads look like, and the balance rules.

Every payload is `{"id", "type", "created", "data"}`, amounts as decimal strings (USD). Types:

    credits.low        the balance fell below the endpoint's threshold (default $1); once per
                       crossing, armed again once the balance is back at or above it
    credits.depleted   the balance reached 0 (or less); once, armed again once it is above 0
    credits.added      a purchase, a grant, a refund credited or an allowance renewal (it arms
                       the low-balance events again, in its own transaction)
    model.degraded, model.recovered   incidents opened and resolved (every user's endpoints)
    rate_limit.approaching   a key passed 80 % of its requests per minute (once a minute)
    batch.completed    a batch ended (`status`: completed, failed, expired or cancelled), with
                       its request counts and output and error files; once per batch
    webhook.test       `POST /user/webhooks/{id}/test`, to that endpoint only

The balance is allowance plus purchased credits. A charge that takes it below the account's
watch writes a `credits.check` into the outbox (`storage.ledger.outbox`); `check_account`
decides, endpoint by endpoint, what fires and what is armed again, and sets the next watch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gatewayz.money import usd_text
from gatewayz.storage import webhooks as store
from gatewayz.storage.batches import BATCH_COMPLETED
from gatewayz.storage.db import DbConnection
from gatewayz.storage.ledger.outbox import ADDED, CHECK, DEPLETED, LOW, alarms, new_id
from gatewayz.webhooks.approaching import APPROACHING

DEGRADED, RECOVERED, TEST = "model.degraded", "model.recovered", "webhook.test"
# What an endpoint may ask for.
EVENT_TYPES = (LOW, DEPLETED, ADDED, DEGRADED, RECOVERED, APPROACHING, BATCH_COMPLETED)
DEFAULT_LOW_THRESHOLD_NANOS = 10**9  # $1


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event for one endpoint: its delivery's row."""

    endpoint_id: str
    event_id: str
    event_type: str
    payload: str


def payload(event_id: str, event_type: str, created: datetime, data: Mapping[str, Any]) -> str:
    body = {"id": event_id, "type": event_type, "created": int(created.timestamp()), "data": data}
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


async def check_account(conn: DbConnection, user_id: str, moment: datetime) -> list[Outgoing]:
    """Fire and re-arm the account's balance events against its balance now (`alarms`)."""
    balance, crossed = await conn.run_sync(lambda c: alarms(c, user_id, fire=True))
    out: list[Outgoing] = []
    for endpoint, kind in crossed:
        data = {"balance_usd": usd_text(balance)}
        if kind == LOW:
            data["threshold_usd"] = usd_text(endpoint["low_threshold_nanos"])
        out.append(_one(endpoint["id"], kind, moment, data))
    return out


def _one(endpoint_id: str, event_type: str, moment: datetime, data: dict[str, Any]) -> Outgoing:
    event_id = new_id("evt")
    return Outgoing(endpoint_id, event_id, event_type, payload(event_id, event_type, moment, data))


async def fan_out(conn: DbConnection, event: Mapping[str, Any]) -> list[Outgoing]:
    """The deliveries an outbox event makes (and, for balance events, the account's check)."""
    kind, user_id, moment = event["type"], event["user_id"], event["created_at"]
    data = json.loads(event["data"])
    if kind == CHECK:
        return await check_account(conn, user_id, moment) if user_id else []
    out: list[Outgoing] = []
    if kind == TEST:
        endpoints = [await store.get_endpoint(conn, user_id, data.get("endpoint_id", ""))]
    else:
        endpoints = list(await store.subscribed(conn, user_id, kind))
    body = payload(event["id"], kind, moment, data)
    out += [Outgoing(e["id"], event["id"], kind, body) for e in endpoints if e is not None]
    return out
