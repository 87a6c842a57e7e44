"""Trial limits and the daily spend cap on the request path (CM-7.3 – CM-7.7, SPEC §6), and the
background sweep (expired holds, due allowance resets)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import openai
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.billing import ledger
from gatewayz.billing.plans import load_plans
from gatewayz.billing.sweep import sweep
from gatewayz.simulators import Fault
from gatewayz.storage.db import Database
from tests.e2e.harness import Gateway, add_user, run_db

from .conftest import FREE_MODEL, MODEL, money

PROMPT = [{"role": "user", "content": "x" * 400}]
TRIAL = load_plans().trial


def ask(gateway: Gateway, key: str, model: str = MODEL) -> None:
    sdk = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    gateway.upstream.fault(Fault(text="one two three"))
    sdk.chat.completions.create(model=model, messages=PROMPT, max_tokens=10)


def refused(gateway: Gateway, key: str, status: int = 402) -> dict[str, str]:
    with pytest.raises(openai.APIStatusError) as caught:
        ask(gateway, key)
    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict)
    return body


def trial_user(gateway: Gateway, **values: object) -> tuple[str, str]:
    values.setdefault("trial_ends_at", datetime.now(UTC) + timedelta(days=3))
    return add_user(gateway, credits_usd="5", plan=TRIAL.plan, **values)


def test_cm_7_3_trial_stops_at_its_token_limit(gateway: Gateway) -> None:
    user, key = trial_user(gateway, trial_tokens_used=TRIAL.max_tokens - 1)
    ask(gateway, key)  # one token left: this request may still start
    assert money(gateway, user)["trial_tokens_used"] == TRIAL.max_tokens - 1 + 103
    body = refused(gateway, key)
    assert body["code"] == "trial_token_limit" and "1,000,000 tokens" in body["message"]
    assert len(gateway.upstream.requests) == 1  # the refused request never left


def test_cm_7_4_trial_stops_at_its_request_limit(gateway: Gateway) -> None:
    user, key = trial_user(gateway, trial_requests_used=TRIAL.max_requests - 1)
    ask(gateway, key)
    assert money(gateway, user)["trial_requests_used"] == TRIAL.max_requests
    assert refused(gateway, key)["code"] == "trial_request_limit"


def test_cm_7_5_expired_trial_is_402_on_standard_models(gateway: Gateway) -> None:
    _, key = trial_user(gateway, trial_ends_at=datetime.now(UTC) - timedelta(seconds=1))
    body = refused(gateway, key)
    assert body["code"] == "trial_expired" and "':free' suffix" in body["message"]
    assert gateway.upstream.requests == []


def test_cm_7_6_expired_trial_can_use_free_models(gateway: Gateway) -> None:
    _, key = trial_user(gateway, trial_ends_at=datetime.now(UTC) - timedelta(days=1))
    ask(gateway, key, FREE_MODEL)
    assert len(gateway.upstream.requests) == 1


def test_cm_7_7_active_trial_uses_standard_models_and_counts_them(gateway: Gateway) -> None:
    user, key = trial_user(gateway)
    ask(gateway, key)
    ask(gateway, key)
    state = money(gateway, user)
    assert (state["trial_tokens_used"], state["trial_requests_used"]) == (206, 2)


def test_paid_plans_do_not_count_trial_usage(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1", plan="dev")
    ask(gateway, key)
    state = money(gateway, user)
    assert (state["trial_tokens_used"], state["trial_requests_used"]) == (0, 0)


def test_daily_spend_cap_refuses_with_429_until_midnight_utc(gateway: Gateway) -> None:
    cap = load_plans().tier("dev").daily_cap_nanos
    today = datetime.now(UTC).date().isoformat()
    _, key = add_user(
        gateway, credits_usd="1000", plan="dev", spend_day=today, spend_day_nanos=cap - 1000
    )
    with pytest.raises(openai.RateLimitError) as caught:
        ask(gateway, key)
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "daily_spend_cap_reached"
    assert "$200.00" in body["message"] and "00:00 UTC" in body["message"]
    assert 0 < int(caught.value.response.headers["retry-after"]) <= 86400
    assert gateway.upstream.requests == []


def test_yesterdays_spend_does_not_count_today(gateway: Gateway) -> None:
    cap = load_plans().tier("dev").daily_cap_nanos
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    user, key = add_user(
        gateway, credits_usd="1000", plan="dev", spend_day=yesterday, spend_day_nanos=cap
    )
    ask(gateway, key)
    state = money(gateway, user)
    assert state["spend_day"] == datetime.now(UTC).date().isoformat()
    assert state["spend_day_nanos"] == 1_060_000  # only today's request


def test_allowance_is_spent_before_purchased_credits_on_the_request_path(
    gateway: Gateway,
) -> None:
    user, key = add_user(gateway, credits_usd="1")

    async def give_allowance(conn: AsyncConnection) -> None:
        await ledger.change_plan(conn, user, "dev", allowance_nanos=1_000_000)  # $0.001

    run_db(gateway, give_allowance)
    ask(gateway, key)  # costs $0.00106
    state = money(gateway, user)
    assert state["allowance_nanos"] == 0
    assert state["credits_nanos"] == 10**9 - 60_000


def test_sweep_releases_expired_holds_and_resets_due_allowances(gateway: Gateway) -> None:
    stale, _ = add_user(gateway, credits_usd="1")
    planned, _ = add_user(gateway, credits_usd="1", plan="team")
    long_ago = datetime.now(UTC) - timedelta(days=40)

    async def setup_and_sweep() -> tuple[int, int]:
        db = Database(gateway.settings.resolved_database_url)
        try:
            async with db.connect() as conn:
                assert await ledger.hold(conn, stale, "dead-worker-1", 10**6, now=long_ago)
                await ledger.change_plan(
                    conn, planned, "team", allowance_nanos=5 * 10**9, now=long_ago
                )
            return await sweep(db)
        finally:
            await db.dispose()

    released, resets = asyncio.run(setup_and_sweep())
    assert released >= 1 and resets >= 1
    assert [h["status"] for h in money(gateway, stale)["holds"]] == ["released"]
    state = money(gateway, planned)
    assert state["allowance_nanos"] == load_plans().tier("team").allowance_nanos
    assert state["allowance_resets_at"] > datetime.now(UTC)
    assert Decimal(state["credits_nanos"]) == 10**9  # purchased credits untouched
