"""A user's money and plan: `GET /user/balance`, `GET /user/credit-transactions`,
`GET /user/plan`, `GET /trial/status` (any valid key of the user), and the public `GET /plans`.

Amounts are exact USD decimal strings (`"0.0045"`), never floats: they come from integer
nano-dollars (`money.nanos_to_usd`) and keep every significant digit.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from gatewayz.api.deps import caller, services_of
from gatewayz.billing import account
from gatewayz.billing.plans import Plans, Tier, load_plans
from gatewayz.errors import InvalidRequest
from gatewayz.money import usd_text as usd
from gatewayz.security.auth import Principal
from gatewayz.storage.tables import utcnow

router = APIRouter(tags=["billing"])

MAX_PAGE = 200
_CURSOR_PREFIX = "ct1:"


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def spent_today_nanos(user: dict[str, Any], now: datetime | None = None) -> int:
    """The user's settled spend on the current UTC day (`users.spend_day` may be older)."""
    today = (now or utcnow()).astimezone(UTC).date().isoformat()
    return int(user.get("spend_day_nanos") or 0) if user.get("spend_day") == today else 0


def tier_json(t: Tier) -> dict[str, Any]:
    return {
        "slug": t.slug,
        "name": t.name,
        "rpm": t.rpm,
        "tokens_per_day": t.tokens_per_day,
        "tokens_per_month": t.tokens_per_month,
        "price_usd_month": usd(t.price_usd_month),
        "monthly_allowance_usd": usd(t.monthly_allowance_usd),
        "daily_spend_cap_usd": usd(t.daily_spend_cap_usd),
        "self_serve": t.self_serve,
    }


def trial_json(plans: Plans) -> dict[str, Any]:
    t = plans.trial
    return {
        "plan": t.plan,
        "tier_label": t.tier_label,
        "days": t.days,
        "credits_usd": usd(t.credits_usd),
        "max_tokens": t.max_tokens,
        "max_requests": t.max_requests,
    }


@router.get("/plans")
async def plans() -> dict[str, Any]:
    """The tiers, trial terms and credit packs (public: no key needed)."""
    p = load_plans()
    return {
        "object": "list",
        "data": [tier_json(t) for t in p.tiers.values()],
        "trial": trial_json(p),
        "credit_packs_usd": [usd(a) for a in p.credit_packs_usd],
        "currency": "USD",
    }


@router.get("/user/balance")
async def balance(request: Request, p: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    user, money = await account.user_and_balance(services_of(request).db, p.user_id)
    tier = load_plans().tier(user["plan"])
    return {
        "object": "balance",
        "balance": usd(money.total),
        "subscription_allowance": usd(money.allowance),
        "purchased_credits": usd(money.purchased),
        "held": usd(money.held),
        "available": usd(money.available),
        "currency": "USD",
        "plan": user["plan"],
        "allowance_resets_at": iso(user.get("allowance_resets_at")),
        "spent_today": usd(spent_today_nanos(user)),
        "daily_spend_cap": usd(tier.daily_spend_cap_usd),
    }


def encode_cursor(last_id: int) -> str:
    raw = f"{_CURSOR_PREFIX}{last_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The ledger row id a cursor continues after; `InvalidRequest` for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError(cursor)
        digits = text[len(_CURSOR_PREFIX) :]
        if not digits.isdigit() or len(digits) > 19:
            raise ValueError(cursor)
        return int(digits)
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidRequest(
            "Invalid 'cursor': pass the next_cursor of a previous page.", param="cursor"
        ) from None


def transaction_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "type": row["type"],
        "amount": usd(int(row["amount_nanos"])),
        "balance_after": usd(int(row["balance_after_nanos"])),
        "request_id": row["request_id"],
        "description": row["description"],
        "created_at": iso(row["created_at"]),
    }


@router.get("/user/credit-transactions")
async def credit_transactions_page(
    request: Request,
    p: Annotated[Principal, Depends(caller)],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: str | None = None,
    type_: Annotated[str | None, Query(alias="type")] = None,
) -> dict[str, Any]:
    """The caller's ledger, newest first, `limit` rows per page (keyset pagination on id)."""
    page, more = await account.transactions_page(
        services_of(request).db,
        p.user_id,
        limit=limit,
        type_=type_,
        before_id=decode_cursor(cursor) if cursor is not None else None,
    )
    return {
        "object": "list",
        "data": [transaction_json(r) for r in page],
        "next_cursor": encode_cursor(int(page[-1]["id"])) if more else None,
        "has_more": more,
    }


@router.get("/user/plan")
async def user_plan(request: Request, p: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    """The caller's plan: its tier's limits, the allowance left this month and the next reset."""
    user = await account.current_user(services_of(request).db, p.user_id)
    plans_ = load_plans()
    tier = plans_.tier(user["plan"])
    return {
        "object": "plan",
        "plan": user["plan"],
        "tier": tier_json(tier),
        "is_trial": user["plan"] == plans_.trial.plan,
        "allowance_remaining": usd(int(user.get("allowance_nanos") or 0)),
        "allowance_resets_at": iso(user.get("allowance_resets_at")),
        "spent_today": usd(spent_today_nanos(user)),
        "daily_spend_cap": usd(tier.daily_spend_cap_usd),
    }


@router.get("/trial/status")
async def trial_status(
    request: Request, p: Annotated[Principal, Depends(caller)]
) -> dict[str, Any]:
    """The caller's trial: end, usage against its token, request and credit limits."""
    user, money = await account.user_and_balance(services_of(request).db, p.user_id)
    terms = load_plans().trial
    now = utcnow()
    ends: datetime | None = user.get("trial_ends_at")
    tokens_used = int(user.get("trial_tokens_used") or 0)
    requests_used = int(user.get("trial_requests_used") or 0)
    if user["plan"] != terms.plan:
        return {
            "object": "trial_status",
            "is_trial": False,
            "trial_ends_at": iso(ends),
            "expired": False,
            "active": False,
            "days_remaining": None,
            "tokens_used": tokens_used,
            "tokens_limit": None,
            "requests_used": requests_used,
            "requests_limit": None,
            "credit_cap_usd": None,
            "remaining": None,
        }
    expired = ends is not None and now >= ends
    left = (ends - now).total_seconds() if ends is not None else None
    remaining = {
        "tokens": max(terms.max_tokens - tokens_used, 0),
        "requests": max(terms.max_requests - requests_used, 0),
        "credits_usd": usd(max(money.available, Decimal(0))),
        "seconds": max(int(left), 0) if left is not None else None,
    }
    exhausted = remaining["tokens"] == 0 or remaining["requests"] == 0
    return {
        "object": "trial_status",
        "is_trial": True,
        "trial_ends_at": iso(ends),
        "expired": expired,
        "active": not expired and not exhausted,
        "days_remaining": max(math.ceil(left / 86400), 0) if left is not None else None,
        "tokens_used": tokens_used,
        "tokens_limit": terms.max_tokens,
        "requests_used": requests_used,
        "requests_limit": terms.max_requests,
        "credit_cap_usd": usd(terms.credits_usd),
        "remaining": remaining,
    }
