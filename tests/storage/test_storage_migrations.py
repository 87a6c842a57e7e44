"""Alembic migrations on SQLite and PostgreSQL: from empty, idempotent, matching tables.py."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage import (  # noqa: F401 (their tables, on `metadata`)
    batch_tables,
    meta_tables,
    response_tables,
    webhook_tables,
)
from gatewayz.storage.db import Database, alembic_config, current_revision, make_engine, upgrade
from gatewayz.storage.tables import metadata, utcnow

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
    # Several workers starting at once: one migrates, the others find the schema at head. Every
    # upgrade ends before the test does (one failing must not leave the others running into
    # the next test: Alembic's context is process-global).
    results = await asyncio.gather(*(upgrade(db_url) for _ in range(4)), return_exceptions=True)
    assert results == [HEAD] * 4


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


def _migrate_sync(connection: Connection, revision: str, down: bool) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(config, revision)


async def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    engine = make_engine(url, foreign_keys=False, pooled=False)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate_sync, revision, down)
    finally:
        await engine.dispose()


async def _request_ids(conn: AsyncConnection, table: str) -> list[str]:
    rows = await conn.execute(text(f"SELECT request_id FROM {table} ORDER BY request_id"))
    return [r[0] for r in rows]


REQUEST_ID_TABLES = ("request_logs", "credit_transactions", "credit_holds")


async def test_request_id_columns_widen_to_128_keeping_their_rows(db_url: str) -> None:
    # Written before 0009: 64-character ids. After it: 128-character ids fit on PostgreSQL too,
    # and the older rows (SQLite copies each table) are all still there.
    await _migrate(db_url, "0008")
    old, new = "o" * 64, "n" * 128
    db = Database(db_url)
    try:
        async with db.begin() as conn:  # SQL of 0008's schema, whatever later revisions add
            await conn.execute(text("INSERT INTO users (id, email) VALUES ('usr_w', 'w@x.org')"))
        await _insert_request_id_rows(db, "usr_w", old)
        await _migrate(db_url, "0009")
        await _insert_request_id_rows(db, "usr_w", new)
        async with db.begin() as conn:
            for table in REQUEST_ID_TABLES:
                assert await _request_ids(conn, table) == [new, old], table
            await conn.execute(text("DELETE FROM request_logs WHERE request_id = :r"), {"r": new})
            await conn.execute(text("DELETE FROM credit_holds WHERE request_id = :r"), {"r": new})
            await conn.execute(
                text("DELETE FROM credit_transactions WHERE request_id = :r"), {"r": new}
            )
        await db.dispose()
        # Back to 64 characters, with the rows that fit.
        await _migrate(db_url, "0008", down=True)
        async with db.begin() as conn:
            for table in REQUEST_ID_TABLES:
                assert await _request_ids(conn, table) == [old], table
    finally:
        await db.dispose()


async def _insert_request_id_rows(db: Database, user_id: str, request_id: str) -> None:
    async with db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO request_logs (request_id, endpoint, model, status_code, created_at)"
                " VALUES (:r, 'chat', 'm', 200, :t)"
            ),
            {"r": request_id, "t": utcnow()},
        )
        await conn.execute(
            text(
                "INSERT INTO credit_transactions (user_id, type, amount_nanos, "
                "balance_after_nanos, request_id, created_at) VALUES (:u, 'usage', -1, 0, :r, :t)"
            ),
            {"u": user_id, "r": request_id, "t": utcnow()},
        )
        await conn.execute(
            text(
                "INSERT INTO credit_holds (request_id, user_id, amount_nanos, status, created_at,"
                " expires_at) VALUES (:r, :u, 1, 'held', :t, :t)"
            ),
            {"u": user_id, "r": request_id, "t": utcnow()},
        )


async def test_the_sweep_finds_expired_open_holds_without_reading_the_history(
    postgres_url: str,
) -> None:
    # 20,000 settled holds long expired, 3 open ones: the sweep's query (open and expired) is
    # answered from the partial index on open holds, not by reading every settled hold.
    await upgrade(postgres_url)
    engine = make_engine(postgres_url, pooled=False)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO users (id, email, role, plan) VALUES ('usr_sweep', "
                    "'sweep@example.com', 'dev', 'dev')"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO credit_holds (request_id, user_id, amount_nanos, status, "
                    "created_at, expires_at) SELECT 'r' || g, 'usr_sweep', 1, "
                    "CASE WHEN g <= 3 THEN 'held' ELSE 'settled' END, now() - interval '2 days', "
                    "now() - interval '1 day' FROM generate_series(1, 20003) g"
                )
            )
            await conn.execute(text("ANALYZE credit_holds"))
            plan = "\n".join(
                r[0]
                for r in await conn.execute(
                    text(
                        "EXPLAIN SELECT request_id FROM credit_holds "
                        "WHERE status = 'held' AND expires_at <= now()"
                    )
                )
            )
    finally:
        await engine.dispose()
    assert "ix_credit_holds_open_expires" in plan, plan


async def test_an_upgrade_waits_for_a_migration_holding_a_fresh_sqlite_file(
    tmp_path: Path,
) -> None:
    """A worker starting while another migrates a fresh SQLite file waits for it, from its
    very first statement (switching the file to WAL needs the lock): not 5 s, then failing."""
    path = tmp_path / "gw.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # what a migrating worker holds
    asyncio.get_running_loop().call_later(6.0, holder.execute, "COMMIT")
    try:
        assert await upgrade(f"sqlite+aiosqlite:///{path}") == HEAD
    finally:
        holder.close()
