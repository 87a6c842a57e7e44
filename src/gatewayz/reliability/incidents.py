"""Incidents (SPEC §11, CM-11.9): opened, re-graded and resolved automatically.

Every `interval_s` each worker compares what it sees — its passive health window and the shared
circuit breakers — with the open incidents in the database. A subject is a provider (stored
with model '') or a provider × model. Severities:

- critical: a provider is down: its provider breaker is open, or ≥ 50 % of its attempts failed;
- high: a model on a provider is down (its provider × model breaker open, or ≥ 50 % failed)
  while the provider is not;
- medium: a provider is degraded (≥ 10 % failed);
- low: a model is degraded (≥ 10 % failed) while the provider is operational.

A model's incident is opened only when the model is worse off than its provider: the provider's
own incident already covers models in the same state (no High under a down provider, no Low
under a degraded one).

Failure ratios count only with at least `MIN_SAMPLES` attempts in the window (passive_health.py).

Lifecycle. The first worker to see a problem inserts the incident; the partial unique index
(one open incident per subject) turns a concurrent insert by another worker or replica into a
no-op, so only the inserting worker emits `model.degraded` (once per incident). A worker that
sees the same severity again confirms it (`updated_at` = now); a worse one escalates at once; a
milder one de-escalates, and a recovered subject (breaker closed, and this worker saw it
operational: ≥ `MIN_SAMPLES` attempts under 10 % failed, or fewer that all succeeded) is
resolved — but a step down only once no worker confirmed the current severity for half a check
interval, so workers that disagree do not flap. Every severity change is appended to
`details["history"]`. Resolving emits `model.recovered`.

Event data (`model` is null for a provider-wide incident): `model.degraded` {provider, model,
severity, incident_id, success_rate, attempts, started_at}; `model.recovered` {provider, model,
severity, incident_id, started_at, resolved_at, duration_s, resolution: recovered | quiet}.

No recent data. A subject nobody sent traffic to (no attempts in the window, breaker not open:
closed or half-open waiting for a probe) is quiet: its incident is resolved once no worker has
confirmed it for `quiet_s` (resolution "quiet"). A few attempts with some failures but too
few to judge leave the incident as it is.

Rows: storage/incidents.py; reading them and uptime: incident_store.py. Database failures are
logged and never stop the loop.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from gatewayz.background import Periodic
from gatewayz.events import EventBus
from gatewayz.reliability.incident_store import (
    PROVIDER_WIDE,
    Incident,
    Severity,
    open_incidents,
)
from gatewayz.reliability.passive_health import MIN_SAMPLES, PassiveHealth, status_of
from gatewayz.storage import incidents
from gatewayz.storage.db import Database
from gatewayz.storage.ledger.outbox import add_event_async
from gatewayz.storage.tables import utcnow

log = logging.getLogger("gatewayz.reliability")

DEGRADED_EVENT = "model.degraded"
RECOVERED_EVENT = "model.recovered"

# Within one subject: a provider moves between critical and medium, a model between high and low.
_RANK = {Severity.CRITICAL: 2, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.LOW: 1}


class Condition(StrEnum):
    DOWN = "down"
    DEGRADED = "degraded"
    HEALTHY = "healthy"
    INCONCLUSIVE = "inconclusive"  # some failures, too few attempts to judge
    QUIET = "quiet"  # no failures seen and nothing proving it healthy


_LEVEL = {Condition.DOWN: 2, Condition.DEGRADED: 1}


@dataclass(frozen=True, slots=True)
class Observation:
    condition: Condition
    attempts: int = 0
    success_rate: float | None = None
    breaker: str | None = None


_QUIET = Observation(Condition.QUIET)


def observe(figures: Mapping[str, Any] | None, breaker: str | None) -> Observation:
    """One subject's condition from its passive figures (attempts, errors, success_rate) and
    its breaker's state (closed | open | half_open | None)."""
    attempts = int(figures["attempts"]) if figures else 0
    errors = int(figures["errors"]) if figures else 0
    rate = float(figures["success_rate"]) if figures else None

    def seen(condition: Condition) -> Observation:
        return Observation(condition, attempts, rate, breaker)

    if breaker == "open":
        return seen(Condition.DOWN)
    if attempts >= MIN_SAMPLES:
        status = status_of(errors, attempts)
        if status == "down":
            return seen(Condition.DOWN)
        if status == "degraded":
            return seen(Condition.DEGRADED)
    if breaker == "half_open":
        return seen(Condition.INCONCLUSIVE if errors else Condition.QUIET)
    if attempts >= MIN_SAMPLES or (attempts and not errors):
        return seen(Condition.HEALTHY)
    return seen(Condition.INCONCLUSIVE if errors else Condition.QUIET)


