"""The off-path log writer on real databases: a row the database rejects for its data is
isolated (the rest of its batch is written, it is dropped, counted and logged once, never
retried), and a database that goes away keeps every row queued until it is back (one log line
per outage, no traceback per attempt)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.observability.batch_writer import BatchWriter, Insert
from gatewayz.observability.request_log import RequestLog
from gatewayz.storage import logs
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.tables import request_logs

WRITER_LOG = "gatewayz.batch_writer"
WAIT_S = 10.0


def _row(request_id: str, **values: Any) -> dict[str, Any]:
    row = {"request_id": request_id, "endpoint": "chat", "model": "m", "status_code": 200}
    return {**row, **values}


async def _raw_insert(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """An insert that bounds nothing: values reach the database as they are. (Every row names
    the same columns: an executemany takes its columns from the first row.)"""
    await conn.execute(insert(request_logs), [{**_row(""), "prompt_tokens": 0, **r} for r in rows])


async def _stored(url: str) -> list[str]:
    db = Database(url)
    try:
        async with db.begin() as conn:
            query = select(request_logs.c.request_id).order_by(request_logs.c.id)
            return [r[0] for r in await conn.execute(query)]
    finally:
        await db.dispose()


async def _until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def _writer_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == WRITER_LOG and r.levelno >= logging.WARNING]


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    await upgrade(db_url)
    database = Database(db_url)
    yield database
    await database.dispose()


def _writer(db: Database, insert_fn: Insert = logs.insert_request_logs) -> BatchWriter:
    # Never started: each test calls flush() itself (no timer decides what a batch holds).
    return BatchWriter(
        db, insert_fn, name="request log", batch=8, flush_s=0.01, max_queued=1000, retry_max_s=0.1
    )


async def _poison_batch_then_more(
    db: Database, writer: BatchWriter, poison: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    first = [f"first-{i}" for i in range(7)]
    for rid in first[:3]:
        writer.record(_row(rid))
    writer.record(poison)
    for rid in first[3:]:
        writer.record(_row(rid))
    with caplog.at_level(logging.INFO, logger=WRITER_LOG):
        await writer.flush()
        assert await _stored(db.url) == first
        (line,) = _writer_records(caplog)
        assert line.levelno == logging.ERROR and line.exc_info is None
        assert poison["request_id"] in line.getMessage()
        assert (writer.written, writer.rejected, writer.dropped) == (7, 1, 0)
        # The poison is gone for good: later batches are written, nothing is logged again.
        later = [f"later-{i}" for i in range(20)]
        for rid in later:
            writer.record(_row(rid))
        await writer.flush()
        await writer.flush()
        assert await _stored(db.url) == first + later
        assert (writer.written, writer.rejected) == (27, 1)
        assert len(_writer_records(caplog)) == 1


async def test_a_row_the_database_rejects_is_dropped_and_the_rest_written(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # NULL in a NOT NULL column: refused by both backends whatever the bounds.
    poison = _row("poison-null", endpoint=None)
    await _poison_batch_then_more(db, _writer(db), poison, caplog)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"request_id": "poison-long", "model": "m" * 201}, id="value-too-long"),
        pytest.param({"request_id": "poison-int", "prompt_tokens": 2**31}, id="int32-overflow"),
        pytest.param({"request_id": "poison-type", "status_code": "200"}, id="wrong-type"),
    ],
)
async def test_postgresql_data_errors_isolate_the_row(
    postgres_url: str, values: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # The rejections that used to stop request logging for good, straight from PostgreSQL
    # (through an insert that bounds nothing).
    await upgrade(postgres_url)
    db = Database(postgres_url)
    try:
        await _poison_batch_then_more(db, _writer(db, _raw_insert), _row(**values), caplog)
    finally:
        await db.dispose()


async def test_several_poison_rows_are_each_isolated(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    writer = _writer(db)
    good = [f"good-{i}" for i in range(13)]
    for i, rid in enumerate(good):
        writer.record(_row(rid))
        if i in (0, 6, 12):
            writer.record(_row(f"bad-{i}", endpoint=None))
    with caplog.at_level(logging.INFO, logger=WRITER_LOG):
        await writer.flush()
    assert await _stored(db.url) == good
    assert (writer.written, writer.rejected) == (13, 3)
    # Batches of 8: bad-0 in the first, bad-6 and bad-12 in the second. One line per batch and
    # reason, with the count and the first row.
    first, second = _writer_records(caplog)
    assert first.exc_info is None and second.exc_info is None
    assert "1 row" in first.getMessage() and "bad-0" in first.getMessage()
    assert "2 rows" in second.getMessage() and "bad-6" in second.getMessage()


# ---- the database goes away --------------------------------------------------------------


class Outage:
    """A TCP relay in front of PostgreSQL on its own loopback port. `cut()` is an outage as a
    client sees one: open connections die and new ones are refused (nothing listens). `heal()`
    listens on the same port again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def heal(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self.target)
        self._open |= {client_w, server_w}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        try:
            await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))
        finally:
            self._open -= {client_w, server_w}


