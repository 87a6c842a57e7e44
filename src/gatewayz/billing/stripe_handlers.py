"""Stripe event handlers: purchases (credits, the trial's end, the referral bonus) and
subscriptions (plan, allowance, renewals). Each runs inside the event's transaction, see
`billing.stripe_webhook`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from gatewayz.billing import ledger
from gatewayz.billing.ledger import add_months
from gatewayz.billing.plans import Tier, load_plans
from gatewayz.billing.stripe_events import (
    BadEvent,
    Context,
    Outcome,
    as_text,
    ledger_key,
    metadata_of,
    purchase_amount,
    remember_customer,
    stripe_id,
    subscription_tier,
    unknown_user,
)
from gatewayz.storage import payments, users
from gatewayz.storage.db import DbConnection
from gatewayz.storage.ledger.money import lock_user, set_money, write_row
from gatewayz.storage.ledger.statements import count_rows
from gatewayz.storage.payments import find_user, locked_user
from gatewayz.storage.tables import utcnow

ACTIVE = ("active", "trialing")
INACTIVE = ("canceled", "unpaid", "paused", "incomplete_expired")
TERMINAL = ("canceled", "incomplete_expired")  # a Stripe subscription never leaves these
DOWNGRADE_PLAN = "dev"


# ---- purchases -----------------------------------------------------------------------------


async def _purchase(
    ctx: Context, user: dict[str, Any], amount: Decimal, payment_id: str, source: str
) -> Outcome:
    """Grant purchased credits once per payment; end a trial; pay a referral bonus on the
    user's first purchase. All in the event's transaction."""
    conn, uid = ctx.conn, user["id"]
    detail: dict[str, Any] = {"kind": "credits", "amount_usd": str(amount), "payment": payment_id}
    granted = await ledger.grant(
        conn,
        uid,
        amount,
        type="purchase",
        request_id=ledger_key("", payment_id),
        description=f"Stripe {source} {payment_id}",
    )
    detail["granted"] = granted
    if not granted:
        detail["reason"] = "this payment was already granted"
        return Outcome("processed", uid, detail)
    current = await locked_user(conn, uid)
    trial_plan = load_plans().trial.plan
    if current["plan"] == trial_plan:
        await ledger.change_plan(conn, uid, DOWNGRADE_PLAN)
        detail["plan"] = {"from": trial_plan, "to": DOWNGRADE_PLAN}
        ctx.plan_changed = True
    ctx.audit("credits_purchased", uid, **detail)
    referral = await _referral_bonus(ctx, current)
    if referral:
        detail["referral_bonus"] = referral
    return Outcome("processed", uid, detail)


async def _referral_bonus(ctx: Context, user: dict[str, Any]) -> dict[str, Any] | None:
    """On the user's first purchase, the referrer (whose `referral_code` the user signed up
    with) gets the referral bonus, once ever per referred user (ledger key
    `referral:<user id>`). Not to oneself."""
    code = user.get("referred_by_code")
    if not code or not str(code).strip():
        return None
    conn, uid = ctx.conn, user["id"]
    if await count_rows(conn, uid, "purchase") != 1:
        return None
    referrer = await users.referrer_of(conn, str(code).strip().upper())
    bonus = load_plans().referral_bonus_usd
    if referrer is None or referrer == uid or bonus <= 0:
        return None
    paid = await ledger.grant(
        conn,
        str(referrer),
        bonus,
        type="grant",
        request_id=ledger_key("referral:", uid),
        description=f"referral bonus: {uid} made their first purchase",
    )
    if not paid:
        return None
    ctx.audit("referral_bonus_granted", str(referrer), referee=uid, amount_usd=str(bonus))
    return {"referrer": str(referrer), "amount_usd": str(bonus)}


async def checkout_completed(ctx: Context, session: dict[str, Any]) -> Outcome:
    meta = metadata_of(session)
    mode, kind = session.get("mode"), meta.get("kind")
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return Outcome("ignored", detail={"reason": "checkout not paid yet"})
    if mode == "payment" and kind == "credits":
        user = await find_user(
            ctx.conn,
            user_id=meta.get("user_id") or session.get("client_reference_id"),
            customer=stripe_id(session.get("customer")),
        )
        if user is None:
            return unknown_user("checkout", session=session.get("id"))
        await remember_customer(ctx.conn, user, session.get("customer"))
        amount = purchase_amount(meta.get("amount_usd"), session.get("amount_total"))
        payment = stripe_id(session.get("payment_intent")) or stripe_id(session.get("id"))
        if payment is None:
            raise BadEvent("checkout session without an id")
        return await _purchase(ctx, user, amount, payment, "checkout")
    if mode == "subscription" and kind == "subscription":
        subscription = stripe_id(session.get("subscription"))
        if subscription is None:
            raise BadEvent("subscription checkout without a subscription id")
        user = await find_user(
            ctx.conn,
            user_id=meta.get("user_id") or session.get("client_reference_id"),
            customer=stripe_id(session.get("customer")),
        )
        if user is None:
            return unknown_user("checkout", session=session.get("id"))
        await remember_customer(ctx.conn, user, session.get("customer"))
        return await _activate(ctx, user, subscription, meta.get("plan"), "checkout")
    return Outcome("ignored", detail={"reason": f"not a Gatewayz checkout ({mode}, {kind})"})


async def payment_succeeded(ctx: Context, intent: dict[str, Any]) -> Outcome:
    meta = metadata_of(intent)
    if meta.get("kind") != "credits":
        return Outcome("ignored", detail={"reason": "not a credit purchase"})
    user = await find_user(
        ctx.conn, user_id=meta.get("user_id"), customer=stripe_id(intent.get("customer"))
    )
    if user is None:
        return unknown_user("payment intent", payment=intent.get("id"))
    payment = stripe_id(intent.get("id"))
    if payment is None:
        raise BadEvent("payment intent without an id")
    amount = purchase_amount(meta.get("amount_usd"), intent.get("amount_received"))
    return await _purchase(ctx, user, amount, payment, "payment")


async def payment_failed(ctx: Context, intent: dict[str, Any]) -> Outcome:
    meta = metadata_of(intent)
    user = await find_user(
        ctx.conn, user_id=meta.get("user_id"), customer=stripe_id(intent.get("customer"))
    )
    if user is None:
        return unknown_user("payment intent", payment=intent.get("id"))
    error = intent.get("last_payment_error")
    message = error.get("message") if isinstance(error, dict) else None
    detail = {
        "payment": stripe_id(intent.get("id")),
        "kind": as_text(meta.get("kind")),
        "amount_usd": as_text(meta.get("amount_usd")),
        "message": as_text(message),
    }
    ctx.audit("payment_failed", user["id"], severity="warning", **detail)
    return Outcome("processed", user["id"], detail)


# ---- subscriptions -------------------------------------------------------------------------


async def _was_terminated(conn: DbConnection, user_id: str, subscription: str) -> bool:
    """Whether an event already ended this subscription for good (canceled / expired):
    Stripe may deliver an older "active" update after the deletion."""
    for detail in await payments.processed_event_details(conn, user_id):
        if (
            isinstance(detail, dict)
            and detail.get("subscription") == subscription
            and detail.get("terminated")
        ):
            return True
    return False


async def _activate(
    ctx: Context, user: dict[str, Any], subscription: str, plan: Any, source: str
) -> Outcome:
    """The user is on `plan` through `subscription`: switch plan and start its allowance,
    unless that is already the case (repeated events reset nothing)."""
    tier = subscription_tier(plan)
    conn, uid = ctx.conn, user["id"]
    detail: dict[str, Any] = {"subscription": subscription, "plan": tier.slug, "source": source}
    current = await locked_user(conn, uid)  # first: a concurrent deletion is then visible
    if await _was_terminated(conn, uid, subscription):
        return Outcome("ignored", uid, {**detail, "reason": "subscription already ended"})
    if current["plan"] == tier.slug and current["stripe_subscription_id"] == subscription:
        return Outcome("processed", uid, {**detail, "changed": False})
    await ledger.change_plan(conn, uid, tier.slug, allowance_nanos=tier.allowance_nanos)
    await payments.set_subscription(conn, uid, subscription)
    ctx.plan_changed = True
    detail.update(changed=True, previous_plan=current["plan"])
    detail["allowance_usd"] = str(tier.monthly_allowance_usd)
    ctx.audit("subscription_activated", uid, **detail)
    return Outcome("processed", uid, detail)


async def _deactivate(
    ctx: Context, user: dict[str, Any], subscription: str, status: str, terminated: bool
) -> Outcome:
    """The subscription no longer pays: plan "dev" with no allowance; purchased credits stay."""
    conn, uid = ctx.conn, user["id"]
    detail: dict[str, Any] = {"subscription": subscription, "status": status}
    if terminated:
        detail["terminated"] = True  # see `_was_terminated`
    current = await locked_user(conn, uid)
    if current["stripe_subscription_id"] != subscription:
        return Outcome(
            "processed", uid, {**detail, "changed": False, "reason": "not the current one"}
        )
    await ledger.change_plan(conn, uid, DOWNGRADE_PLAN, allowance_nanos=0)
    # No subscription, no monthly allowance: nothing for the allowance sweep to renew.
    await payments.end_subscription(conn, uid)
    ctx.plan_changed = True
    detail.update(changed=True, previous_plan=current["plan"], plan=DOWNGRADE_PLAN)
    ctx.audit("subscription_ended", uid, **detail)
    return Outcome("processed", uid, detail)


async def subscription_changed(ctx: Context, sub: dict[str, Any]) -> Outcome:
    subscription = stripe_id(sub.get("id"))
    if subscription is None:
        raise BadEvent("subscription without an id")
    meta = metadata_of(sub)
    user = await find_user(
        ctx.conn,
        user_id=meta.get("user_id"),
        customer=stripe_id(sub.get("customer")),
        subscription=subscription,
    )
    if user is None:
        return unknown_user("subscription", subscription=subscription)
    status = sub.get("status")
    if ctx.event["type"] == "customer.subscription.deleted":
        return await _deactivate(ctx, user, subscription, str(status or "canceled"), True)
    if status in ACTIVE:
        await remember_customer(ctx.conn, user, sub.get("customer"))
        return await _activate(ctx, user, subscription, meta.get("plan"), ctx.event["type"])
    if status in INACTIVE:
        return await _deactivate(ctx, user, subscription, str(status), status in TERMINAL)
    return Outcome(
        "ignored",
        user["id"],
        {"subscription": subscription, "status": as_text(status), "reason": "no change"},
    )


def _invoice_subscription(invoice: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The subscription id and metadata of an invoice, in the current API shape
    (`parent.subscription_details`) or the older one (`subscription`, `subscription_details`)."""
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    if not isinstance(details, dict):
        details = invoice.get("subscription_details")
    details = details if isinstance(details, dict) else {}
    subscription = stripe_id(details.get("subscription")) or stripe_id(invoice.get("subscription"))
    return subscription, metadata_of(details)


