"""GET /user/balance, /user/credit-transactions, /plans, /user/plan and /trial/status through a
real gateway: exact decimal amounts, keyset pagination, the plan data, the trial's counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.billing import ledger
from gatewayz.billing.plans import load_plans
from gatewayz.money import usd_to_nanos
from gatewayz.storage.tables import utcnow
from tests.api.billing.conftest import assert_openai_error, call, make_user, run
from tests.e2e.harness import HARNESS_CREDITS_USD, Gateway

USER_ROUTES = [
    "/user/balance",
    "/user/credit-transactions",
    "/user/plan",
    "/trial/status",
    "/user/usage",
]


@pytest.mark.parametrize("path", USER_ROUTES)
def test_user_routes_need_a_valid_key(gw: Gateway, path: str) -> None:
    assert_openai_error(call(gw, "GET", path), 401)
    assert_openai_error(call(gw, "GET", path, "gw_test_" + "x" * 40), 401)


def test_balance_of_the_harness_user(gw: Gateway) -> None:
    r = call(gw, "GET", "/user/balance", gw.api_key)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["purchased_credits"] == str(HARNESS_CREDITS_USD)
    assert body["currency"] == "USD" and body["plan"] == "dev"
    assert body["daily_spend_cap"] == "200"


def test_balance_is_exact_allowance_plus_purchased(gw: Gateway) -> None:
    spent_day = utcnow().date().isoformat()
    user_id, key = make_user(
        gw, "bal", credits_usd="1.25", spend_day=spent_day, spend_day_nanos=usd_to_nanos("0.0045")
    )
    resets = datetime(2031, 1, 1, tzinfo=UTC)

    async def work(conn: AsyncConnection) -> None:
        await ledger.reset_allowance(conn, user_id, usd_to_nanos("20"), resets - timedelta(days=31))
        await ledger.charge(conn, user_id, "req-bal-1", usd_to_nanos("0.0045"))
        await ledger.hold(conn, user_id, "req-bal-2", usd_to_nanos("0.5"))

    run(gw, work)
    body = call(gw, "GET", "/user/balance", key).json()
    assert body == {
        "object": "balance",
        "balance": "21.2455",  # 20 - 0.0045 allowance + 1.25 purchased
        "subscription_allowance": "19.9955",
        "purchased_credits": "1.25",
        "held": "0.5",
        "available": "20.7455",
        "currency": "USD",
        "plan": "dev",
        "allowance_resets_at": body["allowance_resets_at"],
        "spent_today": "0.0045",
        "daily_spend_cap": "200",
    }
    assert datetime.fromisoformat(body["allowance_resets_at"]) == resets
    # Amounts are strings that parse back exactly; the balance is allowance + purchased.
    assert Decimal(body["balance"]) == Decimal(body["subscription_allowance"]) + Decimal(
        body["purchased_credits"]
    )


def test_spent_today_ignores_an_older_day(gw: Gateway) -> None:
    _, key = make_user(gw, "oldday", spend_day="2001-01-01", spend_day_nanos=123)
    assert call(gw, "GET", "/user/balance", key).json()["spent_today"] == "0"


# ---- credit transactions ------------------------------------------------------------------


def _ledger_user(gw: Gateway, grants: int) -> tuple[str, str]:
    user_id, key = make_user(gw, "ledger", credits_usd="10")  # row 1: starting credits

    async def work(conn: AsyncConnection) -> None:
        for i in range(grants):
            amount = Decimal(i + 1).scaleb(-3)
            await ledger.grant(conn, user_id, amount, "purchase", f"pay-{user_id}-{i}")
        await ledger.charge(conn, user_id, f"req-{user_id}", usd_to_nanos("0.5"))

    run(gw, work)
    return user_id, key


def _walk(gw: Gateway, key: str, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        r = call(gw, "GET", "/user/credit-transactions", key, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body["data"])
        cursor = body["next_cursor"]
        assert (cursor is not None) == body["has_more"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not end"


def test_credit_transactions_pages_cover_the_ledger_once_newest_first(gw: Gateway) -> None:
    _, key = _ledger_user(gw, grants=11)  # 1 starting grant + 11 purchases + 1 usage = 13 rows
    everything = call(gw, "GET", "/user/credit-transactions", key, params={"limit": 200}).json()
    assert everything["next_cursor"] is None and len(everything["data"]) == 13
    for limit in (1, 5, 13):  # single rows, a short last page, one exact page
        pages = _walk(gw, key, limit)
        assert all(len(p) == limit for p in pages[:-1]) and 0 < len(pages[-1]) <= limit
        rows = [row for page in pages for row in page]
        assert rows == everything["data"]  # no duplicates, no gaps, same order
    ids = [r["id"] for r in everything["data"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 13
    newest, oldest = everything["data"][0], everything["data"][-1]
    assert newest["type"] == "usage" and newest["amount"] == "-0.5"
    assert newest["balance_after"] == "9.566"  # 10 + 0.066 purchased - 0.5
    assert oldest == {
        "id": oldest["id"],
        "type": "grant",
        "amount": "10",
        "balance_after": "10",
        "request_id": None,
        "description": "starting credits",
        "created_at": oldest["created_at"],
    }
    assert datetime.fromisoformat(oldest["created_at"]).tzinfo is not None
    # Each row's balance_after is the running sum of the amounts.
    running = Decimal(0)
    for row in reversed(everything["data"]):
        running += Decimal(row["amount"])
        assert Decimal(row["balance_after"]) == running


def test_credit_transactions_filter_by_type_and_isolated_per_user(gw: Gateway) -> None:
    _, key = _ledger_user(gw, grants=3)
    pages = _walk(gw, key, 2, type="purchase")
    rows = [r for p in pages for r in p]
    assert [r["amount"] for r in rows] == ["0.003", "0.002", "0.001"]
    assert {r["type"] for r in rows} == {"purchase"}
    assert (
        call(gw, "GET", "/user/credit-transactions", key, params={"type": "refund"}).json()["data"]
        == []
    )
    # Another user's cursor position reveals nothing of theirs: only the caller's rows.
    _, other_key = make_user(gw, "other")
    mine = call(gw, "GET", "/user/credit-transactions", other_key).json()
    assert mine["data"] == [] and mine["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, None),
        ({"limit": 201}, None),
        ({"limit": "many"}, None),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "MTIz"}, "cursor"),  # base64 of "123", not one of ours
        ({"cursor": "Y3QxOi0x"}, "cursor"),  # "ct1:-1"
        ({"type": "bogus"}, "type"),
    ],
)
def test_credit_transactions_bad_params_are_400(
    gw: Gateway, params: dict[str, Any], param: str | None
) -> None:
    r = call(gw, "GET", "/user/credit-transactions", gw.api_key, params=params)
    assert_openai_error(r, 400, param)


def test_credit_transactions_limit_bounds_are_accepted(gw: Gateway) -> None:
    for limit in (1, 200):
        r = call(gw, "GET", "/user/credit-transactions", gw.api_key, params={"limit": limit})
        assert r.status_code == 200, r.text


# ---- plans ---------------------------------------------------------------------------------


def test_plans_are_public_and_match_the_plan_data(gw: Gateway) -> None:
    r = call(gw, "GET", "/plans")
    assert r.status_code == 200, r.text
    body = r.json()
    tiers = {t["slug"]: t for t in body["data"]}
    assert list(tiers) == ["trial", "dev", "team", "enterprise"]
    assert tiers["dev"] == {
        "slug": "dev",
        "name": "Dev",
        "rpm": 250,
        "tokens_per_day": 2_000_000,
        "tokens_per_month": 60_000_000,
        "price_usd_month": "20",
        "monthly_allowance_usd": "20",
        "daily_spend_cap_usd": "200",
        "self_serve": True,
    }
    assert tiers["trial"]["self_serve"] is False and tiers["enterprise"]["self_serve"] is False
    assert tiers["team"]["rpm"] > tiers["dev"]["rpm"]
    plans = load_plans()
    for slug, tier in plans.tiers.items():
        assert Decimal(tiers[slug]["daily_spend_cap_usd"]) == tier.daily_spend_cap_usd
    assert body["trial"] == {
        "plan": "trial",
        "tier_label": "basic",
        "days": 3,
        "credits_usd": "5",
        "max_tokens": 1_000_000,
        "max_requests": 10_000,
    }
    assert body["credit_packs_usd"] == ["10", "25", "50", "100"]


def test_user_plan_shows_tier_allowance_and_reset(gw: Gateway) -> None:
    user_id, key = make_user(gw, "team", plan="team")
    start = datetime(2030, 5, 31, 12, tzinfo=UTC)

    async def work(conn: AsyncConnection) -> None:
        await ledger.change_plan(
            conn, user_id, "team", allowance_nanos=usd_to_nanos(100), now=start
        )
        await ledger.charge(conn, user_id, "req-plan", usd_to_nanos("0.25"))

    run(gw, work)
    r = call(gw, "GET", "/user/plan", key)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["plan"] == "team" and body["is_trial"] is False
    assert body["tier"]["slug"] == "team" and body["tier"]["rpm"] == 1000
    assert body["tier"]["monthly_allowance_usd"] == "100"
    assert body["allowance_remaining"] == "99.75"
    assert datetime.fromisoformat(body["allowance_resets_at"]) == datetime(
        2030, 6, 30, 12, tzinfo=UTC
    )
    assert body["daily_spend_cap"] == "1000" and body["spent_today"] == "0"


def test_user_plan_of_a_user_without_allowance(gw: Gateway) -> None:
    _, key = make_user(gw, "fresh", plan="trial")
    body = call(gw, "GET", "/user/plan", key).json()
    assert body["plan"] == "trial" and body["is_trial"] is True
    assert body["allowance_remaining"] == "0" and body["allowance_resets_at"] is None


# ---- trial status --------------------------------------------------------------------------


def test_trial_status_of_an_active_trial(gw: Gateway) -> None:
    ends = utcnow() + timedelta(days=2, hours=3)
    _, key = make_user(
        gw,
        "trial",
        plan="trial",
        credits_usd="5",
        trial_ends_at=ends,
        trial_tokens_used=250_000,
        trial_requests_used=42,
    )
    r = call(gw, "GET", "/trial/status", key)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["is_trial"] is True and body["expired"] is False and body["active"] is True
    assert abs(datetime.fromisoformat(body["trial_ends_at"]) - ends) < timedelta(seconds=1)
    assert body["days_remaining"] == 3  # 2 days 3 hours: three days started
    assert (body["tokens_used"], body["tokens_limit"]) == (250_000, 1_000_000)
    assert (body["requests_used"], body["requests_limit"]) == (42, 10_000)
    assert body["credit_cap_usd"] == "5"
    remaining = body["remaining"]
    assert remaining["tokens"] == 750_000 and remaining["requests"] == 9_958
    assert remaining["credits_usd"] == "5"
    assert 2 * 86400 < remaining["seconds"] <= 2 * 86400 + 3 * 3600


def test_trial_status_expired_and_exhausted(gw: Gateway) -> None:
    _, key = make_user(gw, "expired", plan="trial", trial_ends_at=utcnow() - timedelta(hours=1))
    body = call(gw, "GET", "/trial/status", key).json()
    assert body["is_trial"] is True and body["expired"] is True and body["active"] is False
    assert body["days_remaining"] == 0 and body["remaining"]["seconds"] == 0
    _, key = make_user(
        gw,
        "exhausted",
        plan="trial",
        trial_ends_at=utcnow() + timedelta(days=1),
        trial_tokens_used=1_000_123,
    )
    body = call(gw, "GET", "/trial/status", key).json()
    assert body["expired"] is False and body["active"] is False
    assert body["remaining"]["tokens"] == 0 and body["tokens_used"] == 1_000_123


def test_trial_status_of_a_paid_plan(gw: Gateway) -> None:
    r = call(gw, "GET", "/trial/status", gw.api_key)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["is_trial"] is False and body["expired"] is False
    assert body["tokens_limit"] is None and body["remaining"] is None
