"""Admin routes for the provider circuit breakers (SPEC §5): list them, reset one. Guarded like
every /admin route (`admin:access`, plus `admin:breakers:write` to reset); a reset is audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from gatewayz.api.access import request_ip
from gatewayz.api.deps import allowed, services_of
from gatewayz.errors import NotFound
from gatewayz.security.auth import Principal

router = APIRouter(prefix="/admin/circuit-breakers", tags=["admin"])


@router.get("")
async def list_breakers(
    request: Request,
    _p: Annotated[Principal, Depends(allowed("admin:access"))],
) -> dict[str, Any]:
    """Every breaker that recorded a failure (on any worker) or that this worker has used."""
    data = await services_of(request).breakers.snapshot()
    return {"object": "list", "data": data}


@router.post("/{provider}/reset")
async def reset_breaker(
    provider: str,
    request: Request,
    p: Annotated[Principal, Depends(allowed("admin:access", "admin:breakers:write"))],
    model: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
) -> dict[str, Any]:
    """Close the breaker of `provider` (or of `provider` × `model`) now, failures reset."""
    s = services_of(request)
    if s.registry.get(provider) is None:
        raise NotFound(f"No provider {provider!r}.", code="provider_not_found")
    breakers = s.breakers
    before = await breakers.get(provider, model)
    await breakers.reset(provider, model)
    after = await breakers.get(provider, model)
    s.audit.event(
        "circuit_breaker_reset",
        severity="warning",
        user_id=p.user_id,
        api_key_id=p.api_key_id,
        ip=request_ip(request.scope),
        path=request.url.path,
        detail={
            "provider": provider,
            "model": model,
            "previous_state": before["state"],
            "previous_failures": before["failures"],
        },
    )
    return {**after, "previous_state": before["state"]}
