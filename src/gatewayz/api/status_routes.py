"""Public status data (SPEC §11): no key needed (the per-IP limit applies).

GET /status: the overall status (operational; degraded while any incident is open;
major_outage while every served provider has a Critical incident open), per-provider status and
uptime over 24h/7d/30d, and the open incidents. `updated_at` is this worker's last incident
check (now, before the first one).
GET /status/incidents: `?status=open|resolved`, `?limit=` (1–200, default 50), newest first.
GET /status/providers, /status/models: passive health — what this worker's requests saw of each
provider (and provider × model) over the window: attempts, errors, success rate, latency
p50/p95, a status (operational, degraded at ≥ 10 % errors, down at ≥ 50 %) — and the uptime
from incidents (null while the database is unreachable).

Uptime is computed from the incidents table (reliability/incident_store.py): a provider's excludes
its Critical periods, a model's also its own High periods.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from gatewayz.errors import ServiceUnavailable
from gatewayz.reliability.incident_store import (
    PROVIDER_WIDE,
    Incident,
    Severity,
    list_incidents,
    outage_spans,
    recent_incidents,
    uptime,
)
from gatewayz.storage.errors import DB_ERRORS
from gatewayz.storage.tables import utcnow

log = logging.getLogger("gatewayz.status")

router = APIRouter(tags=["status"])

MAX_INCIDENTS = 200


async def _recent_or_none(services: Any, now: datetime) -> list[Incident] | None:
    try:
        return await recent_incidents(services.db, now)
    except DB_ERRORS:
        log.warning("status: incidents unreadable; uptime omitted", exc_info=True)
        return None


def _unavailable(exc: Exception) -> ServiceUnavailable:
    log.warning("status: incidents unreadable: %s", exc)
    return ServiceUnavailable("Status data is unavailable right now (database unreachable).")


def _provider_status(provider: str, open_ones: list[Incident]) -> str:
    mine = [i for i in open_ones if i.provider == provider]
    if any(i.model == PROVIDER_WIDE and i.severity == Severity.CRITICAL for i in mine):
        return "down"
    return "degraded" if mine else "operational"


@router.get("/status")
async def status_page(request: Request) -> dict[str, Any]:
    services = request.app.state.services
    now = utcnow()
    try:
        found = await recent_incidents(services.db, now)
    except DB_ERRORS as exc:
        raise _unavailable(exc) from None
    open_ones = sorted(
        (i for i in found if i.status == "open"), key=lambda i: i.started_at, reverse=True
    )
    served = [p.slug for p in services.registry.enabled]
    names = sorted({*served, *(i.provider for i in found)})
    providers = [
        {
            "provider": name,
            "status": _provider_status(name, open_ones),
            "uptime": uptime(outage_spans(found, name, None, now), now),
        }
        for name in names
    ]
    by_name = {p["provider"]: p["status"] for p in providers}
    if served and all(by_name[name] == "down" for name in served):
        overall = "major_outage"
    else:
        overall = "degraded" if open_ones else "operational"
    checked = services.incidents.last_check_at
    return {
        "status": overall,
        "updated_at": (checked or now).isoformat(),
        "providers": providers,
        "incidents": [i.public() for i in open_ones],
    }


@router.get("/status/incidents")
async def status_incidents(
    request: Request,
    status: Annotated[Literal["open", "resolved"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_INCIDENTS)] = 50,
) -> dict[str, Any]:
    services = request.app.state.services
    try:
        found = await list_incidents(services.db, status, limit)
    except DB_ERRORS as exc:
        raise _unavailable(exc) from None
    return {"object": "list", "data": [i.public() for i in found]}


@router.get("/status/providers")
async def status_providers(request: Request) -> dict[str, Any]:
    return await _passive(request, by_model=False)


@router.get("/status/models")
async def status_models(request: Request) -> dict[str, Any]:
    return await _passive(request, by_model=True)


async def _passive(request: Request, *, by_model: bool) -> dict[str, Any]:
    """This worker's passive health rows, each with its uptime (None without the database)."""
    services = request.app.state.services
    health = services.pipeline.health
    now = utcnow()
    found = await _recent_or_none(services, now)
    rows = []
    for row in health.models() if by_model else health.providers():
        model = row["model"] if by_model else None
        spans = [] if found is None else outage_spans(found, row["provider"], model, now)
        rows.append({**row, "uptime": None if found is None else uptime(spans, now)})
    return {"object": "list", "window_s": health.window_s, "data": rows}
