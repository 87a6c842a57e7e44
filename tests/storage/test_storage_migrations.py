"""Alembic migrations on SQLite and PostgreSQL: from empty, idempotent, matching tables.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from gatewayz.storage.db import Database, alembic_config, current_revision, make_engine, upgrade
from gatewayz.storage.tables import metadata

TABLES = {
    "users",
    "api_keys",
    "credit_transactions",
    "request_logs",
    "audit_logs",
    "partner_trials",
    "credit_holds",
}

# The newest revision, from the migration scripts themselves.
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _schema_diff(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_upgrade_from_empty_twice(db_url: str) -> None:
    assert await current_revision(db_url) is None
    assert await upgrade(db_url) == HEAD
    assert await upgrade(db_url) == HEAD  # already at head: a no-op
    assert await current_revision(db_url) == HEAD
    engine = make_engine(db_url, pooled=False)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(_table_names)
            assert TABLES | {"alembic_version"} <= names
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            assert [tuple(v) for v in versions] == [(HEAD,)]
    finally:
        await engine.dispose()


async def test_concurrent_upgrades_are_serialised(db_url: str) -> None:
    # Several workers starting at once: one migrates, the others find the schema at head.
    assert await asyncio.gather(*(upgrade(db_url) for _ in range(4))) == [HEAD] * 4


async def test_migration_matches_table_definitions(db_url: str) -> None:
    await upgrade(db_url)
    engine = make_engine(db_url, pooled=False)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_schema_diff)
    finally:
        await engine.dispose()
    assert diff == []


async def test_sqlite_pragmas_and_parent_dir(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "gw.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade(url)
    assert path.exists()
    db = Database(url)
    try:
        async with db.begin() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
            busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
            sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar_one()
            fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
        assert (mode, busy, sync, fks) == ("wal", 5000, 1, 1)  # synchronous 1 = NORMAL
        assert db.dialect == "sqlite"
    finally:
        await db.dispose()
