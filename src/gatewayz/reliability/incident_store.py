"""Incidents as the gateway reads them (rows of `storage.incidents`) and uptime from them.

An incident's subject is a provider (stored with model '') or a provider × model; its
`details["history"]` lists each severity period (`at`, `severity`, figures), oldest first.

Uptime over a window is 1 − (time covered by the subject's outage spans) / window: a provider's
spans are the Critical periods of its provider-wide incidents; a model's are the High periods of
its own incidents together with its provider's Critical periods, overlaps merged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from gatewayz.storage import incidents
from gatewayz.storage.db import Database, DbConnection

log = logging.getLogger("gatewayz.reliability")

PROVIDER_WIDE = ""  # the stored `model` of a provider-wide incident
# The public uptime windows (`/status`, `/status/providers`, `/status/models`).
UPTIME_WINDOWS: dict[str, timedelta] = {
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    provider: str
    model: str
    severity: str
    status: str
    title: str
    started_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: Any) -> Incident:
        """An incident of a stored row (a mapping, or a SQLAlchemy row)."""
        m = getattr(row, "_mapping", row)
        return cls(**{**m, "details": dict(m["details"] or {})})

    def history(self) -> list[tuple[datetime, str]]:
        """(since, severity) of each period, oldest first."""
        out = []
        for entry in self.details.get("history", []):
            try:
                out.append((datetime.fromisoformat(entry["at"]), str(entry["severity"])))
            except (KeyError, TypeError, ValueError):
                log.error("incident %s: unreadable history entry %r", self.id, entry)
        return out or [(self.started_at, self.severity)]

    def public(self) -> dict[str, Any]:
        """The API shape: `model` is null for a provider-wide incident."""
        return {
            "id": self.id,
            "provider": self.provider,
            "model": self.model or None,
            "severity": self.severity,
            "status": self.status,
            "title": self.title,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "details": self.details,
        }


async def open_incidents(conn: DbConnection) -> list[Incident]:
    return [Incident.from_row(r) for r in await incidents.open_incidents(conn)]


async def list_incidents(db: Database, status: str | None, limit: int) -> list[Incident]:
    """Newest first; only `status` (open | resolved) when given."""
    async with db.begin() as conn:
        rows = await incidents.list_incidents(conn, status, limit)
    return [Incident.from_row(r) for r in rows]


async def recent_incidents(db: Database, now: datetime) -> list[Incident]:
    """Every incident open at some moment in the longest uptime window before `now`."""
    async with db.begin() as conn:
        rows = await incidents.incidents_since(conn, now - max(UPTIME_WINDOWS.values()))
    return [Incident.from_row(r) for r in rows]


# ---- uptime ------------------------------------------------------------------------------
Span = tuple[datetime, datetime]


def severity_spans(incident: Incident, severity: str, now: datetime) -> list[Span]:
    """The periods during which `incident` had `severity` (an open one: until `now`)."""
    history = incident.history()
    end_of_incident = incident.resolved_at or now
    spans = []
    for i, (since, level) in enumerate(history):
        until = history[i + 1][0] if i + 1 < len(history) else end_of_incident
        if level == severity and until > since:
            spans.append((since, until))
    return spans


def covered_s(spans: Iterable[Span], start: datetime, end: datetime) -> float:
    """Seconds of [start, end) covered by the union of `spans`."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in spans if b > start and a < end)
    total = 0.0
    current: Span | None = None
    for a, b in clipped:
        if current is not None and a <= current[1]:
            current = (current[0], max(current[1], b))
            continue
        if current is not None:
            total += (current[1] - current[0]).total_seconds()
        current = (a, b)
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return total


def outage_spans(
    found: Iterable[Incident], provider: str, model: str | None, now: datetime
) -> list[Span]:
    """A provider's Critical periods; for a model, also its own High periods."""
    spans: list[Span] = []
    for incident in found:
        if incident.provider != provider:
            continue
        if incident.model == PROVIDER_WIDE:
            spans += severity_spans(incident, Severity.CRITICAL, now)
        elif model and incident.model == model:
            spans += severity_spans(incident, Severity.HIGH, now)
    return spans


def uptime(spans: list[Span], now: datetime) -> dict[str, float]:
    """1 − covered / window for each public window, rounded to 6 places."""
    return {
        name: round(1 - covered_s(spans, now - window, now) / window.total_seconds(), 6)
        for name, window in UPTIME_WINDOWS.items()
    }
