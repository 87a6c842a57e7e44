"""Request-log and audit-log rows are bounded to their columns where they are built for the
database: whatever a caller sent (a 300-character model name, a NUL in a string) or a provider
reported (token counts past 2^31), the row is one the database accepts, on both backends."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, insert, select

from gatewayz.storage import logs
from gatewayz.storage.db import Database
from gatewayz.storage.tables import audit_logs, credit_holds, credit_transactions, request_logs
from gatewayz.storage.tables import utcnow as now
from gatewayz.storage.users import create_user

INT32_MAX, INT32_MIN = 2**31 - 1, -(2**31)
INT64_MAX = 2**63 - 1


def _length(table: Table, column: str) -> int:
    length: int = table.c[column].type.length
    return length


async def _rows(db: Database, table: Table, **where: Any) -> list[dict[str, Any]]:
    query = select(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    async with db.begin() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def test_oversized_request_log_values_are_cut_to_their_columns(db: Database) -> None:
    long = {
        name: name[0] * (_length(request_logs, name) + 100)
        for name in (
            "request_id",
            "user_id",
            "api_key_id",
            "endpoint",
            "model",
            "provider",
            "native_model",
            "error_code",
            "cache",
        )
    }
    row = {
        **long,
        "status_code": 10**12,
        "prompt_tokens": 2**31,
        "completion_tokens": 2**70,
        "total_tokens": -(2**40),
        "cost_nanos": 2**80,
    }
    async with db.begin() as conn:
        await logs.insert_request_logs(conn, [row])
    (stored,) = await _rows(db, request_logs)
    for name, value in long.items():
        assert stored[name] == value[: _length(request_logs, name)], name
    assert stored["status_code"] == INT32_MAX
    assert stored["prompt_tokens"] == stored["completion_tokens"] == INT32_MAX
    assert stored["total_tokens"] == INT32_MIN
    assert stored["cost_nanos"] == INT64_MAX


async def test_text_the_database_refuses_is_replaced_not_rejected(db: Database) -> None:
    # PostgreSQL refuses NUL in text, and a lone surrogate (valid JSON: "\ud800") is not UTF-8.
    row = {"request_id": "nul-1", "endpoint": "chat", "model": "a\x00b\ud800c", "status_code": 404}
    async with db.begin() as conn:
        await logs.insert_request_logs(conn, [row])
    (stored,) = await _rows(db, request_logs)
    assert stored["model"] == "a\ufffdb?c"


async def test_oversized_audit_values_are_cut_to_their_columns(db: Database) -> None:
    long = {
        name: name[0] * (_length(audit_logs, name) + 100)
        for name in ("event", "severity", "user_id", "api_key_id", "ip", "path")
    }
    async with db.begin() as conn:
        await logs.insert_audit_logs(conn, [long])
    (stored,) = await _rows(db, audit_logs)
    for name, value in long.items():
        assert stored[name] == value[: _length(audit_logs, name)], name


async def test_a_request_id_of_128_characters_is_stored_whole(db: Database) -> None:
    # The edge accepts a caller's X-Request-ID of up to 128 characters: every column that stores
    # a request id holds it whole.
    rid = "r" * 128
    async with db.begin() as conn:
        user = await create_user(conn, "rid@example.com")
        await logs.insert_request_logs(
            conn, [{"request_id": rid, "endpoint": "chat", "model": "m", "status_code": 200}]
        )
        await conn.execute(
            insert(credit_transactions).values(
                user_id=user["id"],
                type="usage",
                amount_nanos=-1,
                balance_after_nanos=0,
                request_id=rid,
            )
        )
        await conn.execute(
            insert(credit_holds).values(
                request_id=rid, user_id=user["id"], amount_nanos=1, expires_at=now()
            )
        )
    for table in (request_logs, credit_transactions, credit_holds):
        assert [r["request_id"] for r in await _rows(db, table)] == [rid], table.name
