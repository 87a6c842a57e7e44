"""A user's own API keys: `POST/GET /user/api-keys`, `PATCH/DELETE /user/api-keys/{id}`, and
(for roles with `audit:read`) `GET /user/audit-logs`.

The caller authenticates with one of its keys. A user may lower a key's `rpm_limit`, never
raise it above the key's ceiling (the plan's, or what an administrator granted the key with
`PATCH /admin/api-keys/{id}`): a higher value is a 400. The full secret is returned only when it is
created (POST, or PATCH with `"rotate": true`); listings show the prefix and last four
characters. Another user's key id is a 404, exactly like an unknown one. Every change is an audit
event and invalidates the key in every worker's auth cache before the response is sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gatewayz.accounts import api_keys
from gatewayz.api.access import request_ip, require_permission
from gatewayz.api.deps import allowed, services_of
from gatewayz.canonical.key_format import ENVS
from gatewayz.errors import InvalidRequest, NotFound
from gatewayz.observability.audit import list_events
from gatewayz.ratelimit.limits import MAX_RPM, USER_RPM, rpm_ceiling
from gatewayz.routing.detect import check_slugs, parse_override
from gatewayz.security.auth import Principal
from gatewayz.security.restrictions import normalize_domain_allowlist, normalize_ip_allowlist
from gatewayz.storage.query_cache import KEYS

router = APIRouter(prefix="/user", tags=["users"])


class KeyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ip_allowlist: list[str] | None = None
    domain_allowlist: list[str] | None = None
    rpm_limit: int | None = Field(default=None, ge=1, le=MAX_RPM)
    expires_at: datetime | None = None
    # Defaults of the request field `provider` (order/only/ignore/allow_fallbacks/sort/...).
    provider_preferences: dict[str, Any] | None = None
    # Defaults of the request field `cache` (ttl/no_store/no_cache/nondeterministic/semantic).
    cache_policy: dict[str, Any] | None = None


class KeyCreate(KeyFields):
    name: str = Field(min_length=1, max_length=100)
    environment: str | None = None


class KeyUpdate(KeyFields):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    rotate: bool = False


def _check_expiry(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value <= datetime.now(UTC):
        raise InvalidRequest("'expires_at' must be in the future.", param="expires_at")
    return value


def _check_rpm(s: Any, p: Principal, rpm: int | None, limits: Any) -> None:
    """A user's own requests per minute only lower the key's ceiling; raising is an
    administrator's action."""
    ceiling = rpm_ceiling(s.limiter.plans, p.plan, limits)
    if rpm is None or rpm <= ceiling:
        return
    granted = isinstance(limits, dict) and limits.get("rpm") is not None
    whose = (
        "the limit an administrator set for this key"
        if granted
        else f"the limit of your plan ({s.limiter.plans.tier(p.plan).name})"
    )
    raise InvalidRequest(
        f"'rpm_limit' may not exceed {ceiling} requests per minute, {whose}; only an "
        "administrator can raise it.",
        param="rpm_limit",
    )


def _allowlists(body: KeyFields, fields: set[str]) -> dict[str, list[str] | None]:
    """Validated, normalised allowlists among `fields` (an empty list clears, like null)."""
    out: dict[str, list[str] | None] = {}
    for name, normalize in (
        ("ip_allowlist", normalize_ip_allowlist),
        ("domain_allowlist", normalize_domain_allowlist),
    ):
        if name in fields:
            value = getattr(body, name)
            try:
                out[name] = (normalize(value) or None) if value is not None else None
            except ValueError as exc:
                raise InvalidRequest(str(exc), param=name) from None
    return out


