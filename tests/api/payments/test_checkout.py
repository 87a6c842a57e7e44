"""POST /user/checkout/{credits,subscription} through the official Stripe library against the
local fake Stripe API, and GET /user/referral."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from gatewayz.simulators import Simulator
from tests.api.payments.conftest import payments_gateway
from tests.api.payments.fake_stripe import FakeStripe
from tests.api.payments.helpers import (
    STRIPE_API_KEY,
    User,
    audit_rows,
    close_helpers,
    credits_intent,
    deliver,
    event,
    http,
    make_user,
    new_id,
    purchased,
    user_row,
    verify_ledger,
)
from tests.e2e.harness import Gateway

URLS = {"success_url": "https://app.example.com/ok", "cancel_url": "https://app.example.com/no"}


@pytest.fixture(scope="module")
def gw_off(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway with no Stripe configuration at all."""
    g = payments_gateway(
        tmp_path_factory.mktemp("payments-off"), upstream, None, stripe_webhook_secret=None
    )
    yield g
    close_helpers(g)
    g.stop()


@pytest.fixture(autouse=True)
def _fresh_fake(fake_stripe: FakeStripe) -> None:
    fake_stripe.clear()


def _post(gw: Gateway, path: str, user: User, body: dict[str, Any]) -> Any:
    return http(gw).post(path, json=body, headers={"Authorization": f"Bearer {user.key}"})


def _error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) >= {"message", "type", "code"}
    return err


def test_credit_checkout_creates_a_payment_session(gw: Gateway, fake_stripe: FakeStripe) -> None:
    user = make_user(gw, with_key=True)
    r = _post(gw, "/user/checkout/credits", user, {"amount_usd": "25", **URLS})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"id", "url"}
    assert body["id"].startswith("cs_test_") and body["url"].endswith(body["id"])

    [customer_call] = fake_stripe.calls("/v1/customers")
    assert customer_call.headers["authorization"] == f"Bearer {STRIPE_API_KEY}"
    assert customer_call.headers["idempotency-key"]
    assert customer_call.params["metadata"] == {"user_id": user.id}
    assert customer_call.params["email"] == user_row(gw, user.id)["email"]
    customer = user_row(gw, user.id)["stripe_customer_id"]
    assert customer in fake_stripe.customers

    [call] = fake_stripe.calls("/v1/checkout/sessions")
    p = call.params
    metadata = {"user_id": user.id, "kind": "credits", "amount_usd": "25"}
    assert p["mode"] == "payment"
    assert p["customer"] == customer
    assert p["client_reference_id"] == user.id
    assert (p["success_url"], p["cancel_url"]) == (URLS["success_url"], URLS["cancel_url"])
    assert p["metadata"] == metadata
    assert p["payment_intent_data"] == {"metadata": metadata}
    [item] = p["line_items"]
    assert item["quantity"] == "1"
    assert item["price_data"]["currency"] == "usd"
    assert item["price_data"]["unit_amount"] == "2500"  # cents, an integer
    assert "recurring" not in item["price_data"]
    assert audit_rows(gw, "checkout_created", user_id=user.id)

    # A second checkout reuses the stored customer (an integer amount is fine too).
    r = _post(gw, "/user/checkout/credits", user, {"amount_usd": 100, **URLS})
    assert r.status_code == 200, r.text
    assert len(fake_stripe.calls("/v1/customers")) == 1
    last = fake_stripe.calls("/v1/checkout/sessions")[-1].params
    assert last["customer"] == customer
    assert last["line_items"][0]["price_data"]["unit_amount"] == "10000"
    assert last["metadata"]["amount_usd"] == "100"


@pytest.mark.parametrize(("plan", "cents"), [("dev", "2000"), ("team", "10000")])
def test_subscription_checkout_creates_a_monthly_session(
    gw: Gateway, fake_stripe: FakeStripe, plan: str, cents: str
) -> None:
    user = make_user(gw, plan="trial", with_key=True)
    r = _post(gw, "/user/checkout/subscription", user, {"plan": plan, **URLS})
    assert r.status_code == 200, r.text
    [call] = fake_stripe.calls("/v1/checkout/sessions")
    p = call.params
    metadata = {"user_id": user.id, "kind": "subscription", "plan": plan}
    assert p["mode"] == "subscription"
    assert p["client_reference_id"] == user.id
    assert p["metadata"] == metadata
    assert p["subscription_data"] == {"metadata": metadata}
    assert "payment_intent_data" not in p
    price = p["line_items"][0]["price_data"]
    assert (price["currency"], price["unit_amount"]) == ("usd", cents)
    assert price["recurring"] == {"interval": "month"}
    assert fake_stripe.sessions[r.json()["id"]]["mode"] == "subscription"


@pytest.mark.parametrize("amount", ["7", "25.5", 25.5, "abc", "", None, True, [25], "NaN"])
def test_credit_checkout_refuses_amounts_that_are_not_packs(
    gw: Gateway, fake_stripe: FakeStripe, amount: Any
) -> None:
    user = make_user(gw, with_key=True)
    err = _error(_post(gw, "/user/checkout/credits", user, {"amount_usd": amount, **URLS}), 400)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == "amount_usd"
    assert "10, 25, 50, 100" in err["message"]
    assert fake_stripe.requests == []


