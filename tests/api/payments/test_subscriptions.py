"""Subscription events: the plan and its allowance follow Stripe's subscription (created /
updated / deleted, checkout, invoice.paid), exactly once; purchased credits never move."""

from __future__ import annotations

from decimal import Decimal

from tests.api.payments.helpers import (
    allowance,
    audit_rows,
    charge,
    deliver,
    event,
    invoice,
    ledger_rows,
    make_user,
    new_id,
    purchased,
    subscription,
    subscription_session,
    user_row,
    verify_ledger,
)
from tests.e2e.harness import Gateway


def _sub(gw: Gateway, kind: str, user_id: str, plan: str, status: str, sub_id: str) -> str:
    evt = event(f"customer.subscription.{kind}", subscription(user_id, plan, status, sub_id))
    return deliver(gw, evt)


def test_subscription_created_updated_deleted_change_plan_and_allowance(gw: Gateway) -> None:
    user = make_user(gw, plan="trial", credits_usd="7")
    sub = new_id("sub")
    assert _sub(gw, "created", user.id, "dev", "active", sub) == "processed"
    row = user_row(gw, user.id)
    assert (row["plan"], row["stripe_subscription_id"]) == ("dev", sub)
    assert allowance(gw, user.id) == Decimal(20)
    assert purchased(gw, user.id) == Decimal(7)

    # A repeated "active" update for the same plan resets nothing (the user spent $4 meanwhile).
    charge(gw, user.id, "4")
    assert _sub(gw, "updated", user.id, "dev", "active", sub) == "processed"
    assert allowance(gw, user.id) == Decimal(16)

    # Upgrade: the team allowance starts now (the old allowance is not carried over).
    assert _sub(gw, "updated", user.id, "team", "active", sub) == "processed"
    assert user_row(gw, user.id)["plan"] == "team"
    assert allowance(gw, user.id) == Decimal(100)

    # past_due: Stripe is still retrying the payment; nothing changes yet.
    assert _sub(gw, "updated", user.id, "team", "past_due", sub) == "ignored"
    assert user_row(gw, user.id)["plan"] == "team"

    assert _sub(gw, "deleted", user.id, "team", "canceled", sub) == "processed"
    row = user_row(gw, user.id)
    assert (row["plan"], row["stripe_subscription_id"]) == ("dev", None)
    assert allowance(gw, user.id) == 0
    assert row["allowance_resets_at"] is None  # the monthly sweep must not renew a free one
    assert purchased(gw, user.id) == Decimal(7)
    assert audit_rows(gw, "subscription_activated", user_id=user.id)
    assert audit_rows(gw, "subscription_ended", user_id=user.id)
    verify_ledger(gw, user.id)


def test_cm_7_10_purchased_credits_survive_plan_change(gw: Gateway) -> None:
    user = make_user(gw, plan="dev", credits_usd="42.5")
    sub = new_id("sub")
    for kind, plan, status in [
        ("created", "team", "active"),
        ("updated", "dev", "active"),
        ("updated", "dev", "unpaid"),
        ("updated", "team", "active"),
        ("deleted", "team", "canceled"),
    ]:
        assert _sub(gw, kind, user.id, plan, status, sub) == "processed"
        assert purchased(gw, user.id) == Decimal("42.5")
    verify_ledger(gw, user.id)


def test_unpaid_subscription_downgrades_and_trialing_counts_as_active(gw: Gateway) -> None:
    user = make_user(gw, plan="trial")
    sub = new_id("sub")
    assert _sub(gw, "created", user.id, "team", "trialing", sub) == "processed"
    assert (user_row(gw, user.id)["plan"], allowance(gw, user.id)) == ("team", Decimal(100))
    assert _sub(gw, "updated", user.id, "team", "unpaid", sub) == "processed"
    assert (user_row(gw, user.id)["plan"], allowance(gw, user.id)) == ("dev", Decimal(0))
    # Paying the overdue invoice makes it active again, with a fresh allowance.
    assert _sub(gw, "updated", user.id, "team", "active", sub) == "processed"
    assert (user_row(gw, user.id)["plan"], allowance(gw, user.id)) == ("team", Decimal(100))
    verify_ledger(gw, user.id)


def test_stale_active_update_after_deletion_is_ignored(gw: Gateway) -> None:
    """Stripe does not guarantee delivery order: an old "active" update arriving after the
    deletion must not bring the plan back."""
    user = make_user(gw, plan="trial")
    sub = new_id("sub")
    assert _sub(gw, "created", user.id, "dev", "active", sub) == "processed"
    assert _sub(gw, "deleted", user.id, "dev", "canceled", sub) == "processed"
    assert _sub(gw, "updated", user.id, "dev", "active", sub) == "ignored"
    assert (user_row(gw, user.id)["plan"], allowance(gw, user.id)) == ("dev", Decimal(0))


