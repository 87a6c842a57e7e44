"""What the admin user routes do (`api/admin_routes.py`): list and search users, change a user's
role or plan. Each function is one transaction on the database it is given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gatewayz.billing import ledger
from gatewayz.billing.ledger import Balance
from gatewayz.billing.plans import load_plans
from gatewayz.errors import InvalidRequest
from gatewayz.storage import users
from gatewayz.storage.db import Database


async def list_users(
    db: Database, *, limit: int, offset: int, q: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """A page of users (oldest first), of those matching `q` when given, and their count."""
    async with db.begin() as conn:
        return await users.list_users(conn, limit=limit, offset=offset, q=q)


async def change_role(db: Database, user_id: str, role: str) -> str | None:
    """Set the user's role; the previous one, or None for an unknown user."""
    async with db.begin() as conn:
        return await users.set_user_role(conn, user_id, role)


@dataclass(frozen=True, slots=True)
class PlanChange:
    previous: str
    changed: bool
    balance: Balance


async def change_plan(db: Database, user_id: str, plan: str) -> PlanChange | None:
    """Put the user on `plan` (a tier of billing/plans.toml), as `gatewayz users set-plan` does:
    the new plan's monthly allowance starts now, purchased credits stay. None for an unknown
    user; a 400 when a Stripe subscription sets the user's plan."""
    tier = load_plans().tiers[plan]
    async with db.begin() as conn:
        user = await users.get_user(conn, user_id)
        if user is None:
            return None
        changed = user["plan"] != plan
        if changed:
            if user.get("stripe_subscription_id"):
                raise InvalidRequest(
                    f"This user pays for plan {user['plan']} by a Stripe subscription, whose "
                    "events set the plan: change or cancel it in Stripe.",
                    param="plan",
                )
            await ledger.change_plan(conn, user_id, plan, allowance_nanos=tier.allowance_nanos)
        return PlanChange(user["plan"], changed, await ledger.balance(conn, user_id))
