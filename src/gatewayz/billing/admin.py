"""What the admin money routes do (`api/admin_billing_routes.py`): grant or adjust a user's
credits through the ledger, and manage price overrides. Each function is one transaction on the
database it is given; the caller has checked the request's shape and permissions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from gatewayz.billing import ledger
from gatewayz.billing.pricing import Price
from gatewayz.errors import GatewayError, InvalidRequest, NotFound
from gatewayz.money import usd_text as usd
from gatewayz.storage import price_overrides, users
from gatewayz.storage.db import Database
from gatewayz.storage.ledger import statements


class Conflict(GatewayError):
    status, type, code = 409, "invalid_request_error", "conflict"


@dataclass(frozen=True, slots=True)
class CreditsChanged:
    user_id: str
    applied: bool  # False: the idempotency key was used already, nothing changed
    balance: ledger.Balance


async def change_credits(
    db: Database,
    *,
    user_id: str | None,
    email: str | None,
    amount: Decimal,
    type_: str,
    idempotency_key: str | None,
    description: str | None,
) -> CreditsChanged:
    """Grant (or, with a negative `adjustment`, remove) purchased credits of the user with that
    id or e-mail; the balance after. 404 for no such user, 400 when an adjustment would take
    the balance below zero, 409 when the idempotency key was used for another user."""
    async with db.begin() as conn:
        if user_id is not None:
            user = await users.get_user(conn, user_id)
        else:
            user = await users.get_user_by_email(conn, email or "")
        if user is None:
            who = user_id if user_id is not None else email
            raise NotFound(f"No user {who!r}.", code="user_not_found")
        try:
            applied = await ledger.grant(
                conn,
                user["id"],
                amount,
                type=type_,
                request_id=idempotency_key,
                description=description,
            )
        except ledger.InsufficientCredits:
            raise InvalidRequest(
                f"The adjustment would take the user's balance below zero ({usd(amount)} USD "
                "exceeds their available purchased credits).",
                param="amount_usd",
                code="insufficient_credits",
            ) from None
        if not applied and idempotency_key is not None:
            owner = await statements.request_id_owner(conn, idempotency_key, type_)
            if owner is not None and owner != user["id"]:
                raise Conflict(
                    "This idempotency_key was already used for another user.",
                    param="idempotency_key",
                    code="idempotency_key_reused",
                )
        money = await ledger.balance(conn, user["id"])
    return CreditsChanged(str(user["id"]), applied, money)


async def list_overrides(db: Database) -> list[dict[str, Any]]:
    """Every price override row, oldest first (`storage.price_overrides.list_rows`)."""
    async with db.begin() as conn:
        return await price_overrides.list_rows(conn)


async def add_override(
    db: Database,
    *,
    model: str,
    provider: str | None,
    price: Price,
    effective_from: date | None,
    created_by: str | None,
) -> dict[str, Any]:
    """Store one override; the new row."""
    async with db.begin() as conn:
        return await price_overrides.add(
            conn,
            model=model,
            provider=provider,
            price=price,
            effective_from=effective_from,
            created_by=created_by,
        )


async def delete_override(db: Database, override_id: int) -> dict[str, Any] | None:
    """Remove one override; the row it was, or None when there is no such id."""
    async with db.begin() as conn:
        row = await price_overrides.get(conn, override_id)
        if row is None or not await price_overrides.delete(conn, override_id):
            return None
        return row
