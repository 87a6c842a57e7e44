"""The access check every authenticated route runs: authenticate the key, then enforce its
restrictions (IP and domain allowlists) and, where a route asks, a role permission. Refusals are
audit events: `auth_failed` (401; the IP, never the key), `restriction_violation` (403),
`admin_access_denied` (403 on an /admin route) and `permission_denied` (403 elsewhere).

The key is the one the request context read (`context.RequestContext.key`); it is
authenticated once per request (`authenticated`), whoever asks first — the IP layer, to exempt
requests with a valid key, or the route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import Scope

from gatewayz.api.asgi import header
from gatewayz.context import RequestContext
from gatewayz.errors import GatewayError, PermissionDenied, Unauthorized
from gatewayz.security import restrictions
from gatewayz.security.auth import Authenticator, Principal
from gatewayz.security.roles import load_roles

if TYPE_CHECKING:
    from gatewayz.services import Services


def request_ip(scope: Scope) -> str:
    """The client's IP, as the request context resolved it."""
    ctx: RequestContext = scope["gw"]
    return ctx.ip


async def authenticated(ctx: RequestContext, auth: Authenticator) -> Principal:
    """The principal of the request's key, authenticated once per request (the outcome, a
    principal or the `Unauthorized` it raised, is kept on the context)."""
    if ctx.auth is None:
        try:
            ctx.auth = await auth.authenticate(ctx.key)
        except GatewayError as err:
            ctx.auth = err
    if isinstance(ctx.auth, GatewayError):
        raise ctx.auth
    principal: Principal = ctx.auth
    return principal


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


async def authorize(services: Services, scope: Scope, permission: str | None = None) -> Principal:
    """The principal of the request's key if it may make this request (and its role holds
    `permission`, when given); `Unauthorized` / `PermissionDenied` (each audited) otherwise."""
    ctx: RequestContext = scope["gw"]
    try:
        principal = await authenticated(ctx, services.auth)
    except Unauthorized as err:
        services.audit.event(
            "auth_failed",
            severity="warning",
            ip=ctx.ip,
            path=scope.get("path"),
            detail={"reason": err.message, "key_presented": bool(ctx.key)},
        )
        raise
    record = principal.record
    ip_list, domain_list = record.get("ip_allowlist"), record.get("domain_allowlist")
    if ip_list or domain_list:
        ip = ctx.ip
        try:
            restrictions.check(
                ip,
                _text(header(scope, b"origin")),
                _text(header(scope, b"referer")),
                ip_list,
                domain_list,
            )
        except restrictions.Violation as v:
            services.audit.event(
                "restriction_violation",
                severity="warning",
                user_id=principal.user_id,
                api_key_id=principal.api_key_id,
                ip=ip,
                path=scope.get("path"),
                detail={"restriction": v.kind, **v.detail},
            )
            raise PermissionDenied(v.message, code=f"{v.kind}_not_allowed") from None
    if permission is not None:
        require_permission(services, scope, principal, permission)
    return principal


def require_permission(
    services: Services, scope: Scope, principal: Principal, permission: str
) -> None:
    """`PermissionDenied` unless the principal's role holds `permission`. A refusal is the
    audit event `admin_access_denied` on an /admin route, `permission_denied` elsewhere."""
    if load_roles().allows(principal.role, permission):
        return
    path = scope.get("path") or ""
    admin = path.startswith("/admin")
    services.audit.event(
        "admin_access_denied" if admin else "permission_denied",
        severity="critical" if admin else "warning",
        user_id=principal.user_id,
        api_key_id=principal.api_key_id,
        ip=request_ip(scope),
        path=path,
        detail={"role": principal.role, "permission": permission, "method": scope.get("method")},
    )
    raise PermissionDenied(
        f"Your role ({principal.role}) does not have the '{permission}' permission.",
        code="insufficient_permissions",
    )
