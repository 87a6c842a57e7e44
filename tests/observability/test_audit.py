"""The audit writer (observability/audit.py): events reach the table and the log, off the
request path; its queue is bounded and flushed on stop."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from gatewayz.observability.audit import AuditLog
from gatewayz.storage import logs
from gatewayz.storage.db import Database, upgrade


async def _db(url: str) -> Database:
    await upgrade(url)
    return Database(url)


async def test_cm_13_8_audit_events_reach_table_and_log(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = await _db(db_url)
    audit = AuditLog(db, batch=10, flush_s=0.02, max_queued=100, retry_max_s=1.0)
    audit.start()
    try:
        with caplog.at_level(logging.INFO, logger="gatewayz.audit"):
            audit.event(
                "admin_access_denied",
                severity="critical",
                user_id="usr_1",
                api_key_id="key_1",
                ip="2001:db8::1",
                path="/admin/users",
                detail={"role": "free"},
            )
            audit.event("auth_failed", severity="warning", ip="10.0.0.1", path="/v1/x")
        assert "audit admin_access_denied" in caplog.text
        with pytest.raises(ValueError):
            audit.event("x", severity="loud")
        deadline = time.monotonic() + 5
        while audit.written < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        async with db.begin() as conn:
            rows = await logs.list_audit_logs(conn, limit=10)
            only = await logs.list_audit_logs(conn, event="admin_access_denied")
        assert [r["event"] for r in rows] == ["auth_failed", "admin_access_denied"]
        (denied,) = only
        assert (denied["severity"], denied["user_id"], denied["ip"], denied["path"]) == (
            "critical",
            "usr_1",
            "2001:db8::1",
            "/admin/users",
        )
        assert denied["detail"] == {"role": "free"}
    finally:
        await audit.stop()
        await db.dispose()


async def test_audit_queue_is_bounded_and_flushed_on_stop(tmp_path: Path) -> None:
    db = await _db(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    # Never flushes by itself.
    audit = AuditLog(db, batch=100, flush_s=60, max_queued=3, retry_max_s=60)
    audit.start()
    for i in range(5):
        audit.event(f"e{i}")
    assert audit.dropped == 2
    await audit.stop()
    assert audit.written == 3
    async with db.begin() as conn:
        assert len(await logs.list_audit_logs(conn)) == 3
    await db.dispose()
