"""Catalog sync state in the database (storage/catalog.py): a provider's sync is claimed by one
worker at a time, until it is due again."""

from __future__ import annotations

from datetime import timedelta

from gatewayz.storage.catalog import claim, record
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.tables import utcnow


async def test_a_claim_is_taken_by_one_worker_until_due_again(db_url: str) -> None:
    await upgrade(db_url)
    db = Database(db_url)
    try:
        now = utcnow()
        async with db.begin() as conn:
            first = await claim(conn, "openai", now, 3600, 300)
            second = await claim(conn, "openai", now, 3600, 300)
        assert (first, second) == (True, False)
        async with db.begin() as conn:  # the attempt failed: retried after the retry interval
            retry_early = await claim(conn, "openai", now + timedelta(seconds=299), 3600, 300)
            retry = await claim(conn, "openai", now + timedelta(seconds=301), 3600, 300)
        assert (retry_early, retry) == (False, True)
        later = now + timedelta(seconds=400)
        async with db.begin() as conn:
            await record(conn, "openai", "ok", later, models=3)
            not_due = await claim(conn, "openai", later + timedelta(seconds=3599), 3600, 300)
            due = await claim(conn, "openai", later + timedelta(seconds=3601), 3600, 300)
        assert (not_due, due) == (False, True)
    finally:
        await db.dispose()
