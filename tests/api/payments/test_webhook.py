"""POST /api/stripe/webhook against a real gateway: signature checks, exactly-once purchases,
trials ending on purchase, the referral bonus, failures recorded and never a non-200."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from gatewayz.billing import stripe_webhook
from tests.api.payments.helpers import (
    WEBHOOK_SECRET,
    audit_rows,
    body_of,
    credits_intent,
    credits_session,
    deliver,
    event,
    ledger_rows,
    make_user,
    new_id,
    post_raw,
    purchased,
    sign,
    stripe_event_row,
    user_row,
    verify_ledger,
)
from tests.e2e.harness import Gateway


def _buy(gw: Gateway, user_id: str, amount: str) -> str:
    return deliver(gw, event("payment_intent.succeeded", credits_intent(user_id, amount)))


def _bad_deliveries(body: bytes) -> dict[str, dict[str, str]]:
    now = int(time.time())
    return {
        "wrong secret": {"Stripe-Signature": sign(body, secret="whsec_wrong")},
        "missing header": {},
        "empty header": {"Stripe-Signature": ""},
        "garbage header": {"Stripe-Signature": "garbage"},
        "no v1 signature": {"Stripe-Signature": f"t={now},v0=abc"},
        "stale timestamp": {"Stripe-Signature": sign(body, timestamp=now - 301)},
        "tampered body": {"Stripe-Signature": sign(body.replace(b'"25"', b'"2500"'))},
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong secret",
        "missing header",
        "empty header",
        "garbage header",
        "no v1 signature",
        "stale timestamp",
        "tampered body",
    ],
)
def test_cm_16_5_stripe_webhook_always_returns_200(gw: Gateway, case: str) -> None:
    user = make_user(gw)
    evt = event("checkout.session.completed", credits_session(user.id, "25"))
    body = body_of(evt)
    r = post_raw(gw, body, _bad_deliveries(body)[case])
    assert r.status_code == 200
    assert r.json() == {"received": True, "status": "invalid_signature"}
    assert purchased(gw, user.id) == 0
    assert stripe_event_row(gw, evt["id"]) is None  # not even recorded
    # ...and the same event, correctly signed, still goes through afterwards.
    assert deliver(gw, evt) == "processed"
    assert purchased(gw, user.id) == Decimal(25)


def test_cm_16_5_bad_signature_is_audited(gw: Gateway) -> None:
    body = body_of(event("checkout.session.completed", credits_session(new_id("usr"))))
    r = post_raw(gw, body, {"Stripe-Signature": sign(body, secret="whsec_forged")})
    assert r.json()["status"] == "invalid_signature"
    rows = audit_rows(gw, "stripe_webhook_invalid_signature")
    assert rows and rows[-1]["severity"] == "warning"
    assert rows[-1]["path"] == "/api/stripe/webhook"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", "failed"),
        (b"[]", "failed"),
        (b'{"id": "evt_x", "type": "checkout.session.completed"}', "failed"),
        (b"\xff\xfe", "invalid_signature"),  # not UTF-8: cannot even be verified
    ],
    ids=["malformed", "not-an-object", "no-data", "not-utf8"],
)
def test_cm_16_5_malformed_signed_body_returns_200_and_grants_nothing(
    gw: Gateway, body: bytes, status: str
) -> None:
    r = post_raw(gw, body, {"Stripe-Signature": sign(body)})
    assert r.status_code == 200
    assert r.json() == {"received": True, "status": status}
    assert stripe_event_row(gw, "evt_x") is None


def test_cm_16_5_handler_error_returns_200_grants_nothing_and_is_recorded(gw: Gateway) -> None:
    user = make_user(gw)
    session = credits_session(user.id, "25")
    session["metadata"]["amount_usd"] = "lots"
    evt = event("checkout.session.completed", session)
    assert deliver(gw, evt) == "failed"
    assert purchased(gw, user.id) == 0
    row = stripe_event_row(gw, evt["id"])
    assert row is not None and row["status"] == "failed"
    assert audit_rows(gw, "stripe_webhook_failed")


def test_cm_16_5_exception_mid_grant_rolls_back_and_resend_applies(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway runs in this process: a handler that grants and then crashes shows that
    the grant and the event row commit together or not at all, and that a failed event is
    handled afresh when Stripe resends it."""
    user = make_user(gw)
    intent = credits_intent(user.id, "10")
    evt = event("payment_intent.succeeded", intent)
    real = stripe_webhook.HANDLERS["payment_intent.succeeded"]

    async def crashing(ctx: Any, obj: dict[str, Any]) -> Any:
        await real(ctx, obj)
        raise RuntimeError("boom after the grant")

    monkeypatch.setitem(stripe_webhook.HANDLERS, "payment_intent.succeeded", crashing)
    assert deliver(gw, evt) == "failed"
    assert purchased(gw, user.id) == 0
    assert ledger_rows(gw, user.id, "purchase") == []
    monkeypatch.setitem(stripe_webhook.HANDLERS, "payment_intent.succeeded", real)
    assert deliver(gw, evt) == "processed"  # Stripe's "resend" of the failed event
    assert deliver(gw, evt) == "duplicate"
    assert purchased(gw, user.id) == Decimal(10)
    row = stripe_event_row(gw, evt["id"])
    assert row is not None and row["status"] == "processed" and row["user_id"] == user.id
    verify_ledger(gw, user.id)


