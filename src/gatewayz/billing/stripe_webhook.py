"""Stripe webhook events → money, exactly once (`POST /api/stripe/webhook`).

Verification
    The raw body and its `Stripe-Signature` header are checked by the official library
    (`stripe.WebhookSignature.verify_header`: HMAC-SHA256 of `"{t}.{body}"` with the endpoint's
    signing secret, timestamps older than 300 s refused). An event that fails is logged and
    audited and changes nothing.

Exactly once
    Each event is handled in ONE database transaction that first inserts its `stripe_events`
    row (keyed by Stripe's event id) and then applies the money change; the row's final status
    (`processed` | `ignored`) and the change commit together or not at all. A delivery whose id
    is already recorded is a `duplicate` and changes nothing (concurrent deliveries serialise on
    the primary key). If handling raises, the transaction rolls back and the event is recorded
    as `failed`; a later delivery of that event (Stripe's "resend") is handled afresh. Money
    changes are idempotent on their own as well: a purchase is granted once per payment intent
    (`checkout.session.completed` and `payment_intent.succeeded` of one purchase share the
    ledger key), a renewal resets the allowance once per invoice, a referral bonus is paid
    once per referred user.

Events
    checkout.session.completed (and .async_payment_succeeded), payment mode, kind "credits":
        purchased credits (`purchase` row, request id = the payment intent id, else the
        session id); a trial user moves to "dev"; the first purchase pays the referrer's bonus.
    checkout.session.completed, subscription mode: the subscription starts (plan + allowance).
    payment_intent.succeeded, kind "credits": the same purchase (same ledger key).
    payment_intent.payment_failed: audited, no money.
    invoice.paid: a renewal resets the allowance to the plan's monthly amount (once per
        invoice); the first invoice of a subscription starts it if no other event did.
    customer.subscription.created / updated: active or trialing → the metadata plan with its
        allowance (only when the plan or subscription changes, so repeats reset nothing);
        canceled, unpaid, paused, incomplete_expired → plan "dev", allowance 0.
    customer.subscription.deleted: plan "dev", allowance 0. Purchased credits are never touched.
    Anything else, or an event for an unknown user → `ignored` (recorded).

Amounts are never floats: the body is parsed with `parse_float=Decimal`, purchase amounts come
from the metadata decimal string or from integer cents.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any, Protocol

import stripe

from gatewayz.billing.stripe_events import Audit, BadEvent, Context, Outcome, Result
from gatewayz.billing.stripe_handlers import HANDLERS
from gatewayz.settings import Settings
from gatewayz.storage import payments
from gatewayz.storage.db import Database


class _AuditLog(Protocol):
    def event(self, event: str, **fields: Any) -> None: ...


class _AuthSync(Protocol):
    async def publish(self, key_hash: str | None) -> None: ...


class Services(Protocol):
    """What the webhook needs of the running gateway."""

    settings: Settings
    db: Database
    audit: _AuditLog
    auth_sync: _AuthSync


log = logging.getLogger("gatewayz.payments")

TOLERANCE_S = stripe.Webhook.DEFAULT_TOLERANCE  # 300 s
STATUSES = ("processed", "duplicate", "ignored", "invalid_signature", "failed", "not_configured")

__all__ = ["HANDLERS", "STATUSES", "receive"]


# ---- entry point ---------------------------------------------------------------------------


async def receive(
    services: Services, body: bytes, signature: str | None, *, ip: str | None, path: str
) -> Result:
    """Verify, record and apply one webhook delivery. Never raises: every outcome, errors
    included, is a `Result` (the route always answers 200)."""
    try:
        result = await _receive(services, body, signature)
    except Exception as exc:  # the database is down, or a bug: never a 500 to Stripe
        log.exception("Stripe webhook could not be handled")
        result = Result("failed", detail={"error": type(exc).__name__})
        result.audits.append(
            Audit("stripe_webhook_failed", None, {"error": type(exc).__name__}, "critical")
        )
    for a in result.audits:
        services.audit.event(
            a.event, severity=a.severity, user_id=a.user_id, ip=ip, path=path, detail=a.detail
        )
    if result.plan_changed:
        try:
            await services.auth_sync.publish(None)  # cached principals carry the plan
        except Exception:
            log.warning("could not invalidate cached principals after a plan change")
    log.info(
        "Stripe event %s (%s): %s user=%s",
        result.event_id,
        result.event_type,
        result.status,
        result.user_id,
    )
    return result


async def _receive(services: Services, body: bytes, signature: str | None) -> Result:
    secret = services.settings.stripe_webhook_secret
    if secret is None or not secret.get_secret_value().strip():
        log.warning("Stripe webhook received but GATEWAYZ_STRIPE_WEBHOOK_SECRET is not set")
        return Result(
            "not_configured",
            audits=[Audit("stripe_webhook_not_configured", None, {}, "warning")],
        )
    try:
        stripe.WebhookSignature.verify_header(
            body.decode("utf-8"), signature, secret.get_secret_value(), TOLERANCE_S
        )
    except (stripe.SignatureVerificationError, ValueError) as exc:
        reason = str(getattr(exc, "user_message", None) or exc)[:300]
        return Result(
            "invalid_signature",
            detail={"reason": reason},
            audits=[
                Audit(
                    "stripe_webhook_invalid_signature",
                    None,
                    {"reason": reason, "signature_present": bool(signature)},
                    "warning",
                )
            ],
        )
    try:
        event = parse_event(body)
    except BadEvent as exc:
        return Result(
            "failed",
            detail={"reason": str(exc)},
            audits=[Audit("stripe_webhook_failed", None, {"reason": str(exc)}, "critical")],
        )
    return await apply_event(services, event)


def parse_event(body: bytes) -> dict[str, Any]:
    """The event of a verified body; `BadEvent` unless it is an event object with an id, a
    type and a `data.object`."""
    try:
        event = json.loads(body, parse_float=Decimal)
    except ValueError:
        raise BadEvent("malformed JSON") from None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not event["id"]
        or not isinstance(event.get("type"), str)
        or not isinstance(event.get("data"), dict)
        or not isinstance(event["data"].get("object"), dict)
    ):
        raise BadEvent("not a Stripe event (id, type and data.object are required)")
    return event


async def apply_event(services: Services, event: dict[str, Any]) -> Result:
    """Record and apply one verified event in one transaction (see the module doc)."""
    event_id, event_type = event["id"], event["type"]
    try:
        async with services.db.begin() as conn:
            if not await payments.claim_event(conn, event_id, event_type):
                return Result("duplicate", event_id, event_type)
            ctx = Context(conn, event)
            handler = HANDLERS.get(event_type)
            if handler is None:
                outcome = Outcome("ignored", detail={"reason": "event type not handled"})
            else:
                outcome = await handler(ctx, event["data"]["object"])
            await payments.finish_event(
                conn, event_id, outcome.status, outcome.user_id, outcome.detail
            )
    except Exception as exc:
        reason = str(exc)[:300] if isinstance(exc, BadEvent) else type(exc).__name__
        if not isinstance(exc, BadEvent):
            log.exception("Stripe event %s (%s) failed", event_id, event_type)
        await _record_failure(services, event_id, event_type, reason)
        return Result(
            "failed",
            event_id,
            event_type,
            detail={"reason": reason},
            audits=[
                Audit(
                    "stripe_webhook_failed",
                    None,
                    {"stripe_event": event_id, "type": event_type, "reason": reason},
                    "critical",
                )
            ],
        )
    return Result(
        outcome.status,
        event_id,
        event_type,
        outcome.user_id,
        outcome.detail,
        ctx.audits,
        ctx.plan_changed,
    )


async def _record_failure(services: Services, event_id: str, event_type: str, reason: str) -> None:
    try:
        async with services.db.begin() as conn:
            await payments.record_event_failure(conn, event_id, event_type, reason)
    except Exception:
        log.exception("could not record the failure of Stripe event %s", event_id)
