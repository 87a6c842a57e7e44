"""GET /health: always 200, with per-subsystem detail; degradation is in the body.
GET /ready: for orchestrators — 503 while the database cannot be reached (a Redis outage is not
one: the gateway keeps serving on its in-memory fallback).
The public /status* routes are in status_routes.py."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gatewayz import __version__
from gatewayz.money import nanos_to_usd

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    services = request.app.state.services
    subsystems: dict[str, Any] = {"database": await _database(services)}
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
    subsystems["billing"] = _billing(services.meter)
    degraded = any(v.get("status") != "ok" or v.get("degraded") for v in subsystems.values())
    return {
        "status": "degraded" if degraded else "operational",
        "version": __version__,
        "timestamp": datetime.now(UTC).isoformat(),
        "subsystems": subsystems,
    }


@router.get("/ready", response_model=None)
async def ready(request: Request) -> JSONResponse:
    database = await _database(request.app.state.services)
    up = database["status"] == "ok"
    return JSONResponse({"ready": up, "database": database}, status_code=200 if up else 503)


async def _database(services: Any) -> dict[str, Any]:
    t = time.perf_counter()
    try:
        await services.db.ping()
    except Exception as exc:
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok", "latency_ms": _ms(t)}


def _billing(meter: Any) -> dict[str, Any]:
    """Settles waiting in the spool for the database (degraded while any wait), and charges
    that exceeded their hold since start."""
    pending = meter.spool.count()
    return {
        "status": "ok",
        "degraded": pending > 0,
        "settles_pending": pending,
        "charges_over_hold": meter.metrics.over_hold,
        "over_hold_usd": str(nanos_to_usd(meter.metrics.over_hold_nanos)),
    }


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 3)