def test_valid_purchase_grants_once_and_replay_is_duplicate(gw: Gateway) -> None:
    user = make_user(gw, credits_usd="3")
    pi = new_id("pi")
    evt = event("checkout.session.completed", credits_session(user.id, "25", payment_intent=pi))
    assert deliver(gw, evt) == "processed"
    for _ in range(3):
        assert deliver(gw, evt) == "duplicate"
    assert purchased(gw, user.id) == Decimal(28)
    rows = ledger_rows(gw, user.id, "purchase")
    assert [(r["amount_nanos"], r["request_id"]) for r in rows] == [(25 * 10**9, pi)]
    row = stripe_event_row(gw, evt["id"])
    assert row is not None
    assert (row["status"], row["type"], row["user_id"]) == (
        "processed",
        "checkout.session.completed",
        user.id,
    )
    assert row["detail"]["amount_usd"] == "25" and row["detail"]["granted"] is True
    audit = audit_rows(gw, "credits_purchased", user_id=user.id)
    assert len(audit) == 1 and audit[0]["detail"]["amount_usd"] == "25"
    verify_ledger(gw, user.id)


def test_purchase_without_payment_intent_is_keyed_by_session(gw: Gateway) -> None:
    user = make_user(gw)
    session = credits_session(user.id, "10")
    assert deliver(gw, event("checkout.session.completed", session)) == "processed"
    # A different event for the same session (e.g. async_payment_succeeded) grants nothing.
    assert deliver(gw, event("checkout.session.async_payment_succeeded", session)) == "processed"
    rows = ledger_rows(gw, user.id, "purchase")
    assert [r["request_id"] for r in rows] == [session["id"]]
    assert purchased(gw, user.id) == Decimal(10)
    verify_ledger(gw, user.id)


@pytest.mark.parametrize("checkout_first", [True, False], ids=["checkout-first", "intent-first"])
def test_checkout_and_payment_intent_of_one_purchase_grant_once(
    gw: Gateway, checkout_first: bool
) -> None:
    user = make_user(gw)
    pi = new_id("pi")
    session_evt = event(
        "checkout.session.completed", credits_session(user.id, "50", payment_intent=pi)
    )
    intent_evt = event("payment_intent.succeeded", credits_intent(user.id, "50", pi))
    first, second = (session_evt, intent_evt) if checkout_first else (intent_evt, session_evt)
    assert deliver(gw, first) == "processed"
    assert deliver(gw, second) == "processed"
    assert purchased(gw, user.id) == Decimal(50)
    assert len(ledger_rows(gw, user.id, "purchase")) == 1
    second_row = stripe_event_row(gw, second["id"])
    assert second_row is not None and second_row["detail"]["granted"] is False
    verify_ledger(gw, user.id)


def test_unpaid_checkout_grants_nothing(gw: Gateway) -> None:
    user = make_user(gw)
    session = credits_session(user.id, "25", payment_status="unpaid")
    assert deliver(gw, event("checkout.session.completed", session)) == "ignored"
    assert purchased(gw, user.id) == 0


def test_amount_from_integer_cents_when_metadata_has_none(gw: Gateway) -> None:
    user = make_user(gw)
    intent = credits_intent(user.id, "10")
    del intent["metadata"]["amount_usd"]
    intent["amount_received"] = 1234
    assert deliver(gw, event("payment_intent.succeeded", intent)) == "processed"
    assert purchased(gw, user.id) == Decimal("12.34")
    verify_ledger(gw, user.id)


def test_unknown_event_type_is_ignored_and_recorded(gw: Gateway) -> None:
    evt = event("charge.dispute.created", {"id": new_id("dp"), "object": "dispute"})
    assert deliver(gw, evt) == "ignored"
    assert deliver(gw, evt) == "duplicate"
    row = stripe_event_row(gw, evt["id"])
    assert row is not None and row["status"] == "ignored"


def test_event_for_unknown_user_is_ignored(gw: Gateway) -> None:
    evt = event("payment_intent.succeeded", credits_intent("usr_nobody", "25"))
    assert deliver(gw, evt) == "ignored"
    row = stripe_event_row(gw, evt["id"])
    assert row is not None and row["status"] == "ignored" and row["user_id"] is None


def test_intent_that_is_not_a_credit_purchase_is_ignored(gw: Gateway) -> None:
    user = make_user(gw)
    intent = credits_intent(user.id, "20")
    intent["metadata"] = {}  # e.g. a subscription invoice's payment
    assert deliver(gw, event("payment_intent.succeeded", intent)) == "ignored"
    assert purchased(gw, user.id) == 0


