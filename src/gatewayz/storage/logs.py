"""Request-log and audit-log rows: bulk inserts (from the off-path writers) and reads.

The inserts are where log rows become database rows, so every value is bounded to its column
here (`RowBounds`): a row never fails for a caller's over-long model name or a provider's
absurd token count. (Token columns stay INTEGER, clamped: widening them would rewrite the whole
`request_logs` table on PostgreSQL, and no real count comes near 2^31.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.bounds import RowBounds
from gatewayz.storage.tables import audit_logs, request_logs, utcnow

# ---- request logs -----------------------------------------------------------------------

_LOG_COLUMNS = frozenset(c.name for c in request_logs.c) - {"id"}
_LOG_REQUIRED = frozenset({"request_id", "endpoint", "model", "status_code"})
_LOG_DEFAULTS: dict[str, Any] = {
    "user_id": None,
    "api_key_id": None,
    "provider": None,
    "native_model": None,
    "stream": False,
    "error_code": None,
    "prompt_tokens": 0,
    "completion_tokens": 0,
    "total_tokens": 0,
    "usage_estimated": False,
    "cost_nanos": None,
    "latency_ms": 0.0,
    "upstream_ms": 0.0,
    "overhead_ms": 0.0,
    "ttft_ms": None,
    "cache": None,
}
_LOG_BOUNDS = RowBounds(request_logs)


async def insert_request_logs(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert a batch of request-log rows with one executemany.

    Each row needs request_id, endpoint, model and status_code; other columns default; values
    are bounded to their columns. Unknown keys are a `ValueError` (a typo must not silently
    drop data).
    """
    if not rows:
        return
    now = utcnow()
    params: list[dict[str, Any]] = []
    for row in rows:
        keys = row.keys()
        unknown = keys - _LOG_COLUMNS
        if unknown:
            raise ValueError(f"unknown request_logs columns: {', '.join(sorted(unknown))}")
        missing = _LOG_REQUIRED - keys
        if missing:
            raise ValueError(f"request_logs row lacks: {', '.join(sorted(missing))}")
        params.append(_LOG_BOUNDS({**_LOG_DEFAULTS, "created_at": now, **row}))
    await conn.execute(insert(request_logs), params)


async def requests_per_target(conn: AsyncConnection, since: datetime) -> dict[tuple[str, str], int]:
    """Requests logged since `since` per (provider, native model), of those that reached one."""
    rl = request_logs.c
    query = (
        select(rl.provider, rl.native_model, func.count())
        .where(rl.created_at >= since, rl.provider.is_not(None), rl.native_model.is_not(None))
        .group_by(rl.provider, rl.native_model)
    )
    rows = (await conn.execute(query)).all()
    return {(provider, model): int(count) for provider, model, count in rows}


# ---- audit log ---------------------------------------------------------------------------

_AUDIT_COLUMNS = frozenset(c.name for c in audit_logs.c) - {"id"}
_AUDIT_DEFAULTS: dict[str, Any] = {
    "severity": "info",
    "user_id": None,
    "api_key_id": None,
    "ip": None,
    "path": None,
    "detail": None,
}
_AUDIT_BOUNDS = RowBounds(audit_logs)


async def insert_audit_logs(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert a batch of audit events (each needs `event`; values bounded to their columns);
    unknown keys are a `ValueError`."""
    if not rows:
        return
    params: list[dict[str, Any]] = []
    now = utcnow()
    for row in rows:
        unknown = row.keys() - _AUDIT_COLUMNS
        if unknown:
            raise ValueError(f"unknown audit_logs columns: {', '.join(sorted(unknown))}")
        if not row.get("event"):
            raise ValueError("audit_logs row lacks: event")
        params.append(_AUDIT_BOUNDS({**_AUDIT_DEFAULTS, "created_at": now, **row}))
    await conn.execute(insert(audit_logs), params)


async def list_audit_logs(
    conn: AsyncConnection,
    *,
    user_id: str | None = None,
    event: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Audit events, newest first, optionally of one user and/or one event name."""
    query = select(audit_logs).order_by(audit_logs.c.id.desc()).limit(limit)
    if user_id is not None:
        query = query.where(audit_logs.c.user_id == user_id)
    if event is not None:
        query = query.where(audit_logs.c.event == event)
    return [dict(r) for r in (await conn.execute(query)).mappings()]
