"""Runs the request path's ledger operations (`storage.ledger.holds`) with group commit: the
operations queued while one transaction runs form the next one, so a loaded worker commits one
transaction per batch instead of one per operation, and a lone request waits for nobody.

On a SQLite file they run in one dedicated thread on a stdlib sqlite3 connection, no
SQLAlchemy on the way (BEGIN IMMEDIATE: the write lock up front), each inside its own savepoint
so one failing operation does not undo the others, and their results return to the event loop in
one call: one thread hop and one commit per batch instead of one per statement (aiosqlite's
cost), and this process's ledger writes never contend with each other for the database lock.

On PostgreSQL a batch runs on a connection kept for it (no pool checkout and liveness check per
operation), its operations in the order of their `account` (every worker locks balance rows in
the same order, so two workers' batches never deadlock; one account's operations keep their
order). A batch runs optimistically without savepoints: when an operation fails, the batch is
rolled back and its operations run again one transaction each, so the failure stays with its
own operation. A failed commit fails the whole batch (its outcome is unknown, as for a single
operation). Across workers, the row lock of the conditional UPDATE serialises holds.
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
from gatewayz.storage.errors import DB_ERRORS

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
        self.batches = 0  # batches run: fewer than operations under load
        self.retried = 0  # PostgreSQL batches rolled back and run again one by one
        # PostgreSQL: the batches' connection and the lease flusher's (`run_serial`)
        self._batches_conn = _Kept(db)
        self._serial = _Kept(db)
        self._queued: list[_Job] = []  # PostgreSQL: what the next batch runs
        self._drainer: asyncio.Task[None] | None = None

    async def run(self, op: Callable[..., T], *args: Any, account: str = "", **kwargs: Any) -> T:
        """`op(conn, *args, **kwargs)`, committed on return (atomically: all or nothing).
        `account`: the balance row the operation locks (orders a PostgreSQL batch)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job = _Job(op, args, kwargs, future, account)
        if self._thread is None:
            self._queued.append(job)
            if self._drainer is None or self._drainer.done():
                self._drainer = asyncio.create_task(self._drain_postgres())
            return await future
        with self._lock:
            self._pending.append(job)
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
        return await self._serial.run(lambda conn: op(conn, *args, **kwargs))

    # ---- PostgreSQL: group commit on the event loop ---------------------------------------
    async def _drain_postgres(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            batch.sort(key=_by_account)  # stable: one account's operations keep their order
            self.batches += 1
            try:
                await self._run_postgres(batch)
            except BaseException:  # cancelled (shutdown): its callers learn the database failed
                for job in batch:
                    job.error = job.error or ConnectionAbortedError("ledger batch interrupted")
                raise
            finally:
                _deliver(batch)

    async def _run_postgres(self, batch: list[_Job]) -> None:
        ran = False

        def body(conn: Any) -> None:
            nonlocal ran
            for job in batch:
                job.result = job.op(conn, *job.args, **job.kwargs)
            ran = True

        try:
            await self._batches_conn.run(body)
        except Exception as exc:
            if ran or len(batch) == 1:  # the commit failed (or the only operation did)
                for job in batch:
                    job.result, job.error = None, exc
                return
            self.retried += 1
            for job in batch:  # rolled back: each operation again, in its own transaction
                try:
                    job.result = await self._batches_conn.run(
                        lambda conn, job=job: job.op(conn, *job.args, **job.kwargs)
                    )
                except Exception as exc:
                    job.result, job.error = None, exc

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

    async def close(self) -> None:
        """At shutdown, once nothing queues more: the last batch finished, the kept connections
        given back, the SQLite thread stopped."""
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
        await self._serial.close()
        await self._batches_conn.close()
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
    account: str = ""
    result: Any = None
    error: Exception | None = None


def _by_account(job: _Job) -> str:
    return job.account


class _Kept:
    """A PostgreSQL connection kept for one caller whose transactions follow one another; one
    the database broke is dropped, and the next transaction opens a new one."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def run(self, fn: Callable[[Any], T]) -> T:
        """`fn(sync_connection)` in one transaction, committed on return."""
        async with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = await self.db.engine.connect()
            conn = self._conn
            try:
                async with conn.begin():
                    return await conn.run_sync(fn)
            except BaseException as exc:
                if isinstance(exc, DB_ERRORS) or not isinstance(exc, Exception):
                    self._conn = None  # broken, or interrupted mid-transaction
                    await _close_quietly(conn)
                raise

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await _close_quietly(self._conn)
                self._conn = None


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
