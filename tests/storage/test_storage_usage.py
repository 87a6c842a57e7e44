"""storage/usage.py on SQLite and PostgreSQL: the same groups, sums and latency percentiles
(linear interpolation, as PostgreSQL's percentile_cont) on both backends."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from gatewayz.accounts.api_keys import create_api_key
from gatewayz.security.keys import KeyRing
from gatewayz.storage import logs
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.usage import UsageReport, percentile, usage_report
from gatewayz.storage.users import create_user

DAY1 = datetime(2030, 3, 1, tzinfo=UTC)
DAY2 = datetime(2030, 3, 2, tzinfo=UTC)
START, END = DAY1, DAY2 + timedelta(days=1)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    await upgrade(db_url)
    database = Database(db_url, pool_size=2, max_overflow=2)
    yield database
    await database.dispose()


def log(user_id: str, key_id: str | None, model: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": f"req-{secrets.token_hex(6)}",
        "endpoint": "/v1/chat/completions",
        "user_id": user_id,
        "api_key_id": key_id,
        "model": model,
        "status_code": 200,
        "created_at": at,
        "cost_nanos": None,  # not billed (every row of a batch must name the same columns)
        **extra,
    }


async def seed(db: Database) -> tuple[str, str, str]:
    """A user with two keys and known rows: model A (10 requests, latencies 10..100 ms, one
    error, on day 1 and day 2), model B (one request, 5 ms, day 2); plus rows that must not
    count (another user's, and the caller's outside the range)."""
    ring = KeyRing(Fernet.generate_key(), b"usage-test-hmac-key")
    async with db.begin() as conn:
        user = await create_user(conn, f"{secrets.token_hex(4)}@example.com")
        other = await create_user(conn, f"{secrets.token_hex(4)}@example.com")
        k1, _ = await create_api_key(conn, ring, user["id"], "test", "first")
        k2, _ = await create_api_key(conn, ring, user["id"], "test", "second")
        uid = user["id"]
        rows = []
        for i, latency in enumerate([30, 10, 100, 50, 20, 90, 40, 70, 60, 80]):
            rows.append(
                log(
                    uid,
                    k1["id"],
                    "acme/a",
                    (DAY1 if i < 6 else DAY2) + timedelta(hours=23, minutes=59, seconds=i),
                    latency_ms=float(latency),
                    prompt_tokens=10,
                    completion_tokens=5,
                    total_tokens=15,
                    cost_nanos=4_500_000,
                    status_code=500 if i == 3 else 200,
                )
            )
        rows.append(
            log(uid, k2["id"], "acme/b", DAY2, latency_ms=5.0, prompt_tokens=1, total_tokens=1)
        )
        rows.append(log(other["id"], None, "acme/a", DAY1, latency_ms=1e6, cost_nanos=10**9))
        rows.append(log(uid, k1["id"], "acme/a", DAY1 - timedelta(seconds=1), latency_ms=1e6))
        rows.append(log(uid, k1["id"], "acme/a", END, latency_ms=1e6, cost_nanos=1))
        await logs.insert_request_logs(conn, rows)
    return uid, k1["id"], k2["id"]


async def report(db: Database, user_id: str, group_by: str) -> UsageReport:
    async with db.begin() as conn:
        return await usage_report(conn, user_id, START, END, group_by)


def test_percentile_interpolates_linearly() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0.5) == 25.0
    assert percentile(values, 0.0) == 10.0 and percentile(values, 1.0) == 40.0
    assert percentile([7.0], 0.99) == 7.0 and percentile([], 0.5) is None


async def test_usage_report(db: Database) -> None:
    uid, k1, k2 = await seed(db)
    await check_by_model(await report(db, uid, "model"))
    await check_by_key(await report(db, uid, "key"), k1, k2)
    await check_by_day(await report(db, uid, "day"))
    async with db.begin() as conn:
        nothing = await usage_report(conn, "usr_nobody", START, END, "model")
        with pytest.raises(ValueError, match="group_by"):
            await usage_report(conn, uid, START, END, "provider")
    assert nothing.groups == []
    assert (nothing.totals.requests, nothing.totals.spend_nanos, nothing.totals.errors) == (0, 0, 0)
    assert nothing.totals.latency_ms == {"p50": None, "p95": None, "p99": None}


async def check_by_model(r: UsageReport) -> None:
    assert [g.group for g in r.groups] == ["acme/a", "acme/b"]  # busiest first
    a, b = r.groups
    assert (a.requests, a.errors, a.prompt_tokens, a.completion_tokens, a.total_tokens) == (
        10,
        1,
        100,
        50,
        150,
    )
    assert a.spend_nanos == 45_000_000
    assert a.latency_ms == {"p50": 55.0, "p95": 95.5, "p99": 99.1}
    assert (b.requests, b.errors, b.spend_nanos) == (1, 0, 0)  # NULL cost: not billed
    assert b.latency_ms == {"p50": 5.0, "p95": 5.0, "p99": 5.0}
    t = r.totals
    assert (t.requests, t.errors, t.total_tokens, t.spend_nanos) == (11, 1, 151, 45_000_000)
    # All 11 latencies: 5, 10, 20, ..., 100.
    assert t.latency_ms == {"p50": 50.0, "p95": 95.0, "p99": 99.0}


async def check_by_key(r: UsageReport, k1: str, k2: str) -> None:
    assert [g.group for g in r.groups] == [k1, k2]
    assert r.groups[0].label["key_name"] == "first" and r.groups[1].label["key_name"] == "second"
    assert r.groups[0].label["key_prefix"] and len(r.groups[0].label["key_last_four"]) == 4
    assert r.groups[0].requests == 10 and r.groups[1].latency_ms["p50"] == 5.0


async def check_by_day(r: UsageReport) -> None:
    """Days are UTC calendar days (rows at 23:59 stay on their day)."""
    assert [g.group for g in r.groups] == ["2030-03-01", "2030-03-02"]
    d1, d2 = r.groups
    assert (d1.requests, d1.errors, d2.requests, d2.errors) == (6, 1, 5, 0)
    # Day 1 latencies 30, 10, 100, 50, 20, 90 → sorted 10 20 30 50 90 100.
    assert d1.latency_ms["p50"] == 40.0
    assert d2.latency_ms == {"p50": 60.0, "p95": 78.0, "p99": 79.6}  # 5 40 60 70 80