def test_payment_failed_is_audited_and_moves_no_money(gw: Gateway) -> None:
    user = make_user(gw, credits_usd="1")
    intent = credits_intent(user.id, "25")
    intent["status"] = "requires_payment_method"
    intent["last_payment_error"] = {"message": "Your card was declined."}
    assert deliver(gw, event("payment_intent.payment_failed", intent)) == "processed"
    assert purchased(gw, user.id) == Decimal(1)
    rows = audit_rows(gw, "payment_failed", user_id=user.id)
    assert rows and rows[0]["detail"]["message"] == "Your card was declined."
    assert rows[0]["severity"] == "warning"


def test_trial_user_purchase_moves_them_to_dev(gw: Gateway) -> None:
    user = make_user(gw, plan="trial", credits_usd="5")
    assert deliver(gw, event("payment_intent.succeeded", credits_intent(user.id, "10"))) == (
        "processed"
    )
    row = user_row(gw, user.id)
    assert row["plan"] == "dev"
    assert purchased(gw, user.id) == Decimal(15)
    assert row["allowance_nanos"] == 0  # buying credits is not a subscription
    verify_ledger(gw, user.id)


def test_team_user_purchase_keeps_their_plan(gw: Gateway) -> None:
    user = make_user(gw, plan="team")
    assert deliver(gw, event("payment_intent.succeeded", credits_intent(user.id, "10"))) == (
        "processed"
    )
    assert user_row(gw, user.id)["plan"] == "team"


def test_referral_bonus_paid_once_on_first_purchase_only(gw: Gateway) -> None:
    referrer = make_user(gw, referral_code="REFAAAA1")
    referee = make_user(gw, plan="trial", referred_by_code="refaaaa1")  # typed in lower case
    first_pi = new_id("pi")
    first = event(
        "checkout.session.completed", credits_session(referee.id, "10", payment_intent=first_pi)
    )
    assert deliver(gw, first) == "processed"
    assert purchased(gw, referrer.id) == Decimal(5)
    bonus = ledger_rows(gw, referrer.id, "grant")
    assert [(r["amount_nanos"], r["request_id"]) for r in bonus] == [
        (5 * 10**9, f"referral:{referee.id}")
    ]
    # The same purchase's intent event, a replay and a second purchase pay nothing more.
    again = event("payment_intent.succeeded", credits_intent(referee.id, "10", first_pi))
    assert deliver(gw, again) == "processed"
    assert deliver(gw, first) == "duplicate"
    assert deliver(gw, event("payment_intent.succeeded", credits_intent(referee.id, "25"))) == (
        "processed"
    )
    assert purchased(gw, referrer.id) == Decimal(5)
    assert purchased(gw, referee.id) == Decimal(35)
    assert audit_rows(gw, "referral_bonus_granted", user_id=referrer.id)
    verify_ledger(gw, referrer.id, referee.id)


def test_referral_bonus_needs_a_matching_code_and_never_pays_oneself(gw: Gateway) -> None:
    own = make_user(gw, referral_code="SELFREF2", referred_by_code="SELFREF2")
    stranger = make_user(gw, referred_by_code="NOSUCHCODE")
    for u in (own, stranger):
        assert deliver(gw, event("payment_intent.succeeded", credits_intent(u.id, "10"))) == (
            "processed"
        )
    assert purchased(gw, own.id) == Decimal(10)  # the purchase only, no bonus
    assert ledger_rows(gw, own.id, "grant") == []
    verify_ledger(gw, own.id, stranger.id)


def test_referral_bonus_is_paid_per_referred_user(gw: Gateway) -> None:
    referrer = make_user(gw, referral_code="REFBBBB3")
    referee = make_user(gw, referred_by_code="REFBBBB3")
    assert _buy(gw, referee.id, "10") == "processed"
    assert purchased(gw, referrer.id) == Decimal(5)
    referee2 = make_user(gw, referred_by_code="REFBBBB3")
    # Purchases by a second referee pay a second bonus (one per referred user)...
    assert _buy(gw, referee2.id, "10") == "processed"
    assert purchased(gw, referrer.id) == Decimal(10)
    # ...but never twice for the same referee.
    assert _buy(gw, referee2.id, "50") == "processed"
    assert purchased(gw, referrer.id) == Decimal(10)
    verify_ledger(gw, referrer.id, referee.id, referee2.id)


def test_webhook_secret_is_required(gw: Gateway) -> None:
    """A correctly signed event under a different secret is refused (the secret is the key)."""
    user = make_user(gw)
    evt = event("payment_intent.succeeded", credits_intent(user.id, "10"))
    assert deliver(gw, evt, secret=WEBHOOK_SECRET + "x") == "invalid_signature"
    assert purchased(gw, user.id) == 0
