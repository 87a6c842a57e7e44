"""The dispatcher and the outbox on each database: exclusive claims across workers, the charge
paths' crossing events (per-request settle and lease flush), the backoff's ceilings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from gatewayz.security.keys import KeyRing
from gatewayz.storage import webhooks as store
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.ledger import leases
from gatewayz.storage.ledger.leases import Batch, Charge
from gatewayz.storage.ledger.outbox import add_event_async
from gatewayz.storage.tables import users
from gatewayz.storage.users import create_user
from gatewayz.storage.webhook_tables import webhook_events
from gatewayz.webhooks.dispatcher import MAX_WAIT_S, Dispatcher
from tests.webhooks.receiver import Receiver, receiver

KEYRING = KeyRing(Fernet.generate_key(), b"h" * 32)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    await upgrade(db_url)
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


async def _endpoint(db: Database, url: str, events: list[str], credits: str = "5") -> str:
    async with db.begin() as conn:
        user = await create_user(conn, f"w{id(events)}@example.com", credits_usd=credits)
        row = await store.create_endpoint(
            conn,
            {
                "user_id": user["id"],
                "url": url,
                "description": None,
                "events": events,
                "secret_enc": KEYRING.encrypt("whsec_test"),
                "low_threshold_nanos": 10**9,
                "low_armed": True,
                "depleted_armed": True,
                "enabled": True,
                "disabled_reason": None,
                "failing_since": None,
            },
        )
    return str(row["id"])


def _dispatcher(db: Database, **kw: Any) -> Dispatcher:
    options: dict[str, Any] = {
        "interval_s": 0.05,
        "retry_base_s": 0.1,
        "max_attempts": 3,
        "allow_private": True,
    }
    return Dispatcher(db, KEYRING, **(options | kw))


async def test_two_workers_never_send_the_same_delivery_twice(db: Database, hook: Receiver) -> None:
    endpoint_id = await _endpoint(db, hook.url, ["credits.added"])
    async with db.begin() as conn:
        for i in range(30):
            data = {"endpoint_id": endpoint_id, "n": i}
            await add_event_async(conn, "webhook.test", data, user_id=None)
    first, second = _dispatcher(db), _dispatcher(db)
    for _ in range(3):
        await asyncio.gather(first.run_once(), second.run_once())
    sent = hook.of_type("webhook.test")
    deliveries = [r.headers["x-gatewayz-delivery"] for r in sent]
    assert len(deliveries) == 30 and len(set(deliveries)) == 30
    assert sorted(r.event["data"]["n"] for r in sent) == list(range(30))
    # Deliveries of one fan-out share their creation time: pages still hold each exactly once.
    seen: list[str] = []
    before = None
    async with db.begin() as conn:
        while page := await store.list_deliveries(conn, endpoint_id, 7, before):
            seen += [d["id"] for d in page]
            before = page[-1]["id"]
    assert sorted(seen) == sorted(deliveries)


async def test_a_lease_flush_below_the_watch_writes_a_check(db: Database) -> None:
    """The lease path (busy accounts) watches the balance like the per-request settle."""
    async with db.begin() as conn:
        user = await create_user(conn, "lease@example.com", credits_usd="1.2")
        watch = update(users).where(users.c.id == user["id"]).values(webhook_watch_nanos=10**9)
        await conn.execute(watch)

    def flush(sync_conn: Any) -> None:
        leases.grow(
            sync_conn, user["id"], "lease.t", 10**6, 10**6, exists=False, hold=1, ttl=timedelta(60)
        )
        charges = [Charge(f"r{i}", 10**8, 10, "t") for i in range(3)]  # $0.30: $0.90 left
        leases.flush(sync_conn, [Batch("lease.t", user["id"], charges)], ttl=timedelta(60))

    async with db.begin() as conn:
        await conn.run_sync(flush)
    async with db.begin() as conn:
        rows = (await conn.execute(select(webhook_events))).all()
        watch = (await conn.execute(select(users.c.webhook_watch_nanos))).scalar_one()
    assert [(r.type, r.user_id) for r in rows] == [("credits.check", user["id"])]
    assert json.loads(rows[0].data) == {"balance_nanos": str(9 * 10**8)}
    assert watch is None  # off until the dispatcher has looked


def test_backoff_is_full_jitter_under_a_doubling_ceiling() -> None:
    d = Dispatcher(
        None, KEYRING, interval_s=1, retry_base_s=30, max_attempts=12, allow_private=False
    )  # type: ignore[arg-type]
    for attempt, ceiling in ((1, 30), (2, 60), (3, 120), (8, 3840)):
        waits = [d._backoff(attempt) for _ in range(400)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # spread over the whole range (full jitter)
    assert all(d._backoff(40) <= MAX_WAIT_S for _ in range(100))
