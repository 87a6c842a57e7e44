"""Security audit events (CM-13.8): failed authentication, forbidden admin access, restriction
violations, key created / updated / rotated / revoked, role changes.

Each event goes to the `gatewayz.audit` logger at once and to the `audit_logs` table off the
request path (a BatchWriter: a full queue drops new rows and counts them; the log line is still
written). Secrets never enter an event: callers pass ids, never keys.
"""

from __future__ import annotations

import logging
from typing import Any

from gatewayz.observability.batch_writer import BatchWriter
from gatewayz.storage import logs
from gatewayz.storage.db import Database
from gatewayz.storage.tables import utcnow

log = logging.getLogger("gatewayz.audit")

SEVERITIES = ("info", "warning", "critical")
_LOG_LEVEL = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_MAX_PATH = 256


class AuditLog(BatchWriter):
    def __init__(
        self, db: Database, *, batch: int, flush_s: float, max_queued: int, retry_max_s: float
    ) -> None:
        super().__init__(
            db,
            logs.insert_audit_logs,
            name="audit log",
            batch=batch,
            flush_s=flush_s,
            max_queued=max_queued,
            retry_max_s=retry_max_s,
        )

    def event(
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
        super().record(row)


async def list_events(
    db: Database, *, user_id: str | None = None, event: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Audit events, newest first, of one user and/or one event name when given."""
    async with db.begin() as conn:
        return await logs.list_audit_logs(conn, user_id=user_id, event=event, limit=limit)