async def invoice_paid(ctx: Context, invoice: dict[str, Any]) -> Outcome:
    invoice_id = stripe_id(invoice.get("id"))
    if invoice_id is None:
        raise BadEvent("invoice without an id")
    subscription, meta = _invoice_subscription(invoice)
    if subscription is None:
        return Outcome("ignored", detail={"reason": "not a subscription invoice"})
    user = await find_user(
        ctx.conn,
        user_id=meta.get("user_id"),
        customer=stripe_id(invoice.get("customer")),
        subscription=subscription,
    )
    if user is None:
        return unknown_user("invoice", invoice=invoice_id)
    plan = meta.get("plan")
    if plan is None and user.get("stripe_subscription_id") == subscription:
        plan = user["plan"]
    if plan is None:
        return Outcome(
            "ignored", user["id"], {"invoice": invoice_id, "reason": "plan of invoice unknown"}
        )
    started = await _activate(ctx, user, subscription, plan, "invoice")
    if started.status != "processed" or started.detail.get("changed"):
        return started  # ended, or just started with a full allowance
    if invoice.get("billing_reason") == "subscription_create":
        return started  # the first invoice: the start already gave the allowance
    return await _renew(ctx, user["id"], subscription_tier(plan), invoice_id)


async def _renew(ctx: Context, user_id: str, tier: Tier, invoice_id: str) -> Outcome:
    """A paid renewal: the allowance becomes the plan's monthly amount (unused allowance is
    lost), once per invoice (the `reset` row's ledger key is `invoice:<id>`)."""
    conn = ctx.conn
    state = await lock_user(conn, user_id)
    target = tier.allowance_nanos
    delta = target - state.allowance
    detail = {
        "invoice": invoice_id,
        "plan": tier.slug,
        "allowance_usd": str(tier.monthly_allowance_usd),
    }
    if not await write_row(
        conn,
        user_id,
        "reset",
        delta,
        state.total + delta,
        ledger_key("invoice:", invoice_id),
        f"subscription renewal ({tier.slug}), invoice {invoice_id}",
    ):
        return Outcome("processed", user_id, {**detail, "renewed": False})
    await set_money(
        conn,
        user_id,
        target,
        state.purchased,
        state.held,
        allowance_resets_at=add_months(utcnow(), 1),
    )
    ctx.audit("subscription_renewed", user_id, **detail)
    return Outcome("processed", user_id, {**detail, "renewed": True})


Handler = Callable[[Context, dict[str, Any]], Awaitable[Outcome]]

HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": checkout_completed,
    "checkout.session.async_payment_succeeded": checkout_completed,
    "payment_intent.succeeded": payment_succeeded,
    "payment_intent.payment_failed": payment_failed,
    "invoice.paid": invoice_paid,
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_changed,
}
