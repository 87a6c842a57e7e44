"""Rows written to the database off the request path, in batches.

`record` only appends to an in-memory queue (no await, no I/O); a background task inserts
batches every `flush_s` or as soon as a batch is full; `stop` flushes what is left. A full queue
(database down for long) drops new rows and counts them (`dropped`) rather than slowing requests.

A failed write is one of two things, and they need opposite answers:

- The database cannot take any write now (unreachable, connection lost, shutting down, out of
  resources, locked, the table missing): every row is kept and retried, waiting `flush_s` at
  first and twice as long after each failure, up to `retry_max_s`. The outage is logged once
  when it starts and once when it ends, not with a traceback per attempt.
- The database rejects the data (a value too long or out of range, a NULL where one is not
  allowed, a wrong type, a row the insert function refuses): the batch is halved, and halved
  again, until each rejected row is alone; every other row is written. Rejected rows are dropped,
  counted (`rejected`) and logged once (one line per batch and kind of error), never retried: one
  bad row can no longer hold up every row behind it.

Which of the two a failure is, the storage layer says (`storage.errors.is_outage`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import reprlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from gatewayz.storage.db import Database, DbConnection
from gatewayz.storage.errors import describe, is_outage

log = logging.getLogger("gatewayz.batch_writer")

Insert = Callable[[DbConnection, Sequence[dict[str, Any]]], Awaitable[None]]

# A rejected row in the log line: its values cut short (a rejected value may be huge).
_ROW_REPR = reprlib.Repr()
_ROW_REPR.maxdict = 64  # every column of a log row
_ROW_REPR.maxstring = 160
_ROW_REPR.maxother = 160


class BatchWriter:
    def __init__(
        self,
        db: Database,
        insert: Insert,
        *,
        name: str,
        batch: int,
        flush_s: float,
        max_queued: int,
        retry_max_s: float,
    ) -> None:
        self._db = db
        self._insert = insert
        self._name = name
        self._batch = batch
        self._flush_s = flush_s
        self._retry_max_s = retry_max_s
        self._queue: deque[dict[str, Any]] = deque()
        self._max = max_queued
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # rows refused because the queue was full
        self.rejected = 0  # rows the database refused for their data
        self.written = 0
        self.failures = 0  # consecutive failed attempts while the database is unavailable
        self._delay = flush_s  # the wait before the next attempt while it is

    def record(self, row: dict[str, Any]) -> None:
        if len(self._queue) >= self._max:
            self.dropped += 1
            return
        self._queue.append(row)
        if len(self._queue) >= self._batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self._name}-writer")

    async def _run(self) -> None:
        while True:
            if self.failures:  # the database is unavailable: back off, whatever is queued
                await asyncio.sleep(self._delay)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._flush_s):
                        await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write what is queued, a batch at a time; stop (rows kept) when the database is
        unavailable."""
        while self._queue:
            rows = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
            if not await self._write_isolating(rows):
                return

    async def _write_isolating(self, rows: list[dict[str, Any]]) -> bool:
        """Write `rows`, halving a part the database rejects until each rejected row is alone.
        False (the rows not yet written back at the head of the queue) on an outage."""
        pending = [rows]  # a stack: the next part to write is on top
        rejected: dict[str, list[dict[str, Any]]] = {}  # by error
        try:
            while pending:
                part = pending.pop()
                try:
                    async with self._db.begin() as conn:
                        await self._insert(conn, part)
                except asyncio.CancelledError:
                    # Stopping: `stop` writes the part. (A cancel landing between the commit
                    # and the connection's return to the pool would write it twice.)
                    self._keep([part, *reversed(pending)])
                    raise
                except Exception as exc:
                    if is_outage(exc):
                        self._keep([part, *reversed(pending)])
                        self._outage(exc)
                        return False
                    if len(part) == 1:
                        rejected.setdefault(describe(exc), []).append(part[0])
                    else:
                        half = len(part) // 2
                        pending += (part[half:], part[:half])
                else:
                    self.written += len(part)
        finally:
            self._report(rejected)
        if self.failures:
            log.info(
                "%s: database available again after %d failed attempts", self._name, self.failures
            )
            self.failures = 0
        return True

    def _keep(self, parts: list[list[dict[str, Any]]]) -> None:
        """Put the unwritten `parts` (in order) back at the head of the queue."""
        for part in reversed(parts):
            self._queue.extendleft(reversed(part))

    def _outage(self, exc: BaseException) -> None:
        self.failures += 1
        if self.failures > 1:
            self._delay = min(self._delay * 2, self._retry_max_s)
        else:
            self._delay = min(self._flush_s, self._retry_max_s)
            log.warning(
                "%s: database unavailable (%s); %d rows kept, retrying up to every %g s",
                self._name,
                describe(exc),
                len(self._queue),
                self._retry_max_s,
            )

    def _report(self, rejected: dict[str, list[dict[str, Any]]]) -> None:
        for error, rows in rejected.items():
            self.rejected += len(rows)
            log.error(
                "%s: %d %s rejected by the database and dropped (%s); first: %s",
                self._name,
                len(rows),
                "row" if len(rows) == 1 else "rows",
                error,
                _ROW_REPR.repr(rows[0]),
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
        if self._queue:
            log.warning(
                "%s: stopped with %d rows not written (database unavailable)",
                self._name,
                len(self._queue),
            )
