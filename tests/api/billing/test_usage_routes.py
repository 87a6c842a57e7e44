"""GET /user/usage through a real gateway: per model / key / day, JSON and CSV, the default and
maximum ranges, and 400s in OpenAI's error shape."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage import logs
from gatewayz.storage.tables import api_keys, utcnow
from tests.api.billing.conftest import assert_openai_error, call, make_user, run
from tests.e2e.harness import Gateway, request_log_rows


def _client_post(gw: Gateway, key: str, body: dict[str, Any], rid: str) -> Any:
    return httpx2.post(
        f"{gw.root}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}", "x-request-id": rid},
        trust_env=False,
        timeout=10.0,
    )


TODAY = utcnow().date()
LATENCIES = [30, 10, 100, 50, 20, 90, 40, 70, 60, 80]  # p50 55, p95 95.5, p99 99.1


def _at(day: date, seconds: int = 0) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC) + timedelta(seconds=seconds)


def _row(
    user_id: str, key_id: str | None, model: str, at: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "request_id": f"req-{secrets.token_hex(6)}",
        "endpoint": "/v1/chat/completions",
        "user_id": user_id,
        "api_key_id": key_id,
        "model": model,
        "status_code": 200,
        "created_at": at,
        "cost_nanos": None,
        **extra,
    }


@pytest.fixture(scope="module")
def usage_user(gw: Gateway) -> tuple[str, str, str]:
    """(user_id, api_key, key_id) with known request logs: `acme/a` 10 requests over today and
    yesterday (one 503), `=cmd` (a formula-looking model name) once 29 days ago, and rows that
    must not count by default (30 days ago; another user's)."""
    user_id, key = make_user(gw, "usage")
    other_id, _ = make_user(gw, "usage-other")

    async def work(conn: AsyncConnection) -> str:
        key_id = (
            await conn.execute(select(api_keys.c.id).where(api_keys.c.user_id == user_id))
        ).scalar_one()
        rows = [
            _row(
                user_id,
                key_id,
                "acme/a",
                _at(TODAY if i % 2 else TODAY - timedelta(days=1), i),
                latency_ms=float(ms),
                prompt_tokens=100,
                completion_tokens=20,
                total_tokens=120,
                cost_nanos=450_000,  # $0.00045
                status_code=503 if i == 0 else 200,
            )
            for i, ms in enumerate(LATENCIES)
        ]
        rows += [
            _row(user_id, key_id, "=cmd", _at(TODAY - timedelta(days=29)), latency_ms=7.5),
            _row(user_id, key_id, "acme/a", _at(TODAY - timedelta(days=30)), latency_ms=1e6),
            _row(other_id, None, "acme/a", _at(TODAY), latency_ms=1e6, cost_nanos=10**9),
        ]
        await logs.insert_request_logs(conn, rows)
        return str(key_id)

    return user_id, key, run(gw, work)


def _usage(gw: Gateway, key: str, **params: Any) -> dict[str, Any]:
    r = call(gw, "GET", "/user/usage", key, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_usage_by_model_over_the_default_30_days(
    gw: Gateway, usage_user: tuple[str, str, str]
) -> None:
    body = _usage(gw, usage_user[1])
    assert body["from"] == (TODAY - timedelta(days=29)).isoformat()
    assert body["to"] == TODAY.isoformat() and body["group_by"] == "model"
    by_model = {g["model"]: g for g in body["data"]}
    assert list(by_model) == ["acme/a", "=cmd"]  # busiest first
    assert by_model["acme/a"] == {
        "model": "acme/a",
        "requests": 10,
        "errors": 1,
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "total_tokens": 1200,
        "spend": "0.0045",
        "latency_p50_ms": 55.0,
        "latency_p95_ms": 95.5,
        "latency_p99_ms": 99.1,
    }
    assert by_model["=cmd"]["spend"] == "0" and by_model["=cmd"]["latency_p50_ms"] == 7.5
    totals = body["totals"]
    assert (totals["requests"], totals["errors"], totals["spend"]) == (11, 1, "0.0045")
    assert totals["latency_p50_ms"] == 50.0  # 7.5, 10, ..., 100


def test_usage_by_key_and_by_day(gw: Gateway, usage_user: tuple[str, str, str]) -> None:
    _, key, key_id = usage_user
    keys = _usage(gw, key, group_by="key")["data"]
    assert len(keys) == 1 and keys[0]["api_key_id"] == key_id and keys[0]["requests"] == 11
    assert keys[0]["key_name"] == "default" and len(keys[0]["key_last_four"]) == 4
    days = _usage(gw, key, group_by="day")["data"]
    assert [d["day"] for d in days] == [
        (TODAY - timedelta(days=29)).isoformat(),
        (TODAY - timedelta(days=1)).isoformat(),
        TODAY.isoformat(),
    ]
    assert [d["requests"] for d in days] == [1, 5, 5]
    assert [d["errors"] for d in days] == [0, 1, 0]
    assert Decimal(days[1]["spend"]) + Decimal(days[2]["spend"]) == Decimal("0.0045")


def test_usage_explicit_range(gw: Gateway, usage_user: tuple[str, str, str]) -> None:
    key = usage_user[1]
    month_ago = (TODAY - timedelta(days=30)).isoformat()
    body = _usage(gw, key, **{"from": month_ago, "to": month_ago})
    assert body["totals"]["requests"] == 1 and body["data"][0]["latency_p99_ms"] == 1e6
    body = _usage(gw, key, **{"from": TODAY.isoformat()})
    assert body["totals"]["requests"] == 5 and body["to"] == TODAY.isoformat()
    future = (TODAY + timedelta(days=5)).isoformat()
    empty = _usage(gw, key, **{"from": future, "to": future})
    assert empty["data"] == [] and empty["totals"]["requests"] == 0
    assert empty["totals"]["spend"] == "0" and empty["totals"]["latency_p50_ms"] is None
    longest = _usage(gw, key, **{"from": (TODAY - timedelta(days=365)).isoformat()})
    assert longest["totals"]["requests"] == 12  # 366 days: allowed


def test_usage_csv_export(gw: Gateway, usage_user: tuple[str, str, str]) -> None:
    key = usage_user[1]
    for group_by, first_column in (("model", "model"), ("key", "api_key_id"), ("day", "day")):
        r = call(gw, "GET", "/user/usage", key, params={"format": "csv", "group_by": group_by})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        disposition = r.headers["content-disposition"]
        assert disposition.startswith("attachment;") and ".csv" in disposition
        rows = list(csv.DictReader(io.StringIO(r.text)))
        header = next(csv.reader(io.StringIO(r.text)))
        assert header[0] == first_column
        assert header[-9:] == [
            "requests",
            "errors",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "spend_usd",
            "latency_p50_ms",
            "latency_p95_ms",
            "latency_p99_ms",
        ]
        json_rows = _usage(gw, key, group_by=group_by)["data"]
        assert len(rows) == len(json_rows)
        assert sum(int(x["requests"]) for x in rows) == 11
        assert sum(Decimal(x["spend_usd"]) for x in rows) == Decimal("0.0045")
    r = call(gw, "GET", "/user/usage", key, params={"format": "csv"})
    by_model = {x["model"]: x for x in csv.DictReader(io.StringIO(r.text))}
    assert float(by_model["acme/a"]["latency_p95_ms"]) == 95.5
    assert "'=cmd" in by_model  # a formula-looking cell is defused for spreadsheets


def test_usage_csv_of_nothing_is_a_header(gw: Gateway) -> None:
    _, key = make_user(gw, "nousage")
    r = call(gw, "GET", "/user/usage", key, params={"format": "csv"})
    assert r.status_code == 200
    assert r.text.splitlines() == [
        "model,requests,errors,prompt_tokens,completion_tokens,total_tokens,spend_usd,"
        "latency_p50_ms,latency_p95_ms,latency_p99_ms"
    ]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"from": "2030-13-01"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"to": "20300101"}, "to"),
        ({"from": "2030-01-02", "to": "2030-01-01"}, "from"),
        ({"from": "2029-01-01", "to": "2030-01-02"}, "from"),  # 367 days
        ({"group_by": "provider"}, "group_by"),
        ({"format": "xml"}, "format"),
    ],
)
def test_usage_bad_params_are_400(gw: Gateway, params: dict[str, Any], param: str) -> None:
    assert_openai_error(call(gw, "GET", "/user/usage", gw.api_key, params=params), 400, param)
    if "format" not in params:  # a CSV request is refused the same way, as JSON
        r = call(gw, "GET", "/user/usage", gw.api_key, params={**params, "format": "csv"})
        assert_openai_error(r, 400, param)