def test_cancellation_of_an_old_subscription_leaves_the_new_one(gw: Gateway) -> None:
    user = make_user(gw, plan="trial")
    old, new = new_id("sub"), new_id("sub")
    assert _sub(gw, "created", user.id, "dev", "active", old) == "processed"
    assert _sub(gw, "created", user.id, "team", "active", new) == "processed"
    assert _sub(gw, "deleted", user.id, "dev", "canceled", old) == "processed"
    row = user_row(gw, user.id)
    assert (row["plan"], row["stripe_subscription_id"]) == ("team", new)
    assert allowance(gw, user.id) == Decimal(100)


def test_subscription_for_a_plan_that_is_not_self_serve_fails_and_changes_nothing(
    gw: Gateway,
) -> None:
    user = make_user(gw, plan="dev")
    assert _sub(gw, "created", user.id, "enterprise", "active", new_id("sub")) == "failed"
    assert (user_row(gw, user.id)["plan"], allowance(gw, user.id)) == ("dev", Decimal(0))


def test_subscription_event_for_unknown_user_is_ignored(gw: Gateway) -> None:
    assert _sub(gw, "created", "usr_nobody", "dev", "active", new_id("sub")) == "ignored"


def test_subscription_checkout_starts_the_plan_once(gw: Gateway) -> None:
    """checkout.session.completed, customer.subscription.created and the first invoice of
    one subscription give one allowance between them, in whatever order they arrive."""
    user = make_user(gw, plan="trial", credits_usd="2")
    sub = new_id("sub")
    session = subscription_session(user.id, "dev", sub)
    assert deliver(gw, event("checkout.session.completed", session)) == "processed"
    row = user_row(gw, user.id)
    assert (row["plan"], row["stripe_subscription_id"]) == ("dev", sub)
    assert row["stripe_customer_id"] == session["customer"]
    assert allowance(gw, user.id) == Decimal(20)
    charge(gw, user.id, "1.5")
    assert _sub(gw, "created", user.id, "dev", "active", sub) == "processed"
    first = invoice(user.id, "dev", sub, billing_reason="subscription_create")
    assert deliver(gw, event("invoice.paid", first)) == "processed"
    assert allowance(gw, user.id) == Decimal("18.5")
    assert len([r for r in ledger_rows(gw, user.id, "reset") if r["amount_nanos"]]) == 1
    verify_ledger(gw, user.id)


def test_first_invoice_alone_starts_the_subscription(gw: Gateway) -> None:
    user = make_user(gw, plan="trial")
    sub = new_id("sub")
    first = invoice(user.id, "team", sub, billing_reason="subscription_create")
    assert deliver(gw, event("invoice.paid", first)) == "processed"
    row = user_row(gw, user.id)
    assert (row["plan"], row["stripe_subscription_id"]) == ("team", sub)
    assert allowance(gw, user.id) == Decimal(100)
    verify_ledger(gw, user.id)


def test_cm_6_2_4_invoice_paid_resets_the_allowance_once_per_invoice(gw: Gateway) -> None:
    user = make_user(gw, plan="trial", credits_usd="3")
    sub = new_id("sub")
    assert _sub(gw, "created", user.id, "dev", "active", sub) == "processed"
    charge(gw, user.id, "12")
    assert allowance(gw, user.id) == Decimal(8)

    renewal = invoice(user.id, "dev", sub)
    paid = event("invoice.paid", renewal)
    assert deliver(gw, paid) == "processed"
    assert allowance(gw, user.id) == Decimal(20)  # reset to the plan's amount: no roll-over
    assert deliver(gw, paid) == "duplicate"

    charge(gw, user.id, "5")
    # Another event about the same invoice (e.g. a re-sent copy with a new id) resets nothing.
    assert deliver(gw, event("invoice.paid", renewal)) == "processed"
    assert allowance(gw, user.id) == Decimal(15)
    resets = [r for r in ledger_rows(gw, user.id, "reset") if r["request_id"]]
    assert [r["request_id"] for r in resets] == [f"invoice:{renewal['id']}"]

    # The next month's invoice resets again.
    assert deliver(gw, event("invoice.paid", invoice(user.id, "dev", sub))) == "processed"
    assert allowance(gw, user.id) == Decimal(20)
    assert purchased(gw, user.id) == Decimal(3)
    assert audit_rows(gw, "subscription_renewed", user_id=user.id)
    verify_ledger(gw, user.id)


def test_invoice_in_the_older_api_shape_is_understood(gw: Gateway) -> None:
    user = make_user(gw, plan="trial")
    sub = new_id("sub")
    assert _sub(gw, "created", user.id, "dev", "active", sub) == "processed"
    charge(gw, user.id, "2")
    old_shape = {
        "id": new_id("in"),
        "object": "invoice",
        "billing_reason": "subscription_cycle",
        "customer": new_id("cus"),
        "subscription": sub,  # no metadata: the plan is the user's current one
    }
    assert deliver(gw, event("invoice.paid", old_shape)) == "processed"
    assert allowance(gw, user.id) == Decimal(20)


def test_invoice_without_subscription_is_ignored(gw: Gateway) -> None:
    one_off = {"id": new_id("in"), "object": "invoice", "billing_reason": "manual"}
    assert deliver(gw, event("invoice.paid", one_off)) == "ignored"
