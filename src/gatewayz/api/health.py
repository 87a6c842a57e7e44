"""GET /health: always 200, with per-subsystem detail; degradation is in the body."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from gatewayz import __version__

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    services = request.app.state.services
    subsystems: dict[str, Any] = {}
    t = time.perf_counter()
    try:
        async with services.db.begin() as conn:
            await conn.execute(text("SELECT 1"))
        subsystems["database"] = {"status": "ok", "latency_ms": _ms(t)}
    except Exception as exc:
        subsystems["database"] = {"status": "down", "error": type(exc).__name__}
    t = time.perf_counter()
    try:
        ok = await services.state.ping()
        subsystems["state"] = {
            "status": "ok" if ok else "down",
            "backend": services.state.name,
            "degraded": bool(getattr(services.state, "degraded", False)),
            "latency_ms": _ms(t),
        }
    except Exception as exc:
        subsystems["state"] = {"status": "down", "error": type(exc).__name__}
    enabled = [p.slug for p in services.registry.enabled]
    subsystems["providers"] = {"status": "ok" if enabled else "down", "served": enabled}
    degraded = any(v.get("status") != "ok" or v.get("degraded") for v in subsystems.values())
    return {
        "status": "degraded" if degraded else "operational",
        "version": __version__,
        "timestamp": datetime.now(UTC).isoformat(),
        "subsystems": subsystems,
    }


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 3)
