"""Stripe Checkout: hosted payment pages for credit packs and self-serve subscriptions.

`credit_checkout` sells one credit pack (plans.toml `credit_packs`) as a one-off `payment`
session; `subscription_checkout` sells a self-serve tier as a monthly `subscription` session.
Both attach the user's Stripe customer (created on first use and kept in
`users.stripe_customer_id`) and put `{user_id, kind, ...}` in the metadata of the session and
of the payment intent / subscription it creates: the webhook (`billing.stripe_webhook`) reads
them back to know whom to credit. Nothing is granted here; money moves only on a verified
webhook event.

The official `stripe` library is synchronous (no async HTTP client is installed), so its calls
run in a worker thread and never block the event loop. No database transaction is held open
while Stripe is being called.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import stripe

from gatewayz.billing.plans import Plans, Tier, load_plans
from gatewayz.errors import GatewayError, InvalidRequest, NotFound
from gatewayz.money import usd_text
from gatewayz.settings import Settings
from gatewayz.storage import payments
from gatewayz.storage.db import Database, DbConnection
from gatewayz.storage.tables import utcnow

log = logging.getLogger("gatewayz.payments")

CURRENCY = "usd"
STRIPE_TIMEOUT_S = 30.0
STRIPE_NETWORK_RETRIES = 2  # POSTs carry an idempotency key: retrying is safe
MAX_URL_CHARS = 2048


class PaymentsNotConfigured(GatewayError):
    """GATEWAYZ_STRIPE_API_KEY is not set: this gateway does not sell anything."""

    status, type, code = 503, "api_error", "payments_not_configured"


class PaymentProviderError(GatewayError):
    """Stripe refused or failed the call; the message is Stripe's."""

    status, type, code = 502, "upstream_error", "stripe_error"


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    id: str
    url: str | None


def cents(amount: Decimal) -> int:
    """Whole cents of a USD amount; `ValueError` for a fraction of a cent."""
    scaled = amount.scaleb(2)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} USD is not a whole number of cents")
    return int(scaled)


def credit_pack(value: object, plans: Plans | None = None) -> Decimal:
    """The credit pack named by a request's `amount_usd` (a decimal string or an integer);
    400 listing the packs for anything else (floats included: money is never a float)."""
    packs = (plans or load_plans()).credit_packs_usd
    listing = ", ".join(usd_text(p) for p in packs)
    message = f"'amount_usd' must be one of the credit packs (USD): {listing}."
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRequest(message, param="amount_usd", code="invalid_credit_pack")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidRequest(message, param="amount_usd", code="invalid_credit_pack") from None
    for pack in packs:
        if amount.is_finite() and amount == pack:
            return pack
    raise InvalidRequest(message, param="amount_usd", code="invalid_credit_pack")


def self_serve_tier(plan: object, plans: Plans | None = None) -> Tier:
    """The tier of a self-serve plan name; 400 for any other plan (trial, enterprise, ...)."""
    plans = plans or load_plans()
    sold = [t.slug for t in plans.tiers.values() if t.self_serve]
    tier = plans.tiers.get(plan) if isinstance(plan, str) else None
    if tier is None or not tier.self_serve:
        raise InvalidRequest(
            f"'plan' must be a self-serve plan: {', '.join(sold)}; got {plan!r}.",
            param="plan",
            code="invalid_plan",
        )
    return tier


def check_redirect_url(value: str, param: str) -> str:
    url = value.strip()
    if not url.startswith(("https://", "http://")) or len(url) > MAX_URL_CHARS:
        raise InvalidRequest(
            f"'{param}' must be an http(s) URL of at most {MAX_URL_CHARS} characters.",
            param=param,
        )
    return url


@lru_cache(maxsize=4)
def _client(api_key: str, api_base: str | None) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=STRIPE_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=STRIPE_TIMEOUT_S),
    )


def stripe_client(settings: Settings) -> stripe.StripeClient:
    """The official client for the configured key (and API base, for a local test server);
    503 when no key is configured."""
    if settings.stripe_api_key is None or not settings.stripe_api_key.get_secret_value():
        raise PaymentsNotConfigured(
            "Payments are not configured on this gateway (GATEWAYZ_STRIPE_API_KEY is not set)."
        )
    return _client(settings.stripe_api_key.get_secret_value(), settings.stripe_api_base or None)


