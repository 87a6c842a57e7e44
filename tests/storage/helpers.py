"""Shared by the caching tests: count the SQL statements that reach a database, and a migrated
database with one user and their keys."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from gatewayz.accounts.api_keys import create_api_key
from gatewayz.security.keys import KeyRing
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.keys import list_user_keys
from gatewayz.storage.users import create_user


class Statements:
    """SQL statements executed through an engine, by the table they read or write."""

    def __init__(self) -> None:
        self.by_table: Counter[str] = Counter()
        self.total = 0
        self._lock = threading.Lock()

    def record(self, statement: str) -> None:
        words = statement.split()
        table = "?"
        for marker in ("FROM", "INTO", "UPDATE"):
            if marker in words and words.index(marker) + 1 < len(words):
                table = words[words.index(marker) + 1].strip('"')
                break
        with self._lock:
            self.total += 1
            self.by_table[table] += 1


@contextmanager
def counting(engine: AsyncEngine) -> Iterator[Statements]:
    """Every statement the engine sends to the database while the block runs."""
    seen = Statements()

    def listener(*args: Any) -> None:
        seen.record(args[2])  # (conn, cursor, statement, parameters, context, executemany)

    event.listen(engine.sync_engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", listener)


@dataclass
class World:
    db: Database
    ring: KeyRing
    user_id: str
    key: str


async def make_world(url: str) -> World:
    """A migrated database with one user holding two keys; `key` is the first one's secret."""
    await upgrade(url)
    db = Database(url)
    ring = KeyRing(Fernet.generate_key(), b"caching-test-hmac-key-" + b"x" * 20)
    async with db.begin() as conn:
        user = await create_user(conn, "cache@example.com", role="dev", plan="dev")
        _, key = await create_api_key(conn, ring, user["id"], "test", "first")
        await create_api_key(conn, ring, user["id"], "test", "second")
    return World(db, ring, str(user["id"]), key)


async def list_keys(world: World) -> list[dict[str, Any]]:
    """The read the `keys` entries cache (as the route loads it: JSON-ready)."""
    async with world.db.begin() as conn:
        rows = await list_user_keys(conn, world.user_id)
    return [{"id": r["id"], "name": r["name"]} for r in rows]


def cached_lookup(statement: str) -> str | None:
    """Which cached read (`keys`, `usage`) a SQL statement belongs to, if any: the key listing
    (not the auth lookup by hash, not one key by id) and the usage report's reads."""
    sql = " ".join(statement.split())
    if not sql.startswith("SELECT"):
        return None
    if "FROM request_logs" in sql:
        return "usage"
    listing = "FROM api_keys" in sql and "revoked_at IS NULL" in sql
    if listing and "key_hash" not in sql and "api_keys.id =" not in sql:
        return "keys"
    return None


class MixStatements:
    """The statements of a request mix: in total, and those of each cached read."""

    def __init__(self) -> None:
        self.total = 0
        self.cached: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, statement: str) -> None:
        lookup = cached_lookup(statement)
        with self._lock:
            self.total += 1
            if lookup is not None:
                self.cached[lookup] += 1

    @contextmanager
    def watching(self, engine: AsyncEngine) -> Iterator[MixStatements]:
        def listener(*args: Any) -> None:
            self.record(args[2])

        event.listen(engine.sync_engine, "before_cursor_execute", listener)
        try:
            yield self
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", listener)
