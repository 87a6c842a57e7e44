"""Admin money routes: `POST /admin/credits` (grants and adjustments through the ledger) and
`GET/POST/DELETE /admin/pricing` (price overrides). Each needs `admin:access` plus
`admin:credits:write` or `admin:pricing:write`; every write is an audit event.

Amounts are decimal strings or integers; a JSON float is refused (400) because it cannot hold
most decimal amounts exactly. After a pricing change the serving worker's price book is rebuilt
at once (`services.meter.reload_prices()`).

What an override takes, and how it is checked: api/price_input.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from gatewayz.api.access import request_ip
from gatewayz.api.deps import allowed, services_of
from gatewayz.api.price_input import (
    PRICE_FIELDS,
    PriceOverrideIn,
    decimal_field,
    effective_from,
    override_json,
    packaged_modes,
    price_of,
)
from gatewayz.billing import admin
from gatewayz.errors import InvalidRequest, NotFound
from gatewayz.money import usd_text as usd
from gatewayz.money import usd_to_nanos
from gatewayz.security.auth import Principal
from gatewayz.storage.tables import REQUEST_ID_LENGTH

router = APIRouter(prefix="/admin", tags=["admin"])

CREDITS = allowed("admin:access", "admin:credits:write")
PRICING = allowed("admin:access", "admin:pricing:write")

ADMIN_GRANT_TYPES = ("grant", "adjustment")
MAX_CREDIT_USD = Decimal(1_000_000_000)  # per call; keeps nano-dollar sums far from 2⁶³


def _audit(request: Request, event: str, p: Principal, user_id: str | None, **detail: Any) -> None:
    s = services_of(request)
    s.audit.event(
        event,
        severity="warning",
        user_id=user_id,
        api_key_id=p.api_key_id,
        ip=request_ip(request.scope),
        path=request.url.path,
        detail={"by_user": p.user_id, **detail},
    )


# ---- credits ------------------------------------------------------------------------------


class CreditChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(default=None, min_length=1, max_length=40)
    email: str | None = Field(default=None, min_length=3, max_length=320)
    amount_usd: Any
    type: str = "grant"
    description: str | None = Field(default=None, max_length=1000)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=REQUEST_ID_LENGTH)


@router.post("/credits")
async def change_credits(
    body: CreditChange, request: Request, p: Annotated[Principal, Depends(CREDITS)]
) -> dict[str, Any]:
    """Grant (or, with a negative `adjustment`, remove) purchased credits; the new balance.

    With an `idempotency_key` (the ledger row's request id) a repeat changes nothing and
    answers `"applied": false`."""
    if body.type not in ADMIN_GRANT_TYPES:
        raise InvalidRequest(
            f"'type' must be one of {', '.join(ADMIN_GRANT_TYPES)}; got {body.type!r}.",
            param="type",
        )
    if (body.user_id is None) == (body.email is None):
        raise InvalidRequest("Give exactly one of 'user_id' and 'email'.", param="user_id")
    amount = decimal_field(body.amount_usd, "amount_usd")
    if amount == 0 or (amount < 0 and body.type != "adjustment"):
        raise InvalidRequest(
            f"A {body.type} must be a positive amount (only an adjustment may be negative).",
            param="amount_usd",
        )
    if abs(amount) > MAX_CREDIT_USD:
        raise InvalidRequest(
            f"'amount_usd' may be at most {MAX_CREDIT_USD} USD per call.", param="amount_usd"
        )
    try:
        usd_to_nanos(amount)
    except ValueError:
        raise InvalidRequest(
            "'amount_usd' is finer than one nano-dollar (10⁻⁹ USD).", param="amount_usd"
        ) from None
    change = await admin.change_credits(
        services_of(request).db,
        user_id=body.user_id,
        email=body.email,
        amount=amount,
        type_=body.type,
        idempotency_key=body.idempotency_key,
        description=body.description,
    )
    applied, money = change.applied, change.balance
    _audit(
        request,
        "credits_granted" if body.type == "grant" else "credits_adjusted",
        p,
        change.user_id,
        type=body.type,
        amount_usd=usd(amount),
        applied=applied,
        idempotency_key=body.idempotency_key,
        description=body.description,
    )
    return {
        "object": "credit_change",
        "user_id": change.user_id,
        "applied": applied,
        "type": body.type,
        "amount": usd(amount),
        "idempotency_key": body.idempotency_key,
        "balance": usd(money.total),
        "subscription_allowance": usd(money.allowance),
        "purchased_credits": usd(money.purchased),
        "held": usd(money.held),
        "available": usd(money.available),
        "currency": "USD",
    }


# ---- pricing ------------------------------------------------------------------------------


@router.get("/pricing")
async def list_pricing(
    request: Request,
    _p: Annotated[Principal, Depends(PRICING)],
    model: str | None = None,
    provider: str | None = None,
) -> dict[str, Any]:
    """The override rows (of `model` / `provider` when given) and, for a model, the price the
    gateway charges now."""
    s = services_of(request)
    rows = await admin.list_overrides(s.db)
    if model:
        rows = [r for r in rows if r["model"] == model]
    if provider:
        rows = [r for r in rows if r["provider"] in (provider, None)]
    out: dict[str, Any] = {"object": "list", "data": [override_json(r) for r in rows]}
    if model:
        found = s.meter.book.lookup(model, provider or None)
        price = found.price
        effective: dict[str, Any] = {"model": model, "provider": provider or None}
        effective["mode"] = price.kind
        effective.update({n: usd(v) for n in PRICE_FIELDS if (v := getattr(price, n)) is not None})
        if price.image_sizes:
            effective["image_sizes"] = {k: usd(v) for k, v in price.image_sizes}
        effective.update(
            source=found.source,
            is_default=found.is_default,
            priced_provider=found.priced_provider,
        )
        out["effective"] = effective
    return out


@router.post("/pricing", status_code=201)
async def add_pricing(
    body: PriceOverrideIn, request: Request, p: Annotated[Principal, Depends(PRICING)]
) -> dict[str, Any]:
    if not body.model.strip():
        raise InvalidRequest("'model' must not be blank.", param="model")
    s = services_of(request)
    provider = (body.provider or "").strip() or None  # as storage/price_overrides.py keeps it
    price = price_of(body, packaged_modes(s.meter.packaged, body.model.strip(), provider))
    effective = effective_from(body.effective_from)
    row = await admin.add_override(
        s.db,
        model=body.model,
        provider=body.provider,
        price=price,
        effective_from=effective,
        created_by=p.user_id,
    )
    await s.meter.reload_prices()
    out = override_json(row)
    _audit(
        request,
        "price_override_created",
        p,
        None,
        **{k: v for k, v in out.items() if k not in ("created_at", "created_by", "in_effect")},
    )
    return out


@router.delete("/pricing/{override_id}")
async def delete_pricing(
    override_id: str, request: Request, p: Annotated[Principal, Depends(PRICING)]
) -> dict[str, Any]:
    missing = NotFound(f"No price override with id {override_id!r}.", code="override_not_found")
    if not override_id.isdigit() or len(override_id) > 18:
        raise missing
    s = services_of(request)
    row = await admin.delete_override(s.db, int(override_id))
    if row is None:
        raise missing
    await s.meter.reload_prices()
    gone = override_json(row)
    _audit(
        request,
        "price_override_deleted",
        p,
        None,
        **{k: v for k, v in gone.items() if k not in ("created_at", "in_effect")},
    )
    return {"id": row["id"], "object": "price_override", "deleted": True}
