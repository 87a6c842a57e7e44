"""Stored responses' repository (storage/responses.py) on both backends: owner-only reads and
deletes, expiry (unreadable, deleted when read), the purge in batches."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from gatewayz.storage import responses as store
from gatewayz.storage.db import Database
from gatewayz.storage.response_tables import responses
from gatewayz.storage.tables import utcnow
from gatewayz.storage.users import create_user


def _row(response_id: str, user_id: str, expires_in: timedelta) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": response_id,
        "user_id": user_id,
        "model": "test-model",
        "created_at": now,
        "expires_at": now + expires_in,
        "conversation": "[]",
        "response": f'{{"id": "{response_id}"}}',
    }


async def _count(db: Database) -> int:
    async with db.begin() as conn:
        return int((await conn.execute(select(func.count()).select_from(responses))).scalar_one())


async def test_owner_only_reads_and_deletes(db: Database) -> None:
    async with db.begin() as conn:
        alice = (await create_user(conn, "alice@example.com"))["id"]
        bob = (await create_user(conn, "bob@example.com"))["id"]
        await store.insert_response(conn, _row("resp_a", alice, timedelta(days=1)))
    async with db.begin() as conn:
        row = await store.get_response(conn, alice, "resp_a")
        assert row is not None and row["response"] == '{"id": "resp_a"}'
        assert await store.get_response(conn, bob, "resp_a") is None
        assert await store.delete_response(conn, bob, "resp_a") is False
        assert await store.get_response(conn, alice, "resp_missing") is None
    async with db.begin() as conn:
        assert await store.delete_response(conn, alice, "resp_a") is True
        assert await store.get_response(conn, alice, "resp_a") is None


async def test_expired_responses_are_unreadable_deleted_on_read_and_purged(db: Database) -> None:
    async with db.begin() as conn:
        user = (await create_user(conn, "carol@example.com"))["id"]
        await store.insert_response(conn, _row("resp_old", user, -timedelta(seconds=1)))
        for i in range(5):
            await store.insert_response(conn, _row(f"resp_gone{i}", user, -timedelta(days=1)))
        await store.insert_response(conn, _row("resp_new", user, timedelta(days=1)))
    async with db.begin() as conn:
        assert await store.get_response(conn, user, "resp_old") is None
        assert await store.delete_response(conn, user, "resp_gone0") is False  # expired
    assert await _count(db) == 6  # resp_old deleted when read
    async with db.begin() as conn:
        assert await store.delete_expired(conn, limit=3) == 3
    async with db.begin() as conn:
        assert await store.delete_expired(conn, limit=3) == 2
        assert await store.delete_expired(conn, limit=3) == 0
    async with db.begin() as conn:
        assert await store.get_response(conn, user, "resp_new") is not None
    assert await _count(db) == 1
