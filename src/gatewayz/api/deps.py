"""FastAPI dependencies shared by the management routes (/user/*, /admin/*): the caller's
principal, authenticated by its API key (Bearer or x-api-key) with the key's restrictions
enforced, and permission guards. Refusals are audited (see `api.access`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import Request

from gatewayz.api.access import authorize, require_permission
from gatewayz.security.auth import Principal

if TYPE_CHECKING:
    from gatewayz.services import Services


def services_of(request: Request) -> Services:
    s: Services = request.app.state.services
    return s


async def caller(request: Request) -> Principal:
    return await authorize(services_of(request), request.scope)


def allowed(*permissions: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller, if its role holds every one of `permissions` (else 403)."""

    async def guard(request: Request) -> Principal:
        principal = await caller(request)
        for permission in permissions:
            require_permission(services_of(request), request.scope, principal, permission)
        return principal

    return guard
