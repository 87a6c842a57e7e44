"""The webhook on PostgreSQL under concurrency: simultaneous deliveries of one event, and the
checkout and payment-intent events of one purchase racing, still move money exactly once."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from gatewayz.simulators import Simulator
from tests.api.payments.conftest import payments_gateway
from tests.api.payments.fake_stripe import FakeStripe
from tests.api.payments.helpers import (
    close_helpers,
    credits_intent,
    credits_session,
    deliver,
    event,
    invoice,
    ledger_rows,
    make_user,
    new_id,
    purchased,
    stripe_event_row,
    subscription,
    user_row,
    verify_ledger,
)
from tests.conftest import PG_HOST, PG_PORT, RUN_ID, _pg_admin, _require
from tests.e2e.harness import Gateway

THREADS = 12


@pytest.fixture(scope="module")
def gw(
    upstream: Simulator, fake_stripe: FakeStripe, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    _require("PostgreSQL", PG_HOST, PG_PORT)
    name = f"gatewayz_test_{RUN_ID}_pay_{secrets.token_hex(3)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    g = payments_gateway(
        tmp_path_factory.mktemp("payments-pg"), upstream, fake_stripe, database_url=url
    )
    yield g
    close_helpers(g)
    g.stop()
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _all(gw: Gateway, events: list[dict[str, Any]]) -> list[str]:
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda e: deliver(gw, e), events))


def test_concurrent_deliveries_of_one_event_apply_once(gw: Gateway) -> None:
    user = make_user(gw)
    evt = event("checkout.session.completed", credits_session(user.id, "25", payment_intent=None))
    statuses = Counter(_all(gw, [evt] * THREADS))
    assert statuses == {"processed": 1, "duplicate": THREADS - 1}
    assert purchased(gw, user.id) == Decimal(25)
    assert len(ledger_rows(gw, user.id, "purchase")) == 1
    row = stripe_event_row(gw, evt["id"])
    assert row is not None and row["status"] == "processed"
    verify_ledger(gw, user.id)


def test_racing_checkout_and_intent_events_grant_each_purchase_once(gw: Gateway) -> None:
    users = [make_user(gw, plan="trial") for _ in range(4)]
    events = []
    for u in users:
        pi = new_id("pi")
        events.append(
            event("checkout.session.completed", credits_session(u.id, "10", payment_intent=pi))
        )
        events.append(event("payment_intent.succeeded", credits_intent(u.id, "10", pi)))
    assert set(_all(gw, events * 2)) <= {"processed", "duplicate"}
    for u in users:
        assert purchased(gw, u.id) == Decimal(10)
        assert user_row(gw, u.id)["plan"] == "dev"
    verify_ledger(gw, *(u.id for u in users))


def test_racing_first_purchases_pay_one_referral_bonus(gw: Gateway) -> None:
    referrer = make_user(gw, referral_code="PGREF001")
    referee = make_user(gw, plan="trial", referred_by_code="PGREF001")
    events = [event("payment_intent.succeeded", credits_intent(referee.id, "10")) for _ in range(6)]
    assert _all(gw, events) == ["processed"] * 6
    assert purchased(gw, referee.id) == Decimal(60)
    assert purchased(gw, referrer.id) == Decimal(5)
    verify_ledger(gw, referrer.id, referee.id)


def test_subscription_lifecycle_on_postgres(gw: Gateway) -> None:
    user = make_user(gw, plan="trial", credits_usd="4")
    sub = new_id("sub")

    def sub_event(kind: str, status: str) -> dict[str, Any]:
        return event(f"customer.subscription.{kind}", subscription(user.id, "team", status, sub))

    assert deliver(gw, sub_event("created", "active")) == "processed"
    renewal = event("invoice.paid", invoice(user.id, "team", sub))
    assert Counter(_all(gw, [renewal] * 6)) == {"processed": 1, "duplicate": 5}
    assert deliver(gw, sub_event("deleted", "canceled")) == "processed"
    assert deliver(gw, sub_event("updated", "active")) == "ignored"  # stale, after deletion
    row = user_row(gw, user.id)
    assert (row["plan"], row["allowance_nanos"], row["credits_nanos"]) == ("dev", 0, 4 * 10**9)
    verify_ledger(gw, user.id)
