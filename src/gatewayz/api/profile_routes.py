"""`GET /user/me`: who the calling key belongs to — the user's id, e-mail, role, plan, and the
permissions the role holds (security/roles.toml), so that a client (the web console) can show
what the caller may do without trying and being refused (which would be audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from gatewayz.api.billing_routes import iso
from gatewayz.api.deps import caller, services_of
from gatewayz.billing import account
from gatewayz.billing.plans import load_plans
from gatewayz.security.auth import Principal
from gatewayz.security.roles import load_roles

router = APIRouter(prefix="/user", tags=["users"])


@router.get("/me")
async def me(request: Request, p: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    """The caller: user, role and its permissions, plan (and whether it is the trial), and the
    id of the key it authenticated with."""
    user = await account.current_user(services_of(request).db, p.user_id)
    return {
        "object": "user",
        "id": p.user_id,
        "email": user["email"],
        "role": p.role,
        "permissions": sorted(load_roles().of(p.role)),
        "plan": user["plan"],
        "is_trial": user["plan"] == load_plans().trial.plan,
        "trial_ends_at": iso(user.get("trial_ends_at")),
        "created_at": iso(user.get("created_at")),
        "api_key_id": p.api_key_id,
        "environment": p.env,
    }
