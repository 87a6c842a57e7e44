"""CM-8.1.1 with hits billed at a configured fraction: charged once, through the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.billing import ledger
from gatewayz.money import usd_to_nanos
from gatewayz.simulators import Simulator
from gatewayz.storage.ledger.money import verify_ledger
from gatewayz.storage.tables import credit_holds, credit_transactions
from tests.e2e.harness import Gateway, add_user, request_log_rows, run_db

from .conftest import start_cached_gateway
from .helpers import chat_body, chat_calls, post, unique


@pytest.fixture(scope="module")
def billed(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = start_cached_gateway(
        tmp_path_factory.mktemp("billed"),
        upstream,
        response_cache_billed_fraction=Decimal("0.5"),
        billing_leases=False,  # the tests read each request's hold row
    )
    yield gw
    gw.stop()


def _ledger(gw: Gateway, user_id: str) -> dict[str, Any]:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await verify_ledger(conn, user_id)
        rows = await conn.execute(
            select(credit_transactions).where(
                credit_transactions.c.user_id == user_id, credit_transactions.c.type == "usage"
            )
        )
        holds = await conn.execute(select(credit_holds).where(credit_holds.c.user_id == user_id))
        return {
            "usage": [dict(r._mapping) for r in rows],
            "holds": [dict(r._mapping) for r in holds],
        }

    return run_db(gw, work)


def test_cm_8_1_1_a_billed_hit_is_charged_its_fraction_exactly_once(
    billed: Gateway, upstream: Simulator
) -> None:
    user_id, key = add_user(billed, credits_usd=5)
    body = chat_body(unique())
    miss = post(billed, body, key=key, request_id="miss-1")
    assert miss.headers["x-gatewayz-cache"] == "miss"
    hit = post(billed, body, key=key, request_id="hit-1")
    assert hit.headers["x-gatewayz-cache"] == "hit"
    assert len(chat_calls(upstream)) == 1
    state = _ledger(billed, user_id)
    by_request = {r["request_id"].split(".")[0]: -r["amount_nanos"] for r in state["usage"]}
    assert sorted(by_request) == ["hit-1", "miss-1"]  # one charge each, no more
    full, half = by_request["miss-1"], by_request["hit-1"]
    assert full > 0 and abs(2 * half - full) <= 1  # half the cached answer's cost
    assert usd_to_nanos(hit.headers["x-gatewayz-cost"]) == half
    assert usd_to_nanos(str(hit.json()["usage"]["cost"])) == half
    assert {h["status"] for h in state["holds"]} == {"settled"}
    (row,) = request_log_rows(billed, "hit-1")
    assert row["cache"] == "hit" and row["cost_nanos"] == half


def test_cm_8_1_1_a_billed_hit_streams_and_is_charged_once(
    billed: Gateway, upstream: Simulator
) -> None:
    user_id, key = add_user(billed, credits_usd=5)
    body = chat_body(unique(), stream=True, stream_options={"include_usage": True})
    post(billed, body, key=key, request_id="smiss-1")
    hit = post(billed, body, key=key, request_id="shit-1")
    assert hit.headers["x-gatewayz-cache"] == "hit"
    state = _ledger(billed, user_id)
    by_request = {r["request_id"].split(".")[0]: -r["amount_nanos"] for r in state["usage"]}
    assert sorted(by_request) == ["shit-1", "smiss-1"]
    assert abs(2 * by_request["shit-1"] - by_request["smiss-1"]) <= 1
    assert '"cost":' in hit.text


def test_cm_8_1_1_a_billed_hit_without_credit_is_a_402(
    billed: Gateway, upstream: Simulator
) -> None:
    user_id, key = add_user(billed, credits_usd=5)
    body = chat_body(unique())
    assert post(billed, body, key=key).headers["x-gatewayz-cache"] == "miss"

    async def drain(conn: AsyncConnection) -> None:
        left = (await ledger.balance(conn, user_id)).available
        await ledger.grant(conn, user_id, -left, type="adjustment")

    run_db(billed, drain)
    assert post(billed, body, key=key).status_code == 402  # the hit's hold does not fit
    assert len(chat_calls(upstream)) == 1