def _preferences(s: Any, value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validated like the request field `provider` (an object only; {} or null clears)."""
    if not value:
        return None
    try:
        override = parse_override(value, "key field `provider_preferences`")
        assert override is not None
        check_slugs(override, s.registry.providers)
    except InvalidRequest as exc:
        message = exc.message.replace("'provider'", "'provider_preferences'", 1)
        raise InvalidRequest(message, param="provider_preferences") from None
    return value


def _cache_policy(s: Any, value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validated like the request field `cache` ({} or null clears)."""
    if not value:
        return None
    s.response_cache.check_policy(value, "cache_policy")
    return value


def _public(row: dict[str, Any], secret: str | None = None) -> dict[str, Any]:
    limits = row.get("limits") or {}
    out: dict[str, Any] = {"id": row["id"]}
    if secret is not None:
        out["api_key"] = secret
    expires, created = row.get("expires_at"), row.get("created_at")
    out.update(
        name=row["name"],
        environment=row["env"],
        prefix=row["prefix"],
        last_four=row["last_four"],
        ip_allowlist=row.get("ip_allowlist") or [],
        domain_allowlist=row.get("domain_allowlist") or [],
        rpm_limit=limits.get(USER_RPM),
        provider_preferences=row.get("provider_preferences"),
        cache_policy=row.get("cache_policy"),
        expires_at=expires.isoformat() if expires else None,
        created_at=created.isoformat() if created else None,
        is_primary=bool(row.get("is_primary")),
        last_used_at=row["last_used_at"].isoformat() if row.get("last_used_at") else None,
    )
    return out


def _audit(request: Request, event: str, p: Principal, key_id: str, detail: dict[str, Any]) -> None:
    services_of(request).audit.event(
        event,
        user_id=p.user_id,
        api_key_id=key_id,
        ip=request_ip(request.scope),
        path=request.url.path,
        detail={"by_key": p.api_key_id, **detail},
    )


@router.post("/api-keys", status_code=201)
async def create_key(
    body: KeyCreate, request: Request, p: Annotated[Principal, Depends(allowed("keys:write"))]
) -> JSONResponse:
    s = services_of(request)
    env = body.environment or s.settings.env
    if env not in ENVS:
        raise InvalidRequest(
            f"'environment' must be one of {', '.join(ENVS)}; got {env!r}.", param="environment"
        )
    if env != s.settings.env:
        require_permission(s, request.scope, p, "keys:environments")
    lists = _allowlists(body, {"ip_allowlist", "domain_allowlist"})
    expires = _check_expiry(body.expires_at)
    _check_rpm(s, p, body.rpm_limit, None)
    row, secret = await api_keys.issue_key(
        s.db,
        s.keyring,
        p.user_id,
        env,
        body.name,
        ip_allowlist=lists["ip_allowlist"],
        domain_allowlist=lists["domain_allowlist"],
        limits={USER_RPM: body.rpm_limit} if body.rpm_limit is not None else None,
        expires_at=expires,
        provider_preferences=_preferences(s, body.provider_preferences),
        cache_policy=_cache_policy(s, body.cache_policy),
    )
    await s.query_cache.invalidate(KEYS, p.user_id)
    _audit(request, "key_created", p, row["id"], {"name": row["name"], "environment": env})
    return JSONResponse(_public(row, secret), status_code=201)


@router.get("/api-keys")
async def list_keys(
    request: Request, p: Annotated[Principal, Depends(allowed("keys:read"))]
) -> dict[str, Any]:
    s = services_of(request)

    async def load() -> list[dict[str, Any]]:
        return [_public(r) for r in await api_keys.user_keys(s.db, p.user_id)]

    return {"object": "list", "data": await s.query_cache.get(KEYS, p.user_id, load)}


async def _own_key(request: Request, p: Principal, key_id: str) -> dict[str, Any]:
    row = await api_keys.user_key(services_of(request).db, p.user_id, key_id)
    if row is None:
        raise NotFound(f"No API key with id {key_id!r}.", code="api_key_not_found")
    return row


@router.patch("/api-keys/{key_id}")
async def update_key(
    key_id: str,
    body: KeyUpdate,
    request: Request,
    p: Annotated[Principal, Depends(allowed("keys:write"))],
) -> dict[str, Any]:
    s = services_of(request)
    row = await _own_key(request, p, key_id)
    fields = set(body.model_fields_set) - {"rotate"}
    values: dict[str, Any] = dict(_allowlists(body, fields))
    if "name" in fields:
        if body.name is None:
            raise InvalidRequest("'name' cannot be null.", param="name")
        values["name"] = body.name
    if "expires_at" in fields:
        values["expires_at"] = _check_expiry(body.expires_at)
    if "provider_preferences" in fields:
        values["provider_preferences"] = _preferences(s, body.provider_preferences)
    if "cache_policy" in fields:
        values["cache_policy"] = _cache_policy(s, body.cache_policy)
    if "rpm_limit" in fields:
        _check_rpm(s, p, body.rpm_limit, row.get("limits"))
        limits = {k: v for k, v in (row.get("limits") or {}).items() if k != USER_RPM}
        if body.rpm_limit is not None:
            limits[USER_RPM] = body.rpm_limit
        values["limits"] = limits or None
    fresh, secret = await api_keys.update_user_key(
        s.db, s.keyring, p.user_id, key_id, values, rotate_env=row["env"] if body.rotate else None
    )
    if fresh is None:  # revoked by a concurrent request
        raise NotFound(f"No API key with id {key_id!r}.", code="api_key_not_found")
    await s.auth_sync.publish(row["key_hash"])
    await s.query_cache.invalidate(KEYS, p.user_id)
    if values:
        _audit(request, "key_updated", p, key_id, {"fields": sorted(values)})
    if body.rotate:
        _audit(request, "key_rotated", p, key_id, {"name": fresh["name"]})
    return _public(fresh, secret)


@router.delete("/api-keys/{key_id}")
async def revoke_key(
    key_id: str, request: Request, p: Annotated[Principal, Depends(allowed("keys:write"))]
) -> dict[str, Any]:
    s = services_of(request)
    row = await _own_key(request, p, key_id)
    await api_keys.revoke_key(s.db, key_id)
    await s.auth_sync.publish(row["key_hash"])
    await s.query_cache.invalidate(KEYS, p.user_id)
    _audit(request, "key_revoked", p, key_id, {"name": row["name"]})
    return {"id": key_id, "object": "api_key", "deleted": True}


@router.get("/audit-logs")
async def own_audit_logs(
    request: Request,
    p: Annotated[Principal, Depends(allowed("audit:read"))],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    rows = await list_events(services_of(request).db, user_id=p.user_id, limit=limit)
    return {"object": "list", "data": [event_json(r) for r in rows]}


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "created_at": row["created_at"].isoformat()}
