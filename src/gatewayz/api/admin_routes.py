"""Admin routes (`/admin/*`): every one requires the `admin:access` permission plus its own; a
caller without them gets a 403 in the OpenAI error shape and the audit event
`admin_access_denied` (CM-13.8)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict

from gatewayz.api.deps import allowed, services_of
from gatewayz.api.keys_routes import event_json
from gatewayz.errors import InvalidRequest, NotFound
from gatewayz.security.access import request_ip
from gatewayz.security.auth import Principal
from gatewayz.storage import logs, repo
from gatewayz.storage.tables import ROLES

router = APIRouter(prefix="/admin", tags=["admin"])

MAX_PAGE = 200


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str


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
) -> dict[str, Any]:
    async with services_of(request).db.begin() as conn:
        rows, total = await repo.list_users(conn, limit=limit, offset=offset)
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
    async with s.db.begin() as conn:
        previous = await repo.set_user_role(conn, user_id, body.role)
    if previous is None:
        raise NotFound(f"No user with id {user_id!r}.", code="user_not_found")
    # Cached principals carry the role: every worker re-reads its keys.
    await s.auth_sync.publish(None)
    s.audit.event(
        "role_changed",
        severity="warning",
        user_id=user_id,
        api_key_id=p.api_key_id,
        ip=request_ip(s, request.scope),
        path=request.url.path,
        detail={"by_user": p.user_id, "from": previous, "to": body.role},
    )
    return {"id": user_id, "role": body.role, "previous_role": previous}


@router.get("/audit-logs")
async def audit_logs(
    request: Request,
    _p: Annotated[Principal, Depends(allowed("admin:access", "audit:read"))],
    event: str | None = None,
    user_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    async with services_of(request).db.begin() as conn:
        rows = await logs.list_audit_logs(conn, user_id=user_id, event=event, limit=limit)
    return {"object": "list", "data": [event_json(r) for r in rows]}