@pytest.mark.parametrize("plan", ["trial", "enterprise", "gold", ""])
def test_subscription_checkout_refuses_plans_that_are_not_self_serve(
    gw: Gateway, fake_stripe: FakeStripe, plan: str
) -> None:
    user = make_user(gw, with_key=True)
    err = _error(_post(gw, "/user/checkout/subscription", user, {"plan": plan, **URLS}), 400)
    assert err["param"] == "plan"
    assert "dev, team" in err["message"]
    assert fake_stripe.requests == []


def test_checkout_refuses_bad_redirect_urls(gw: Gateway, fake_stripe: FakeStripe) -> None:
    user = make_user(gw, with_key=True)
    body = {"amount_usd": "10", "success_url": "javascript:alert(1)", "cancel_url": "https://x"}
    assert _error(_post(gw, "/user/checkout/credits", user, body), 400)["param"] == "success_url"
    missing = {"amount_usd": "10"}
    assert _post(gw, "/user/checkout/credits", user, missing).status_code == 400
    assert fake_stripe.requests == []


def test_checkout_answers_503_when_stripe_is_not_configured(gw_off: Gateway) -> None:
    user = make_user(gw_off, with_key=True)
    for path, body in [
        ("/user/checkout/credits", {"amount_usd": "25", **URLS}),
        ("/user/checkout/subscription", {"plan": "dev", **URLS}),
    ]:
        err = _error(_post(gw_off, path, user, body), 503)
        assert err["code"] == "payments_not_configured"
        assert "GATEWAYZ_STRIPE_API_KEY" in err["message"]


def test_cm_16_5_webhook_without_a_secret_answers_200_not_configured(gw_off: Gateway) -> None:
    user = make_user(gw_off)
    assert deliver(gw_off, event("payment_intent.succeeded", credits_intent(user.id))) == (
        "not_configured"
    )
    assert purchased(gw_off, user.id) == 0


def test_checkout_answers_502_with_stripes_message(gw: Gateway, fake_stripe: FakeStripe) -> None:
    user = make_user(gw, with_key=True)
    fake_stripe.fail_next(400, "Your account cannot currently make live charges.")
    err = _error(_post(gw, "/user/checkout/credits", user, {"amount_usd": "10", **URLS}), 502)
    assert err["code"] == "stripe_error"
    assert "Your account cannot currently make live charges." in err["message"]
    assert user_row(gw, user.id)["stripe_customer_id"] is None
    # Now the customer exists and the session creation fails.
    assert (
        _post(gw, "/user/checkout/credits", user, {"amount_usd": "10", **URLS}).status_code == 200
    )
    fake_stripe.fail_next(402, "The price is invalid.")
    err = _error(_post(gw, "/user/checkout/subscription", user, {"plan": "dev", **URLS}), 502)
    assert "The price is invalid." in err["message"]


def test_checkout_requires_an_api_key(gw: Gateway, fake_stripe: FakeStripe) -> None:
    r = http(gw).post("/user/checkout/credits", json={"amount_usd": "10", **URLS})
    assert _error(r, 401)["type"] == "authentication_error"
    r = http(gw).get("/user/referral", headers={"Authorization": "Bearer gw_live_nope"})
    assert r.status_code == 401
    assert fake_stripe.requests == []


def test_paid_checkout_session_grants_the_pack(gw: Gateway, fake_stripe: FakeStripe) -> None:
    """The whole purchase: the API creates the session; Stripe's completion event (built from
    that very session) grants the credits and ends the trial."""
    user = make_user(gw, plan="trial", credits_usd="5", with_key=True)
    r = _post(gw, "/user/checkout/credits", user, {"amount_usd": "50", **URLS})
    session = dict(fake_stripe.sessions[r.json()["id"]])
    session.update(status="complete", payment_status="paid", payment_intent=new_id("pi"))
    assert deliver(gw, event("checkout.session.completed", session)) == "processed"
    assert purchased(gw, user.id) == Decimal(55)
    assert user_row(gw, user.id)["plan"] == "dev"
    verify_ledger(gw, user.id)


def test_referral_code_is_created_once_and_counts_sign_ups(gw: Gateway) -> None:
    referrer = make_user(gw, with_key=True)
    r = http(gw).get("/user/referral", headers={"Authorization": f"Bearer {referrer.key}"})
    assert r.status_code == 200, r.text
    info = r.json()
    code = info["referral_code"]
    assert len(code) == 8 and code.isalnum() and code.upper() == code
    assert (info["referred_users"], info["bonus_usd"]) == (0, "5")
    assert user_row(gw, referrer.id)["referral_code"] == code

    referees = [
        make_user(gw, plan="trial", referred_by_code=code),
        make_user(gw, plan="trial", referred_by_code=code.lower()),
    ]
    again = http(gw).get("/user/referral", headers={"Authorization": f"Bearer {referrer.key}"})
    assert again.json()["referral_code"] == code
    assert again.json()["referred_users"] == 2

    # A referee's first purchase pays the bonus to the code's owner.
    bought = event("payment_intent.succeeded", credits_intent(referees[0].id, "10"))
    assert deliver(gw, bought) == "processed"
    assert purchased(gw, referrer.id) == Decimal(5)
    verify_ledger(gw, referrer.id, referees[0].id)


def test_referral_codes_are_unique_per_user(gw: Gateway) -> None:
    codes = set()
    for _ in range(5):
        u = make_user(gw, with_key=True)
        r = http(gw).get("/user/referral", headers={"Authorization": f"Bearer {u.key}"})
        codes.add(r.json()["referral_code"])
    assert len(codes) == 5
