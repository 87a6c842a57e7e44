"""Request-log records (request id, key, model, provider, tokens, latency, status), written to
the database off the request path by a BatchWriter."""

from __future__ import annotations

from gatewayz.observability.batch_writer import BatchWriter
from gatewayz.storage import logs
from gatewayz.storage.db import Database


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
