"""Stripe webhook events: the values an event handler works with, and the helpers that read
Stripe objects (ids, metadata, amounts, plans). The user an event is about is found by
`storage.payments.find_user`. See `billing.stripe_webhook` for how events are received and
applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from gatewayz.billing.plans import Tier, load_plans
from gatewayz.money import usd_to_nanos
from gatewayz.storage import payments
from gatewayz.storage.db import DbConnection
from gatewayz.storage.tables import REQUEST_ID_LENGTH

_MAX_REQUEST_ID = REQUEST_ID_LENGTH  # credit_transactions.request_id


class BadEvent(ValueError):
    """A signed event we cannot act on (missing fields, bad amount, unknown plan): `failed`."""


@dataclass(frozen=True, slots=True)
class Audit:
    event: str
    user_id: str | None
    detail: dict[str, Any]
    severity: str = "info"


@dataclass(slots=True)
class Outcome:
    status: str  # processed | ignored
    user_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Context:
    """One event being handled: its connection (inside the event's transaction), the audit
    events to emit once it commits, and whether a plan changed (cached principals carry it)."""

    conn: DbConnection
    event: dict[str, Any]
    audits: list[Audit] = field(default_factory=list)
    plan_changed: bool = False

    def audit(self, event: str, user_id: str | None, severity: str = "info", **detail: Any) -> None:
        self.audits.append(
            Audit(event, user_id, {"stripe_event": self.event["id"], **detail}, severity)
        )


@dataclass(slots=True)
class Result:
    status: str
    event_id: str | None = None
    event_type: str | None = None
    user_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    audits: list[Audit] = field(default_factory=list)
    plan_changed: bool = False


# ---- helpers -------------------------------------------------------------------------------


def stripe_id(value: Any) -> str | None:
    """The id of an expandable Stripe field: a string, or an expanded object with an `id`."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"]:
        return str(value["id"])
    return None


def metadata_of(obj: Any) -> dict[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def purchase_amount(metadata_amount: Any, cents: Any) -> Decimal:
    """USD of a purchase: the metadata decimal string, else integer cents / 100. Never float."""
    if metadata_amount is not None and not isinstance(metadata_amount, bool | float):
        try:
            amount = Decimal(str(metadata_amount).strip())
        except InvalidOperation:
            raise BadEvent(f"bad amount_usd in metadata: {metadata_amount!r}") from None
    elif isinstance(cents, int) and not isinstance(cents, bool):
        amount = Decimal(cents).scaleb(-2)
    else:
        raise BadEvent("the purchase has no amount (metadata amount_usd or integer cents)")
    if not amount.is_finite() or amount <= 0:
        raise BadEvent(f"bad purchase amount: {amount}")
    try:
        usd_to_nanos(amount)
    except ValueError as exc:
        raise BadEvent(str(exc)) from None
    return amount


def subscription_tier(plan: Any) -> Tier:
    tier = load_plans().tiers.get(plan) if isinstance(plan, str) else None
    if tier is None or not tier.self_serve:
        raise BadEvent(f"subscription metadata names no self-serve plan: {plan!r}")
    return tier


def ledger_key(prefix: str, value: str) -> str:
    key = f"{prefix}{value}"
    if len(key) > _MAX_REQUEST_ID:
        raise BadEvent(f"identifier too long for the ledger: {value[:80]!r}")
    return key


async def remember_customer(conn: DbConnection, user: dict[str, Any], customer: Any) -> None:
    """Store the event's Stripe customer on the user who has none yet."""
    customer_id = stripe_id(customer)
    if customer_id and not user.get("stripe_customer_id"):
        await payments.set_customer(conn, user["id"], customer_id)


def as_text(value: Any) -> str | None:
    """A short string for an event's detail (which is stored as JSON), or None."""
    return None if value is None else str(value)[:300]


def unknown_user(kind: str, **detail: Any) -> Outcome:
    return Outcome("ignored", detail={"reason": f"unknown user ({kind})", **detail})