async def _call(what: str, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Run one blocking Stripe call in a thread; Stripe's failures become a 502."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except stripe.StripeError as exc:
        message = exc.user_message or type(exc).__name__
        log.warning("Stripe %s failed: %s (status %s)", what, message, exc.http_status)
        raise PaymentProviderError(f"Stripe error: {message}") from None


async def _user(conn: DbConnection, user_id: str) -> dict[str, Any]:
    row = await payments.customer_of(conn, user_id)
    if row is None:  # deleted while its key was still cached
        raise NotFound("Your user account no longer exists.", code="user_not_found")
    return row


async def ensure_customer(db: Database, client: stripe.StripeClient, user_id: str) -> str:
    """The user's Stripe customer id, creating (and storing) the customer on first use.

    Two concurrent first checkouts send the same idempotency key, so Stripe answers both with
    one customer; whichever stores its id first wins and the other reads it back.
    """
    async with db.begin() as conn:
        user = await _user(conn, user_id)
    if user["stripe_customer_id"]:
        return str(user["stripe_customer_id"])
    customer = await _call(
        "customer creation",
        client.v1.customers.create,
        params={"email": user["email"], "metadata": {"user_id": user_id}},
        options={"idempotency_key": f"gatewayz-customer-{user_id}"},
    )
    async with db.begin() as conn:
        await payments.set_customer(conn, user_id, customer.id, at=utcnow())
        user = await _user(conn, user_id)
    return str(user["stripe_customer_id"] or customer.id)


async def _session(
    db: Database,
    settings: Settings,
    user_id: str,
    urls: tuple[str, str],
    *,
    mode: str,
    price_data: dict[str, Any],
    metadata: dict[str, str],
    metadata_on: str,
) -> CheckoutSession:
    """One Checkout Session for one line item, the user's Stripe customer and `metadata` on the
    session and on the object Stripe creates from it (`metadata_on`)."""
    client = stripe_client(settings)
    customer = await ensure_customer(db, client, user_id)
    session = await _call(
        "checkout session creation",
        client.v1.checkout.sessions.create,
        params={
            "mode": mode,
            "customer": customer,
            "client_reference_id": user_id,
            "success_url": urls[0],
            "cancel_url": urls[1],
            "line_items": [{"price_data": {"currency": CURRENCY, **price_data}, "quantity": 1}],
            "metadata": metadata,
            metadata_on: {"metadata": metadata},
        },
    )
    return CheckoutSession(id=session.id, url=session.url)


async def credit_checkout(
    db: Database,
    settings: Settings,
    user_id: str,
    amount: Decimal,
    success_url: str,
    cancel_url: str,
) -> CheckoutSession:
    """A `payment`-mode Checkout Session for one credit pack of `amount` USD."""
    return await _session(
        db,
        settings,
        user_id,
        (success_url, cancel_url),
        mode="payment",
        price_data={
            "unit_amount": cents(amount),
            "product_data": {"name": f"Gatewayz credits (${usd_text(amount)})"},
        },
        metadata={"user_id": user_id, "kind": "credits", "amount_usd": usd_text(amount)},
        metadata_on="payment_intent_data",
    )


async def subscription_checkout(
    db: Database,
    settings: Settings,
    user_id: str,
    tier: Tier,
    success_url: str,
    cancel_url: str,
) -> CheckoutSession:
    """A `subscription`-mode Checkout Session for a self-serve tier, billed monthly."""
    return await _session(
        db,
        settings,
        user_id,
        (success_url, cancel_url),
        mode="subscription",
        price_data={
            "unit_amount": cents(tier.price_usd_month),
            "recurring": {"interval": "month"},
            "product_data": {"name": f"Gatewayz {tier.name} plan"},
        },
        metadata={"user_id": user_id, "kind": "subscription", "plan": tier.slug},
        metadata_on="subscription_data",
    )