def severity_for(model: str, condition: Condition) -> Severity | None:
    provider_wide = model == PROVIDER_WIDE
    if condition is Condition.DOWN:
        return Severity.CRITICAL if provider_wide else Severity.HIGH
    if condition is Condition.DEGRADED:
        return Severity.MEDIUM if provider_wide else Severity.LOW
    return None


def title_for(provider: str, model: str, severity: Severity) -> str:
    state = "down" if severity in (Severity.CRITICAL, Severity.HIGH) else "degraded"
    return (
        f"{provider} is {state}" if model == PROVIDER_WIDE else f"{model} on {provider} is {state}"
    )


# ---- the tracker -------------------------------------------------------------------------
class BreakerSource(Protocol):
    async def snapshot(self) -> list[dict[str, Any]]: ...


@dataclass(slots=True)
class CheckResult:
    """Incident ids this check acted on."""

    opened: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


class IncidentTracker(Periodic):
    name = "incident check"

    def __init__(
        self,
        db: Database,
        health: PassiveHealth,
        breakers: BreakerSource,
        events: EventBus,
        *,
        interval_s: float = 30.0,
        quiet_s: float = 900.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(interval_s)
        self.db = db
        self.health = health
        self.breakers = breakers
        self.events = events
        self.quiet = timedelta(seconds=quiet_s)
        # A step down waits until nobody confirmed the current severity for this long.
        self.grace = timedelta(seconds=interval_s / 2)
        self.clock = clock
        self.last_check_at: datetime | None = None

    async def run_once(self) -> None:
        await self.check()

    async def observations(self) -> dict[tuple[str, str], Observation]:
        """What this worker sees now, per (provider, model or '')."""
        states: dict[tuple[str, str], str] = {}
        try:
            for b in await self.breakers.snapshot():
                states[(b["provider"], b["model"] or PROVIDER_WIDE)] = b["state"]
        except Exception:
            log.warning("incident check: breaker states unreadable", exc_info=True)
        figures = {(r["provider"], PROVIDER_WIDE): r for r in self.health.providers()}
        figures.update({(r["provider"], r["model"]): r for r in self.health.models()})
        return {k: observe(figures.get(k), states.get(k)) for k in figures.keys() | states.keys()}

    async def check(self) -> CheckResult:
        """One pass over every observed subject and every open incident."""
        now = self.clock()
        seen = await self.observations()
        async with self.db.begin() as conn:
            current = {(i.provider, i.model): i for i in await open_incidents(conn)}
        result = CheckResult()
        for subject in sorted(seen.keys() | current.keys()):
            try:
                await self._settle(subject, seen, current.get(subject), now, result)
            except Exception:
                log.warning("incident check of %s failed", subject, exc_info=True)
        self.last_check_at = now
        return result

    async def _settle(
        self,
        subject: tuple[str, str],
        seen: dict[tuple[str, str], Observation],
        incident: Incident | None,
        now: datetime,
        result: CheckResult,
    ) -> None:
        provider, model = subject
        obs = seen.get(subject, _QUIET)
        severity = severity_for(model, obs.condition)
        if incident is None:
            covering = seen.get((provider, PROVIDER_WIDE), _QUIET).condition
            if severity is not None and not (model and _covers(covering, obs.condition)):
                await self._open(provider, model, severity, obs, now, result)
            return
        if severity == incident.severity:
            await self._write(incident, now, result.confirmed)
        elif severity is not None:
            worse = _RANK[severity] > _RANK[Severity(incident.severity)]
            await self._regrade(incident, severity, obs, now, worse, result)
        elif obs.condition is Condition.HEALTHY:
            await self._resolve(incident, now, now - self.grace, "recovered", result)
        elif obs.condition is Condition.QUIET:
            await self._resolve(incident, now, now - self.quiet, "quiet", result)

    async def _open(
        self,
        provider: str,
        model: str,
        severity: Severity,
        obs: Observation,
        now: datetime,
        result: CheckResult,
    ) -> None:
        incident_id = f"inc_{secrets.token_hex(12)}"
        entry = {"at": now.isoformat(), "severity": severity.value, **_figures(obs)}
        row = {
            "id": incident_id,
            "provider": provider,
            "model": model,
            "severity": severity.value,
            "status": "open",
            "title": title_for(provider, model, severity),
            "started_at": now,
            "updated_at": now,
            "details": {"history": [entry]},
        }
        data = {
            "provider": provider,
            "model": model or None,
            "severity": severity.value,
            "incident_id": incident_id,
            "success_rate": obs.success_rate,
            "attempts": obs.attempts,
            "started_at": now.isoformat(),
        }
        async with self.db.begin() as conn:
            inserted = await incidents.open_incident(conn, row)
            if inserted:  # the webhook event, in the incident's own transaction
                await add_event_async(conn, DEGRADED_EVENT, data, user_id=None)
        if not inserted:
            return  # another worker opened it first: it emits the event
        result.opened.append(incident_id)
        log.warning("incident %s opened: %s", incident_id, title_for(provider, model, severity))
        self.events.emit(DEGRADED_EVENT, data)

    async def _write(
        self,
        incident: Incident,
        now: datetime,
        acted: list[str],
        *,
        values: dict[str, Any] | None = None,
        not_after: datetime | None = None,
        event: tuple[str, dict[str, Any]] | None = None,
    ) -> bool:
        """Update the incident if it is still open at the severity we read (and, for a step
        down, nobody confirmed it since `not_after`); `updated_at` = now. `event`: a webhook
        event written with the update, in its transaction."""
        async with self.db.begin() as conn:
            done = await incidents.update_open_incident(
                conn,
                incident.id,
                incident.severity,
                {"updated_at": now, **(values or {})},
                not_after=not_after,
            )
            if done and event is not None:
                await add_event_async(conn, event[0], event[1], user_id=None)
        if done:
            acted.append(incident.id)
        return done

    async def _regrade(
        self,
        incident: Incident,
        severity: Severity,
        obs: Observation,
        now: datetime,
        worse: bool,
        result: CheckResult,
    ) -> None:
        change = "escalated" if worse else "de-escalated"
        entry = {
            "at": now.isoformat(),
            "severity": severity.value,
            "from": incident.severity,
            "change": change,
            **_figures(obs),
        }
        history = [*incident.details.get("history", []), entry]
        values = {
            "severity": severity.value,
            "title": title_for(incident.provider, incident.model, severity),
            "details": {**incident.details, "history": history},
        }
        not_after = None if worse else now - self.grace
        if await self._write(incident, now, result.changed, values=values, not_after=not_after):
            log.warning("incident %s %s to %s", incident.id, change, severity.value)

    async def _resolve(
        self,
        incident: Incident,
        now: datetime,
        not_after: datetime,
        resolution: str,
        result: CheckResult,
    ) -> None:
        values = {
            "status": "resolved",
            "resolved_at": now,
            "details": {**incident.details, "resolution": resolution},
        }
        data = {
            "provider": incident.provider,
            "model": incident.model or None,
            "severity": incident.severity,
            "incident_id": incident.id,
            "started_at": incident.started_at.isoformat(),
            "resolved_at": now.isoformat(),
            "duration_s": round((now - incident.started_at).total_seconds(), 3),
            "resolution": resolution,
        }
        event = (RECOVERED_EVENT, data)
        if not await self._write(
            incident, now, result.resolved, values=values, not_after=not_after, event=event
        ):
            return
        log.info("incident %s resolved (%s): %s", incident.id, resolution, incident.title)
        self.events.emit(RECOVERED_EVENT, data)


def _covers(provider: Condition, model: Condition) -> bool:
    """Whether the provider's condition is at least as bad as the model's."""
    return _LEVEL.get(provider, 0) >= _LEVEL.get(model, 0)


def _figures(obs: Observation) -> dict[str, Any]:
    return {"success_rate": obs.success_rate, "attempts": obs.attempts, "breaker": obs.breaker}
