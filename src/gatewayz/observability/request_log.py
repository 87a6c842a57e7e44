"""Request-log records, written to the database off the request path.

The request path only appends a dict to an in-memory queue (no await, no I/O); a background
task inserts them in batches. On shutdown the queue is flushed. If the queue is full (the
database is down for long), new records are dropped and counted rather than slowing requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from gatewayz.storage import repo
from gatewayz.storage.db import Database

log = logging.getLogger("gatewayz.request_log")


class RequestLog:
    def __init__(self, db: Database, *, batch: int, flush_s: float, max_queued: int) -> None:
        self._db = db
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
        self._task = asyncio.create_task(self._run(), name="request-log-writer")

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
                    await repo.insert_request_logs(conn, rows)
                self.written += len(rows)
            except ValueError:
                # Rows the database would never accept: drop them, never block the queue.
                log.exception("request log rows rejected; %d dropped", len(rows))
                self.dropped += len(rows)
            except Exception:
                log.exception("request log write failed; %d records kept for retry", len(rows))
                self._queue.extendleft(reversed(rows))
                return

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
