"""Rows written to the database off the request path, in batches.

`record` only appends to an in-memory queue (no await, no I/O); a background task inserts
batches every `flush_s` or as soon as a batch is full; `stop` flushes what is left. A full queue
(database down for long) drops new rows and counts them rather than slowing requests; a batch the
database rejects as invalid is dropped and counted, never retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.db import Database

log = logging.getLogger("gatewayz.batch_writer")

Insert = Callable[[AsyncConnection, Sequence[dict[str, Any]]], Awaitable[None]]


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
    ) -> None:
        self._db = db
        self._insert = insert
        self._name = name
        self._batch = batch
        self._flush_s = flush_s
        self._queue: deque[dict[str, Any]] = deque()
        self._max = max_queued
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.written = 0

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
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_s):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        while self._queue:
            rows = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
            try:
                async with self._db.begin() as conn:
                    await self._insert(conn, rows)
                self.written += len(rows)
            except ValueError:
                log.exception("%s rows rejected; %d dropped", self._name, len(rows))
                self.dropped += len(rows)
            except Exception:
                log.exception("%s write failed; %d rows kept for retry", self._name, len(rows))
                self._queue.extendleft(reversed(rows))
                return

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
