"""Request-log records (request id, key, model, provider, tokens, latency, status), written to
the database off the request path by a BatchWriter, and read back as a user's usage report."""

from __future__ import annotations

from datetime import datetime

from gatewayz.observability.batch_writer import BatchWriter
from gatewayz.storage import logs
from gatewayz.storage.db import Database
from gatewayz.storage.usage import UsageReport, usage_report


class RequestLog(BatchWriter):
    def __init__(
        self, db: Database, *, batch: int, flush_s: float, max_queued: int, retry_max_s: float
    ) -> None:
        super().__init__(
            db,
            logs.insert_request_logs,
            name="request log",
            batch=batch,
            flush_s=flush_s,
            max_queued=max_queued,
            retry_max_s=retry_max_s,
        )


async def user_usage(
    db: Database, user_id: str, start: datetime, end: datetime, group_by: str
) -> UsageReport:
    """The user's requests logged in [start, end), grouped by `group_by` (`storage.usage`)."""
    async with db.begin() as conn:
        return await usage_report(conn, user_id, start, end, group_by)
