"""Payments: Stripe Checkout, the Stripe webhook and the referral code.

POST /user/checkout/credits       {"amount_usd": "25", "success_url", "cancel_url"}
POST /user/checkout/subscription  {"plan": "dev" | "team", "success_url", "cancel_url"}
    → {"id", "url"} of a Stripe Checkout Session (any valid key of the user). 400 for an
    amount that is not a credit pack or a plan that is not self-serve, 503 when Stripe is
    not configured, 502 when Stripe fails (with Stripe's message).
POST /api/stripe/webhook
    Stripe's events (signed; no API key). Always 200 (CM-16.5), with what happened:
    {"received": true, "status": "processed" | "duplicate" | "ignored" |
    "invalid_signature" | "failed" | "not_configured"}. See `billing.stripe_webhook`.
GET /user/referral
    The caller's referral code (created on first call) and how many users signed up with
    it. A referred user's first purchase pays the referrer `referral_bonus_usd`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from gatewayz.accounts.referrals import ensure_referral_code, referred_users
from gatewayz.api.access import request_ip
from gatewayz.api.deps import caller, services_of
from gatewayz.billing import checkout
from gatewayz.billing.plans import load_plans
from gatewayz.billing.stripe_webhook import receive
from gatewayz.money import usd_text
from gatewayz.security.auth import Principal

log = logging.getLogger("gatewayz.payments")

router = APIRouter(tags=["payments"])


class CheckoutUrls(BaseModel):
    model_config = ConfigDict(extra="forbid")

    success_url: str
    cancel_url: str


class CreditCheckout(CheckoutUrls):
    amount_usd: Any  # a decimal string or an integer; checked against the packs (never a float)


class SubscriptionCheckout(CheckoutUrls):
    plan: str


def _audit(request: Request, p: Principal, event: str, detail: dict[str, Any]) -> None:
    s = services_of(request)
    s.audit.event(
        event,
        user_id=p.user_id,
        api_key_id=p.api_key_id,
        ip=request_ip(request.scope),
        path=request.url.path,
        detail=detail,
    )


@router.post("/user/checkout/credits")
async def checkout_credits(
    body: CreditCheckout, request: Request, p: Annotated[Principal, Depends(caller)]
) -> dict[str, Any]:
    s = services_of(request)
    checkout.stripe_client(s.settings)  # 503 before anything else when not configured
    amount = checkout.credit_pack(body.amount_usd)
    success = checkout.check_redirect_url(body.success_url, "success_url")
    cancel = checkout.check_redirect_url(body.cancel_url, "cancel_url")
    session = await checkout.credit_checkout(s.db, s.settings, p.user_id, amount, success, cancel)
    _audit(
        request,
        p,
        "checkout_created",
        {"kind": "credits", "amount_usd": usd_text(amount), "session": session.id},
    )
    return {"id": session.id, "url": session.url}


@router.post("/user/checkout/subscription")
async def checkout_subscription(
    body: SubscriptionCheckout, request: Request, p: Annotated[Principal, Depends(caller)]
) -> dict[str, Any]:
    s = services_of(request)
    checkout.stripe_client(s.settings)
    tier = checkout.self_serve_tier(body.plan)
    success = checkout.check_redirect_url(body.success_url, "success_url")
    cancel = checkout.check_redirect_url(body.cancel_url, "cancel_url")
    session = await checkout.subscription_checkout(
        s.db, s.settings, p.user_id, tier, success, cancel
    )
    _audit(
        request,
        p,
        "checkout_created",
        {"kind": "subscription", "plan": tier.slug, "session": session.id},
    )
    return {"id": session.id, "url": session.url}


@router.post("/api/stripe/webhook")
async def stripe_webhook(request: Request) -> JSONResponse:
    """Always 200: Stripe must not retry what we refused on purpose, and our own failures are
    recorded (stripe_events `failed`, audit) for an operator to resend."""
    s = services_of(request)
    try:
        body = await request.body()
        ip: str | None = request_ip(request.scope)
    except Exception:  # the client went away mid-body
        log.warning("Stripe webhook body could not be read", exc_info=True)
        return JSONResponse({"received": True, "status": "failed"})
    result = await receive(
        s, body, request.headers.get("stripe-signature"), ip=ip, path=request.url.path
    )
    return JSONResponse({"received": True, "status": result.status})


@router.get("/user/referral")
async def referral(request: Request, p: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    s = services_of(request)
    code = await ensure_referral_code(s.db, p.user_id)
    return {
        "object": "referral",
        "referral_code": code,
        "referred_users": await referred_users(s.db, code),
        "bonus_usd": usd_text(load_plans().referral_bonus_usd),
    }