async def test_an_outage_keeps_the_rows_and_writes_them_when_the_database_is_back(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await upgrade(postgres_url)
    url = make_url(postgres_url)
    outage = Outage((url.host or "127.0.0.1", url.port or 5432))
    await outage.heal()
    relayed = url.set(port=outage.port).render_as_string(hide_password=False)
    db = Database(relayed, pool_size=1, max_overflow=0)
    writer = RequestLog(db, batch=8, flush_s=0.01, max_queued=1000, retry_max_s=0.05)
    writer.start()
    try:
        with caplog.at_level(logging.INFO, logger=WRITER_LOG):
            before = [f"before-{i}" for i in range(5)]
            for rid in before:
                writer.record(_row(rid))
            await _until(lambda: writer.written == 5, "the first rows")

            await outage.cut()
            during = [f"during-{i}" for i in range(20)]
            for rid in during:
                writer.record(_row(rid))
            await _until(lambda: writer.failures >= 5, "five failed attempts")
            assert await _stored(postgres_url) == before
            assert (writer.written, writer.rejected, writer.dropped) == (5, 0, 0)
            (line,) = _writer_records(caplog)  # one line for the whole outage, no traceback
            assert line.levelno == logging.WARNING and line.exc_info is None

            await outage.heal()
            await _until(lambda: writer.written == 25, "the kept rows")
            assert await _stored(postgres_url) == before + during
            assert (writer.rejected, writer.dropped, writer.failures) == (0, 0, 0)
            assert len(_writer_records(caplog)) == 1
            assert any("available again" in r.getMessage() for r in caplog.records)
    finally:
        await writer.stop()
        await db.dispose()
        await outage.cut()


async def test_a_missing_table_is_an_outage_not_a_poison_row(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # The table cannot take any row (here: renamed away): no row is to blame, none is dropped.
    writer = _writer(db)
    async with db.begin() as conn:
        await conn.execute(text("ALTER TABLE request_logs RENAME TO request_logs_away"))
    for i in range(3):
        writer.record(_row(f"kept-{i}"))
    with caplog.at_level(logging.INFO, logger=WRITER_LOG):
        await writer.flush()
        await writer.flush()
        assert (writer.written, writer.rejected, writer.dropped, writer.failures) == (0, 0, 0, 2)
        async with db.begin() as conn:
            await conn.execute(text("ALTER TABLE request_logs_away RENAME TO request_logs"))
        await writer.flush()
    assert await _stored(db.url) == [f"kept-{i}" for i in range(3)]
    assert len(_writer_records(caplog)) == 1


async def test_a_connection_killed_mid_write_keeps_the_batch(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The writer's INSERT waits on a lock the test holds; then its server process is terminated
    # (as a restart or an administrator would): nothing was committed, nothing may be lost.
    await upgrade(postgres_url)
    db, admin = Database(postgres_url, pool_size=1, max_overflow=0), Database(postgres_url)
    writer = _writer(db)
    rows = [f"kept-{i}" for i in range(3)]
    for rid in rows:
        writer.record(_row(rid))
    try:
        with caplog.at_level(logging.INFO, logger=WRITER_LOG):
            async with admin.begin() as lock:
                await lock.execute(text("LOCK TABLE request_logs IN ACCESS EXCLUSIVE MODE"))
                flushing = asyncio.create_task(writer.flush())
                pid, _ = await _blocked_insert(admin)
                await lock.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                await asyncio.wait_for(flushing, WAIT_S)
                assert (writer.written, writer.rejected, writer.failures) == (0, 0, 1)
            await writer.flush()
        assert await _stored(postgres_url) == rows
        assert (writer.written, writer.rejected, writer.failures) == (3, 0, 0)
        (line,) = _writer_records(caplog)
        assert line.levelno == logging.WARNING and line.exc_info is None
    finally:
        await db.dispose()
        await admin.dispose()


async def _blocked_insert(
    admin: Database, other_than: tuple[int, Any] | None = None
) -> tuple[int, Any]:
    """(server process, start) of an INSERT waiting for a lock on request_logs: another one
    than `other_than`, when given."""
    query = text(
        "SELECT pid, query_start FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO request_logs%'"
    )
    deadline = time.monotonic() + WAIT_S
    while True:
        async with admin.begin() as conn:
            found = [tuple(r) for r in await conn.execute(query)]
        waiting = [r for r in found if r != other_than]
        if waiting:
            pid, started = waiting[0]
            return int(pid), started
        assert time.monotonic() < deadline, "no INSERT waited for the lock"
        await asyncio.sleep(0.01)


async def test_stopping_mid_write_loses_no_row(postgres_url: str) -> None:
    # `stop` cancels the writer while its INSERT waits on a lock; the rows of that INSERT go
    # back to the queue and stop's own flush writes them, once.
    await upgrade(postgres_url)
    db, admin = Database(postgres_url), Database(postgres_url)
    writer = RequestLog(db, batch=4, flush_s=0.01, max_queued=1000, retry_max_s=0.1)
    rows = [f"row-{i}" for i in range(10)]
    try:
        async with admin.begin() as lock:
            await lock.execute(text("LOCK TABLE request_logs IN ACCESS EXCLUSIVE MODE"))
            writer.start()
            for rid in rows:
                writer.record(_row(rid))
            first = await _blocked_insert(admin)
            stopping = asyncio.create_task(writer.stop())
            await _blocked_insert(admin, other_than=first)  # stop's flush, after the cancel
        await asyncio.wait_for(stopping, WAIT_S)
        assert await _stored(postgres_url) == rows
        assert (writer.written, writer.rejected, writer.dropped) == (10, 0, 0)
    finally:
        await db.dispose()
        await admin.dispose()
