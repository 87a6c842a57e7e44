"""Incidents (CM-11.9): the tracker opens, re-grades and resolves incidents from passive health
and the circuit breakers, on SQLite and PostgreSQL, with injected clocks; uptime from incidents;
the in-process event bus that carries `model.degraded`."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from gatewayz.events import EventBus
from gatewayz.reliability.breaker import CircuitBreakers
from gatewayz.reliability.incident_store import (
    Incident,
    Severity,
    covered_s,
    outage_spans,
    uptime,
)
from gatewayz.reliability.incidents import IncidentTracker
from gatewayz.reliability.passive_health import PassiveHealth
from gatewayz.state.memory import MemoryState
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.tables import incidents
from gatewayz.storage.webhook_tables import webhook_events

T0 = datetime(2030, 1, 1, tzinfo=UTC)
CHECK_S = 30.0
QUIET_S = 900.0


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    await upgrade(db_url)
    database = Database(db_url, pool_size=2, max_overflow=0)
    yield database
    await database.dispose()


class World:
    """One worker's view: passive health, breakers and a tracker, all on one shared clock
    (`elapsed` seconds since T0); the state backend and the database may be shared."""

    def __init__(self, db: Database, state: MemoryState, clock: list[float]) -> None:
        self.clock = clock
        self.health = PassiveHealth(window_s=300, clock=lambda: clock[0])
        self.breakers = CircuitBreakers(
            state, failure_threshold=5, open_s=300, clock=lambda: clock[0], local_ttl_s=0
        )
        self.events = EventBus()
        self.tracker = IncidentTracker(
            db,
            self.health,
            self.breakers,
            self.events,
            interval_s=CHECK_S,
            quiet_s=QUIET_S,
            clock=lambda: T0 + timedelta(seconds=clock[0]),
        )

    def advance(self, seconds: float) -> None:
        self.clock[0] += seconds

    def traffic(self, provider: str, model: str, ok: int, failed: int) -> None:
        for i in range(ok + failed):
            self.health.record(provider, model, ok=i >= failed, latency_ms=10.0)

    async def trip(self, provider: str, model: str | None = None) -> None:
        for _ in range(5):
            await self.breakers.record_failure(provider, model)

    def emitted(self, event_type: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events.recent(event_type)]


def world(db: Database) -> World:
    return World(db, MemoryState(prefix="t:"), [0.0])


async def rows(db: Database) -> list[Incident]:
    async with db.begin() as conn:
        found = await conn.execute(select(incidents).order_by(incidents.c.started_at))
        return [Incident.from_row(r) for r in found]


async def open_by_subject(db: Database) -> dict[tuple[str, str], Incident]:
    return {(i.provider, i.model): i for i in await rows(db) if i.status == "open"}


async def test_cm_11_9_incident_severity_levels(db: Database) -> None:
    w = world(db)
    # Critical: provider "a" is down (its breaker open); its failing model gets no High of its
    # own (the provider's incident covers it).
    await w.trip("a")
    w.traffic("a", "a1", ok=0, failed=10)
    # High: model "b1" on "b" is down (its provider × model breaker open), "b" itself is fine.
    await w.trip("b", "b1")
    w.traffic("b", "b2", ok=100, failed=0)
    # Medium: provider "c" degraded (20 % failed); its only model, degraded alike, is covered.
    w.traffic("c", "c1", ok=16, failed=4)
    # Low: model "d1" degraded (15 % failed) while "d" as a whole is fine (3 of 120).
    w.traffic("d", "d1", ok=17, failed=3)
    w.traffic("d", "d2", ok=100, failed=0)
    # Too few attempts to judge: nothing.
    w.traffic("e", "e1", ok=1, failed=2)

    result = await w.tracker.check()

    found = await open_by_subject(db)
    assert {s: i.severity for s, i in found.items()} == {
        ("a", ""): "critical",
        ("b", "b1"): "high",
        ("c", ""): "medium",
        ("d", "d1"): "low",
    }
    assert {i.severity for i in found.values()} == {s.value for s in Severity}
    assert [s.value for s in Severity] == ["critical", "high", "medium", "low"]
    assert found[("a", "")].title == "a is down"
    assert found[("b", "b1")].title == "b1 on b is down"
    assert found[("c", "")].title == "c is degraded"
    assert found[("d", "d1")].title == "d1 on d is degraded"
    assert sorted(result.opened) == sorted(i.id for i in found.values())
    events = w.emitted("model.degraded")
    assert len(events) == 4
    by_subject = {(e["provider"], e["model"]): e for e in events}
    assert by_subject[("a", None)]["severity"] == "critical"
    assert by_subject[("d", "d1")] == {
        "provider": "d",
        "model": "d1",
        "severity": "low",
        "incident_id": found[("d", "d1")].id,
        "success_rate": 0.85,
        "attempts": 20,
        "started_at": T0.isoformat(),
    }
    # The same picture again: confirmed, nothing new opened, no new events.
    w.advance(CHECK_S)
    again = await w.tracker.check()
    assert again.opened == [] and len(again.confirmed) == 4
    assert len(w.emitted("model.degraded")) == 4


async def test_cm_11_9_incident_lifecycle_open_escalate_deescalate_resolve(db: Database) -> None:
    w = world(db)

    def traffic(bad_ok: int, bad_failed: int) -> None:
        """Provider "p" (one model) and model "q/m1" (q/m2 keeps "q" operational) alike."""
        w.traffic("p", "m", ok=bad_ok, failed=bad_failed)
        w.traffic("q", "m1", ok=bad_ok, failed=bad_failed)
        w.traffic("q", "m2", ok=200, failed=0)

    traffic(17, 3)  # 15 % failed: degraded
    await w.tracker.check()
    first = await open_by_subject(db)
    assert {s: i.severity for s, i in first.items()} == {("p", ""): "medium", ("q", "m1"): "low"}

    w.advance(CHECK_S)
    traffic(0, 20)  # 23 of 40 failed: down
    changed = await w.tracker.check()
    found = await open_by_subject(db)
    assert {s: i.severity for s, i in found.items()} == {("p", ""): "critical", ("q", "m1"): "high"}
    assert {i.id for i in found.values()} == {i.id for i in first.values()}
    assert sorted(changed.changed) == sorted(i.id for i in found.values())
    assert changed.opened == []
    history = found[("p", "")].details["history"]
    assert [(h["severity"], h.get("change")) for h in history] == [
        ("medium", None),
        ("critical", "escalated"),
    ]
    assert history[1]["from"] == "medium" and history[1]["attempts"] == 40
    assert found[("q", "m1")].title == "m1 on q is down"

    # The window moves on; a milder picture de-escalates (nobody confirmed the worse one since).
    w.advance(301)
    traffic(18, 2)  # 10 %: degraded
    await w.tracker.check()
    found = await open_by_subject(db)
    assert {s: i.severity for s, i in found.items()} == {("p", ""): "medium", ("q", "m1"): "low"}
    assert found[("p", "")].details["history"][-1]["change"] == "de-escalated"
    assert found[("p", "")].title == "p is degraded"

    # Recovered: every attempt in the window succeeds.
    w.advance(301)
    traffic(20, 0)
    done = await w.tracker.check()
    assert sorted(done.resolved) == sorted(i.id for i in found.values())
    assert await open_by_subject(db) == {}
    incident = found[("p", "")]
    resolved = {i.id: i for i in await rows(db)}[incident.id]
    assert resolved.status == "resolved"
    assert resolved.resolved_at == T0 + timedelta(seconds=CHECK_S + 602)
    assert resolved.details["resolution"] == "recovered"
    assert len(resolved.details["history"]) == 3
    # One model.degraded per incident (none for the re-grades), one model.recovered each.
    assert sorted(e["incident_id"] for e in w.emitted("model.degraded")) == sorted(
        i.id for i in found.values()
    )
    recovered = {e["incident_id"]: e for e in w.emitted("model.recovered")}
    assert set(recovered) == {i.id for i in found.values()}
    assert recovered[incident.id]["duration_s"] == CHECK_S + 602
    assert recovered[incident.id]["model"] is None
    # The same events went into the webhook outbox, each with its incident's own write.
    async with db.begin() as conn:
        outbox = (await conn.execute(select(webhook_events))).all()
    by_type: dict[str, list[str]] = {}
    for event in outbox:
        assert event.user_id is None  # for every user's endpoints that want the type
        by_type.setdefault(event.type, []).append(json.loads(event.data)["incident_id"])
    assert {t: sorted(ids) for t, ids in by_type.items()} == {
        "model.degraded": sorted(i.id for i in found.values()),
        "model.recovered": sorted(i.id for i in found.values()),
    }

    # A new problem later is a new incident.
    w.advance(301)
    await w.trip("p")
    await w.tracker.check()
    reopened = await open_by_subject(db)
    assert reopened[("p", "")].id != incident.id and reopened[("p", "")].severity == "critical"


async def test_cm_11_9_a_breaker_still_open_keeps_the_incident(db: Database) -> None:
    w = world(db)
    await w.trip("p")
    await w.tracker.check()
    w.advance(CHECK_S)
    w.traffic("p", "m", ok=20, failed=0)  # another path says fine: the open breaker wins
    result = await w.tracker.check()
    assert result.resolved == [] and (await open_by_subject(db))[("p", "")].severity == "critical"


async def test_cm_11_9_quiet_subject_resolves_after_the_quiet_period(db: Database) -> None:
    w = world(db)
    await w.trip("p")
    await w.tracker.check()
    # Breaker half-open (no probe yet), passive window empty: quiet since the last confirmation.
    w.advance(301)
    assert (await w.tracker.check()).resolved == []
    w.advance(QUIET_S - 302)
    assert (await w.tracker.check()).resolved == []
    w.advance(1)
    result = await w.tracker.check()
    (incident,) = await rows(db)
    assert result.resolved == [incident.id]
    assert (incident.status, incident.details["resolution"]) == ("resolved", "quiet")
    assert [e["resolution"] for e in w.emitted("model.recovered")] == ["quiet"]


async def test_cm_11_9_inconclusive_failures_keep_the_incident_open(db: Database) -> None:
    w = world(db)
    await w.trip("p")
    await w.tracker.check()
    w.advance(QUIET_S + 1)
    w.traffic("p", "m", ok=2, failed=1)  # too few to judge, but not quiet
    assert (await w.tracker.check()).resolved == []
    assert ("p", "") in await open_by_subject(db)


async def test_cm_11_9_two_trackers_open_one_incident_and_emit_one_event(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await upgrade(db_url)
    dbs = [Database(db_url, pool_size=2, max_overflow=0) for _ in range(2)]
    try:
        state, clock = MemoryState(prefix="t:"), [0.0]
        workers = [World(d, state, clock) for d in dbs]
        for w in workers:
            for provider in ("p", "q", "r"):
                w.traffic(provider, "m", ok=0, failed=10)
        with caplog.at_level(logging.WARNING, logger="gatewayz.reliability"):
            results = await asyncio.gather(*(w.tracker.check() for w in workers))
        # The loser of each race saw a no-op insert, not an error.
        assert not [r for r in caplog.records if "failed" in r.getMessage()]
        found = await rows(dbs[0])
        # Each provider is down: one Critical each (its model is covered by it).
        assert sorted((i.provider, i.model, i.severity) for i in found) == [
            ("p", "", "critical"),
            ("q", "", "critical"),
            ("r", "", "critical"),
        ]
        assert sorted(i for r in results for i in r.opened) == sorted(i.id for i in found)
        events = [e for w in workers for e in w.emitted("model.degraded")]
        assert sorted(e["incident_id"] for e in events) == sorted(i.id for i in found)

        # Worker 1 confirms; worker 0, seeing "p" healthy at once, must not resolve it yet.
        first, second = workers
        second.advance(CHECK_S)
        await second.tracker.check()
        first.health = PassiveHealth(window_s=300, clock=lambda: clock[0])
        first.tracker.health = first.health
        first.traffic("p", "m", ok=20, failed=0)
        assert (await first.tracker.check()).resolved == []
        first.advance(CHECK_S / 2)
        assert len((await first.tracker.check()).resolved) == 1
        assert len([e for w in workers for e in w.emitted("model.recovered")]) == 1
    finally:
        for d in dbs:
            await d.dispose()


async def test_cm_11_9_database_allows_one_open_incident_per_subject(db: Database) -> None:
    def row(incident_id: str, status: str, model: str = "") -> dict[str, Any]:
        return {
            "id": incident_id,
            "provider": "p",
            "model": model,
            "severity": "critical" if not model else "high",
            "status": status,
            "title": "t",
            "started_at": T0,
            "updated_at": T0,
        }

    async with db.begin() as conn:
        await conn.execute(insert(incidents).values(row("inc_1", "resolved")))
        await conn.execute(insert(incidents).values(row("inc_2", "resolved")))
        await conn.execute(insert(incidents).values(row("inc_3", "open")))
        await conn.execute(insert(incidents).values(row("inc_4", "open", model="m")))
    with pytest.raises(IntegrityError):
        async with db.begin() as conn:
            await conn.execute(insert(incidents).values(row("inc_5", "open")))
    with pytest.raises(IntegrityError):
        async with db.begin() as conn:
            await conn.execute(insert(incidents).values({**row("inc_6", "open"), "severity": "x"}))
    assert [i.id for i in await rows(db)] == ["inc_1", "inc_2", "inc_3", "inc_4"]


async def test_cm_11_9_database_failures_never_stop_the_tracker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    health = PassiveHealth()
    health.record("p", "m", ok=False, latency_ms=1.0)
    tracker = IncidentTracker(
        broken, health, CircuitBreakers(MemoryState(prefix="t:")), EventBus(), interval_s=0.01
    )
    try:
        with caplog.at_level(logging.WARNING, logger="gatewayz.reliability"):
            tracker.start()
            await asyncio.sleep(0.3)
            assert tracker._task is not None and not tracker._task.done()
        failures = [r for r in caplog.records if "incident check failed" in r.getMessage()]
        assert len(failures) >= 2
    finally:
        await tracker.stop()
        await broken.dispose()


# ---- uptime --------------------------------------------------------------------------------
NOW = T0 + timedelta(days=40)


def incident(
    model: str, history: list[tuple[float, str]], resolved_h: float | None, provider: str = "p"
) -> Incident:
    """An incident whose severity periods start `h` hours before NOW."""
    at = [NOW - timedelta(hours=h) for h, _ in history]
    return Incident(
        id=f"inc_{len(history)}_{model}_{history[0][0]}",
        provider=provider,
        model=model,
        severity=history[-1][1],
        status="open" if resolved_h is None else "resolved",
        title="t",
        started_at=at[0],
        updated_at=at[-1],
        resolved_at=None if resolved_h is None else NOW - timedelta(hours=resolved_h),
        details={
            "history": [
                {"at": a.isoformat(), "severity": s} for a, (_, s) in zip(at, history, strict=True)
            ]
        },
    )


def test_cm_11_9_covered_time_merges_overlaps_and_clips_to_the_window() -> None:
    h = timedelta(hours=1)
    spans = [(NOW - 5 * h, NOW - 3 * h), (NOW - 4 * h, NOW - 2 * h), (NOW - 2 * h, NOW - h)]
    assert covered_s(spans, NOW - 10 * h, NOW) == 4 * 3600  # overlapping and touching: merged
    assert covered_s(spans, NOW - 3 * h, NOW) == 2 * 3600  # clipped at the window's start
    assert covered_s([(NOW - 30 * h, NOW + h)], NOW - 24 * h, NOW) == 24 * 3600
    assert covered_s([], NOW - h, NOW) == 0


def test_cm_11_9_uptime_from_critical_and_high_incidents() -> None:
    found = [
        # Provider-wide: critical 10h → 8h ago.
        incident("", [(10, "critical")], resolved_h=8),
        # Provider-wide: medium from 6h, critical 5h → 4h, medium again until 3h: 1h counts.
        incident("", [(6, "medium"), (5, "critical"), (4, "medium")], resolved_h=3),
        # Three days ago, one hour: in 7d and 30d, not in 24h.
        incident("", [(72, "critical")], resolved_h=71),
        # Model m: high 9h → 7h ago, overlapping the provider's first critical hour.
        incident("m", [(9, "high")], resolved_h=7),
        # Model m: low incidents do not count against uptime.
        incident("m", [(20, "low")], resolved_h=18),
        # Another provider's critical incident, still open (counts until now): not ours.
        incident("", [(1, "critical")], resolved_h=None, provider="q"),
    ]
    day, week, month = 86400, 7 * 86400, 30 * 86400
    provider = uptime(outage_spans(found, "p", None, NOW), NOW)
    assert provider == {
        "24h": round(1 - 3 * 3600 / day, 6),
        "7d": round(1 - 4 * 3600 / week, 6),
        "30d": round(1 - 4 * 3600 / month, 6),
    }
    model = uptime(outage_spans(found, "p", "m", NOW), NOW)
    # 10h → 7h (merged: provider critical 10→8 ∪ model high 9→7) + 5h → 4h.
    assert model["24h"] == round(1 - 4 * 3600 / day, 6)
    assert model["7d"] == round(1 - 5 * 3600 / week, 6)
    other = uptime(outage_spans(found, "q", "m", NOW), NOW)
    assert other["24h"] == round(1 - 3600 / day, 6)
    assert uptime(outage_spans(found, "nobody", None, NOW), NOW) == {
        "24h": 1.0,
        "7d": 1.0,
        "30d": 1.0,
    }


# ---- the event bus -------------------------------------------------------------------------
async def test_cm_11_9_event_bus_delivers_without_blocking_or_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus(history=3)
    got: list[dict[str, Any]] = []
    everything: list[str] = []
    release = asyncio.Event()

    async def slow(event: dict[str, Any]) -> None:
        await release.wait()
        got.append(event)

    async def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    async def wildcard(event: dict[str, Any]) -> None:
        everything.append(event["type"])

    bus.subscribe("model.degraded", slow)
    bus.subscribe("model.degraded", broken)
    bus.subscribe("*", wildcard)
    with caplog.at_level(logging.ERROR, logger="gatewayz.events"):
        event = bus.emit("model.degraded", {"provider": "p", "model": None})
        assert got == []  # emit returned before the slow handler ran
        assert event["id"].startswith("evt_") and event["type"] == "model.degraded"
        assert datetime.fromisoformat(event["created_at"]).tzinfo is not None
        assert event["data"] == {"provider": "p", "model": None}
        release.set()
        await bus.drain(timeout_s=5)
    assert got == [event] and got[0] is not event  # each handler gets its own copy
    assert everything == ["model.degraded"]
    assert any(r.exc_info and "handler bug" in str(r.exc_info[1]) for r in caplog.records)
    for n in range(4):
        bus.emit("other", {"n": n})
    await bus.drain(timeout_s=5)
    assert [e["data"]["n"] for e in bus.recent()] == [1, 2, 3]  # bounded
    assert bus.recent("model.degraded") == []
    assert everything == ["model.degraded", "other", "other", "other", "other"]
    await bus.stop()


def test_cm_11_9_event_bus_emit_outside_an_event_loop_does_not_raise() -> None:
    bus = EventBus()

    async def handler(event: dict[str, Any]) -> None:
        raise AssertionError("not run without a loop")

    bus.subscribe("model.degraded", handler)
    event = bus.emit("model.degraded", {"provider": "p"})
    assert bus.recent() == [event]
