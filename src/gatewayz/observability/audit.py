"""Security audit events (CM-13.8): failed authentication, forbidden admin access, restriction
violations, key created / updated / rotated / revoked, role changes.

Each event goes to the `gatewayz.audit` logger at once and to the `audit_logs` table off the
request path: `record` only appends to an in-memory queue (no await, no I/O) and a background
task inserts batches. On shutdown the queue is flushed. A full queue (database down for long)
drops new events and counts them; the log line is still written. Secrets never enter an event:
callers pass ids, never keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from gatewayz.storage import repo
from gatewayz.storage.db import Database
from gatewayz.storage.tables import utcnow

log = logging.getLogger("gatewayz.audit")

SEVERITIES = ("info", "warning", "critical")
_LOG_LEVEL = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_MAX_PATH = 256


class AuditLog:
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

    def record(
        self,
        event: str,
        *,
        severity: str = "info",
        user_id: str | None = None,
        api_key_id: str | None = None,
        ip: str | None = None,
        path: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Log the event now and queue it for the audit table."""
        if severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}")
        row = {
            "event": event,
            "severity": severity,
            "user_id": user_id,
            "api_key_id": api_key_id,
            "ip": ip[:64] if ip else None,
            "path": path[:_MAX_PATH] if path else None,
            "detail": detail or None,
            "created_at": utcnow(),
        }
        log.log(
            _LOG_LEVEL[severity],
            "audit %s user=%s key=%s ip=%s path=%s detail=%s",
            event,
            user_id,
            api_key_id,
            ip,
            path,
            detail or {},
            extra={"audit": row},
        )
        if len(self._queue) >= self._max:
            self.dropped += 1
            return
        self._queue.append(row)
        if len(self._queue) >= self._batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-log-writer")

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
                    await repo.insert_audit_logs(conn, rows)
                self.written += len(rows)
            except ValueError:
                log.exception("audit rows rejected; %d dropped", len(rows))
                self.dropped += len(rows)
            except Exception:
                log.exception("audit log write failed; %d events kept for retry", len(rows))
                self._queue.extendleft(reversed(rows))
                return

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