def test_usage_of_real_requests_matches_the_ledger(gw: Gateway) -> None:
    """Requests through the gateway show up in the usage report with the spend the ledger
    charged (request logs are written off the request path: waits for them)."""
    _, key = make_user(gw, "live", credits_usd="10")
    body = {
        "model": "test-model",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    }
    for i in range(2):
        rid = f"usage-real-{secrets.token_hex(4)}-{i}"
        r = _client_post(gw, key, body, rid)
        assert r.status_code == 200, r.text
        # Request logs are written off the request path: wait for this one.
        writer = gw.services.request_log
        assert request_log_rows(gw, rid, wait_s=15), (
            f"no request log for {rid}: written {writer.written}, dropped {writer.dropped}"
        )
    report = _usage(gw, key)
    [row] = report["data"]
    assert row["model"] == "test-model" and row["requests"] == 2 and row["errors"] == 0
    assert row["total_tokens"] > 0 and row["latency_p50_ms"] > 0
    charged = call(gw, "GET", "/user/credit-transactions", key, params={"type": "usage"})
    ledger_spend = -sum(Decimal(t["amount"]) for t in charged.json()["data"])
    assert Decimal(row["spend"]) == ledger_spend > 0
    balance = call(gw, "GET", "/user/balance", key).json()
    assert Decimal(balance["balance"]) == Decimal(10) - ledger_spend
    assert Decimal(balance["spent_today"]) == ledger_spend
