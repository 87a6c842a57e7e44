"""Admin routes (`/admin/*`): every one requires the `admin:access` permission plus its own; a
caller without them gets a 403 in the OpenAI error shape and the audit event
`admin_access_denied` (CM-13.8). Users list and search (`?q=`: part of an e-mail, or an id), role
and plan changes, audit logs, and a key's rate limits (an administrator may raise them above the
plan's; users may only lower theirs)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from gatewayz.accounts import admin, api_keys
from gatewayz.api.access import request_ip
from gatewayz.api.deps import allowed, services_of
from gatewayz.api.keys_routes import event_json
from gatewayz.billing.plans import load_plans
from gatewayz.errors import InvalidRequest, NotFound
from gatewayz.money import usd_text as usd
from gatewayz.observability.audit import list_events
from gatewayz.ratelimit.limits import (
    MAX_RPM,
    MAX_TOKENS,
    OVERRIDE_FIELDS,
    USER_RPM,
    effective_limits,
)
from gatewayz.security.auth import Principal
from gatewayz.storage.query_cache import KEYS
from gatewayz.storage.tables import ROLES

router = APIRouter(prefix="/admin", tags=["admin"])

MAX_PAGE = 200


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str


class PlanChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str


class LimitValues(BaseModel):
    """A key's limits; a field given as null removes that grant (the plan's applies again)."""

    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(default=None, ge=0, le=MAX_RPM)
    tokens_per_day: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    tokens_per_month: int | None = Field(default=None, ge=0, le=MAX_TOKENS)


class KeyLimitsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limits: LimitValues


def _user(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "email": row["email"],
        "role": row["role"],
        "plan": row["plan"],
        "tier": row.get("tier"),
        "is_active": row["is_active"],
        "created_at": row["created_at"].isoformat(),
    }


@router.get("/users")
async def list_users(
    request: Request,
    _p: Annotated[Principal, Depends(allowed("admin:access", "admin:users:read"))],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    q: Annotated[str | None, Query(max_length=320)] = None,
) -> dict[str, Any]:
    """A page of users, oldest first; with `q`, those whose e-mail contains it or whose id it
    is."""
    db = services_of(request).db
    rows, total = await admin.list_users(
        db, limit=limit, offset=offset, q=(q.strip() or None) if q else None
    )
    return {
        "object": "list",
        "data": [_user(r) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
        "has_more": offset + len(rows) < total,
    }


@router.post("/users/{user_id}/role")
async def change_role(
    user_id: str,
    body: RoleChange,
    request: Request,
    p: Annotated[Principal, Depends(allowed("admin:access", "admin:users:write"))],
) -> dict[str, Any]:
    s = services_of(request)
    if body.role not in ROLES:
        raise InvalidRequest(
            f"'role' must be one of {', '.join(ROLES)}; got {body.role!r}.", param="role"
        )
    previous = await admin.change_role(s.db, user_id, body.role)
    if previous is None:
        raise NotFound(f"No user with id {user_id!r}.", code="user_not_found")
    # Cached principals carry the role: every worker re-reads its keys.
    await s.auth_sync.publish(None)
    _audit_change(request, p, "role_changed", user_id, previous, body.role)
    return {"id": user_id, "role": body.role, "previous_role": previous}


@router.post("/users/{user_id}/plan")
async def change_plan(
    user_id: str,
    body: PlanChange,
    request: Request,
    p: Annotated[Principal, Depends(allowed("admin:access", "admin:users:write"))],
) -> dict[str, Any]:
    """Put a user on a plan (as `gatewayz users set-plan`): its limits, and its monthly
    allowance from now on; purchased credits stay."""
    s = services_of(request)
    tiers = load_plans().tiers
    if body.plan not in tiers:
        raise InvalidRequest(
            f"'plan' must be one of {', '.join(tiers)}; got {body.plan[:64]!r}.", param="plan"
        )
    change = await admin.change_plan(s.db, user_id, body.plan)
    if change is None:
        raise NotFound(f"No user with id {user_id!r}.", code="user_not_found")
    if change.changed:
        # Cached principals carry the plan: every worker re-reads its keys.
        await s.auth_sync.publish(None)
        _audit_change(request, p, "plan_changed", user_id, change.previous, body.plan)
    return {
        "id": user_id,
        "plan": body.plan,
        "previous_plan": change.previous,
        "changed": change.changed,
        "balance": usd(change.balance.total),
        "subscription_allowance": usd(change.balance.allowance),
        "purchased_credits": usd(change.balance.purchased),
    }


@router.get("/audit-logs")
async def audit_logs(
    request: Request,
    _p: Annotated[Principal, Depends(allowed("admin:access", "audit:read"))],
    event: str | None = None,
    user_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    rows = await list_events(services_of(request).db, user_id=user_id, event=event, limit=limit)
    return {"object": "list", "data": [event_json(r) for r in rows]}


def _grants(limits: Any) -> dict[str, int] | None:
    """An administrator's part of a key's stored limits."""
    found = {f: limits[f] for f in OVERRIDE_FIELDS if f in (limits or {})}
    return found or None


@router.patch("/api-keys/{key_id}")
async def set_key_limits(
    key_id: str,
    body: KeyLimitsChange,
    request: Request,
    p: Annotated[Principal, Depends(allowed("admin:access", "admin:keys:write"))],
) -> dict[str, Any]:
    """Set (or, with null, remove) a key's rate limits, above its plan's if need be. The key's
    owner may still lower its requests per minute below them (`limits.user_rpm`)."""
    s = services_of(request)
    changes = {f: getattr(body.limits, f) for f in body.limits.model_fields_set}
    if not changes:
        raise InvalidRequest(
            f"'limits' must set at least one of {', '.join(OVERRIDE_FIELDS)}.", param="limits"
        )
    change = await api_keys.set_key_limits(s.db, key_id, changes)
    if change is None:
        raise NotFound(f"No API key with id {key_id!r}.", code="api_key_not_found")
    row, previous, limits = change.key, change.previous, change.limits
    # Cached principals carry the limits: every worker re-reads this key.
    await s.auth_sync.publish(row["key_hash"])
    await s.query_cache.invalidate(KEYS, row["user_id"])
    s.audit.event(
        "key_limits_set",
        severity="warning",
        user_id=row["user_id"],
        api_key_id=key_id,
        ip=request_ip(request.scope),
        path=request.url.path,
        detail={
            "by_user": p.user_id,
            "by_key": p.api_key_id,
            "from": _grants(previous),
            "to": _grants(limits),
        },
    )
    effective = effective_limits(s.limiter.plans, change.owner_plan, limits)
    return {
        "id": key_id,
        "object": "api_key",
        "user_id": row["user_id"],
        "limits": _grants(limits) or {},
        "rpm_limit": limits.get(USER_RPM),
        "effective_limits": {f: getattr(effective, f) for f in OVERRIDE_FIELDS},
    }


def _audit_change(
    request: Request, p: Principal, kind: str, user_id: str, previous: str, now: str
) -> None:
    """An administrator's change to a user (role, plan), as a warning-level audit event."""
    services_of(request).audit.event(
        kind,
        severity="warning",
        user_id=user_id,
        api_key_id=p.api_key_id,
        ip=request_ip(request.scope),
        path=request.url.path,
        detail={"by_user": p.user_id, "from": previous, "to": now},
    )
