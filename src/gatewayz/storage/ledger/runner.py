"""Runs the request path's ledger operations (`storage.ledger.holds`), each in one transaction.

On a SQLite file they run in one dedicated thread on a stdlib sqlite3 connection, no
SQLAlchemy on the way, with group commit: the operations queued while one transaction runs
form the next one (BEGIN IMMEDIATE: the write lock up front), each inside its own savepoint so
one failing operation does not undo the others, and their results return to the event loop in
one call. Under load that is one thread hop and one commit per batch instead of per statement
(aiosqlite's cost) or per operation, and this process's ledger writes never contend with each
other for the database lock. On PostgreSQL they run on the async engine, where the row lock of the
conditional UPDATE serialises any number of workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.db import SQLITE_PRAGMAS, Database, sqlite_file

T = TypeVar("T")


class LedgerRunner:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._path = sqlite_file(db.url)
        self._conn: sqlite3.Connection | None = None
        self._thread = (
            ThreadPoolExecutor(1, thread_name_prefix="gatewayz-ledger") if self._path else None
        )
        self._pending: list[_Job] = []
        self._lock = threading.Lock()
        self._draining = False
        self.batches = 0  # transactions run (SQLite): fewer than operations under load
        self._serial: AsyncConnection | None = None  # run_serial's connection (PostgreSQL)
        self._serial_lock = asyncio.Lock()

    async def run(self, op: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`op(conn, *args, **kwargs)`, committed on return (atomically: all or nothing)."""
        if self._thread is None:
            async with self.db.begin() as conn:
                return await conn.run_sync(op, *args, **kwargs)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._pending.append(_Job(op, args, kwargs, future))
            start, self._draining = not self._draining, True
        if start:
            self._thread.submit(self._drain, loop)
        return await future

    async def run_serial(self, op: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`run`, for a caller whose operations follow one another (the lease flusher): on
        PostgreSQL on a connection kept for it, so no pool checkout (and its liveness check, a
        transaction of its own) per operation. A failed connection is dropped and the next call
        opens a new one."""
        if self._thread is not None:
            return await self.run(op, *args, **kwargs)
        async with self._serial_lock:
            if self._serial is None or self._serial.closed:
                self._serial = await self.db.engine.connect()
            conn = self._serial
            try:
                async with conn.begin():
                    return await conn.run_sync(op, *args, **kwargs)
            except BaseException:
                self._serial = None
                await _close_quietly(conn)
                raise

    async def close_serial(self) -> None:
        """Give run_serial's connection back (at shutdown)."""
        async with self._serial_lock:
            if self._serial is not None:
                await _close_quietly(self._serial)
                self._serial = None

    # ---- the ledger thread: group commit -------------------------------------------------
    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run what is queued, one transaction per batch (operations queued while one batch
        runs form the next), and hand the results back to the event loop in one call."""
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._draining = False
                    return
            self._run_batch(batch)
            loop.call_soon_threadsafe(_deliver, batch)

    def _run_batch(self, batch: list[_Job]) -> None:
        self.batches += 1
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:  # each operation all-or-nothing within the batch
                conn.execute("SAVEPOINT op")
                try:
                    job.result = job.op(conn, *job.args, **job.kwargs)
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    job.error = exc
                conn.execute("RELEASE op")
            conn.execute("COMMIT")
        except Exception as exc:  # the database failed: nothing of this batch happened
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for job in batch:
                job.result, job.error = None, exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(str(self._path), isolation_level=None)
            for pragma in SQLITE_PRAGMAS:
                self._conn.execute(pragma)
        return self._conn

    def close(self) -> None:
        if self._thread is not None:
            self._thread.submit(self._close_conn).result()
            self._thread.shutdown(wait=True)

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass(slots=True)
class _Job:
    op: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: asyncio.Future[Any]
    result: Any = None
    error: Exception | None = None


async def _close_quietly(conn: AsyncConnection) -> None:
    with contextlib.suppress(Exception):  # already broken: nothing to give back
        await conn.close()


def _deliver(batch: list[_Job]) -> None:
    for job in batch:
        if job.future.cancelled():
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)
