"""Active health probes by usage tier (SPEC §11, CM-11.1–11.3).

The targets are the provider × native model pairs real requests used in the last 24 h
(`request_logs`), ranked by request count: the top 5 % (at least one) are probed every 5 min
("critical"), the next 20 % every 30 min ("popular"), the rest every 2–4 h ("standard"; each
target's interval is fixed by its name, so schedules stay put when usage is re-read).

Every `tick_s` the prober looks at the targets that are due. A target that real requests tried
within its interval is skipped (passive health already measured it); otherwise the worker takes
the target's slot in the shared state (one worker per interval, across workers and replicas)
and sends a minimal request — one user message "ping", `max_tokens` 1, not streamed — straight
to the provider's adapter, with a timeout and at most `concurrency` probes in flight. The
outcome goes to passive health as a probe. Probes never bill anyone, never write request logs
and never touch circuit breakers; a failure of any kind is logged and the loop goes on.

Usage is re-read at most every `usage_refresh_s`, once for all workers (cached in the state).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import perf_counter

from gatewayz.background import Periodic
from gatewayz.canonical.types import ChatRequest, Message
from gatewayz.errors import GatewayError, UpstreamError
from gatewayz.providers.provider import Provider
from gatewayz.reliability.passive_health import PassiveHealth
from gatewayz.state import StateBackend, StateError
from gatewayz.storage import logs
from gatewayz.storage.db import Database
from gatewayz.storage.errors import DB_ERRORS
from gatewayz.storage.tables import utcnow

log = logging.getLogger("gatewayz.health")

CRITICAL, POPULAR, STANDARD = "critical", "popular", "standard"
CRITICAL_PERCENT, POPULAR_PERCENT = 5, 20
CRITICAL_S, POPULAR_S = 300.0, 1800.0
STANDARD_MIN_S, STANDARD_MAX_S = 7200.0, 14400.0
USAGE_WINDOW = timedelta(hours=24)
USAGE_REFRESH_S = 300.0
USAGE_KEY = "probe-usage"
# A slot lives a little less than the interval: the worker that probed, coming back one interval
# later on its own clock, finds it free even if the state's clock runs slightly behind.
SLOT_TTL_FRACTION = 0.9

# What became of one due target in a tick.
OK, FAILED, INCONCLUSIVE = "ok", "failed", "inconclusive"
FRESH, TAKEN, UNAVAILABLE = "fresh", "taken", "unavailable"

Target = tuple[str, str]  # (provider slug, native model id)


@dataclass(frozen=True, slots=True)
class Schedule:
    provider: str
    model: str
    tier: str
    interval_s: float

    @property
    def target(self) -> Target:
        return (self.provider, self.model)


def standard_interval(provider: str, model: str) -> float:
    """A standard target's interval: uniform in [2 h, 4 h], fixed by the target's name."""
    fraction = random.Random(f"{provider}|{model}").random()
    return STANDARD_MIN_S + fraction * (STANDARD_MAX_S - STANDARD_MIN_S)


def _ceil_percent(n: int, percent: int) -> int:
    return -(-n * percent // 100)


def schedule(usage: Mapping[Target, int]) -> list[Schedule]:
    """Tiers by usage (requests per target), busiest first; ties in name order."""
    ranked = sorted(usage.items(), key=lambda item: (-item[1], item[0]))
    n = len(ranked)
    critical = _ceil_percent(n, CRITICAL_PERCENT)
    popular = min(n - critical, _ceil_percent(n, POPULAR_PERCENT))
    out = []
    for rank, ((provider, model), _) in enumerate(ranked):
        if rank < critical:
            out.append(Schedule(provider, model, CRITICAL, CRITICAL_S))
        elif rank < critical + popular:
            out.append(Schedule(provider, model, POPULAR, POPULAR_S))
        else:
            out.append(Schedule(provider, model, STANDARD, standard_interval(provider, model)))
    return out


async def usage_counts(db: Database, since: datetime) -> dict[Target, int]:
    """Requests per provider × native model logged since `since`."""
    async with db.connect() as conn:
        return await logs.requests_per_target(conn, since)


class Prober(Periodic):
    """Probes due targets every `tick_s` (`start`/`stop`), or once per `tick()` call. Time is
    `health.clock`, the clock real requests are recorded on."""

    name = "health probe round"

    def __init__(
        self,
        db: Database,
        providers: Mapping[str, Provider],
        health: PassiveHealth,
        state: StateBackend,
        *,
        concurrency: int = 4,
        tick_s: float = 30.0,
        timeout_s: float = 30.0,
        usage_refresh_s: float = USAGE_REFRESH_S,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(tick_s)
        self.db = db
        self.providers = providers
        self.health = health
        self.state = state
        self.timeout_s = timeout_s
        self.usage_refresh_s = usage_refresh_s
        self.rng = rng or random.Random()
        self.schedules: dict[Target, Schedule] = {}
        self._due: dict[Target, float] = {}
        self._refreshed_at: float | None = None
        self._slots = asyncio.Semaphore(concurrency)

    async def run_once(self) -> None:
        outcomes = await self.tick()
        if outcomes[OK] or outcomes[FAILED]:
            log.debug("health probes: %s", dict(outcomes))

    def due_at(self, provider: str, model: str) -> float | None:
        """When (on `health.clock`) the target is next looked at; None if it is no target."""
        return self._due.get((provider, model))

    async def tick(self) -> Counter[str]:
        """One round: re-read usage if it is time, then look at every due target (the
        shortest intervals first). Returns how many targets ended in each outcome."""
        now = self.health.clock()
        if self._refreshed_at is None or now - self._refreshed_at >= self.usage_refresh_s:
            try:
                await self.refresh()
            except DB_ERRORS as exc:
                log.warning("health probes: usage not read (retried next round): %s", exc)
            now = self.health.clock()  # reading usage took time: what is due is due by now
        due = sorted(
            (s for s in self.schedules.values() if self._due[s.target] <= now),
            key=lambda s: s.interval_s,
        )
        outcomes = await asyncio.gather(*(self._check(s, now) for s in due))
        return Counter(outcomes)

    async def refresh(self) -> None:
        """Re-rank the targets by usage; a target keeps its due time (brought forward if its
        new tier is more frequent). A new target is due now, a new standard one at a random
        point of its interval (so a restart does not probe every model at once)."""
        usage = await self._usage()
        now = self.health.clock()
        schedules: dict[Target, Schedule] = {}
        due: dict[Target, float] = {}
        for s in schedule(usage):
            before = self._due.get(s.target)
            if before is not None:
                due[s.target] = min(before, now + s.interval_s)
            elif s.tier == STANDARD:
                due[s.target] = now + self.rng.uniform(0.0, s.interval_s)
            else:
                due[s.target] = now
            schedules[s.target] = s
        self.schedules, self._due = schedules, due
        self._refreshed_at = now

    async def _usage(self) -> dict[Target, int]:
        """The last 24 h of usage: the cached figures another worker read, else the database's
        (then cached for the others)."""
        cached: bytes | None = None
        with contextlib.suppress(StateError):
            cached = await self.state.get(USAGE_KEY)
        if cached is not None:
            return {(p, m): int(c) for p, m, c in json.loads(cached)}
        usage = await usage_counts(self.db, utcnow() - USAGE_WINDOW)
        body = json.dumps([[p, m, c] for (p, m), c in usage.items()]).encode()
        with contextlib.suppress(StateError):
            await self.state.set(USAGE_KEY, body, ttl_s=self.usage_refresh_s)
        return usage

    async def _check(self, s: Schedule, now: float) -> str:
        provider = self.providers.get(s.provider)
        if provider is None or not provider.enabled or provider.adapter is None:
            self._due[s.target] = now + s.interval_s
            return UNAVAILABLE
        last = self.health.last_request_at(s.provider, s.model)
        if last is not None and now - last < s.interval_s:
            self._due[s.target] = last + s.interval_s  # when the passive data goes stale
            return FRESH
        self._due[s.target] = now + s.interval_s
        key = f"probe:{s.provider}|{s.model}"
        try:
            mine = await self.state.set_if_absent(key, b"1", ttl_s=s.interval_s * SLOT_TTL_FRACTION)
        except StateError as exc:
            log.warning("health probe of %s %s skipped: state unavailable: %s", *s.target, exc)
            return TAKEN
        if not mine:
            return TAKEN
        return await self._probe(provider, s)

    async def _probe(self, provider: Provider, s: Schedule) -> str:
        adapter = provider.adapter
        assert adapter is not None
        req = ChatRequest(model=s.model, messages=[Message("user", "ping")], max_tokens=1)
        async with self._slots:
            started = perf_counter()
            try:
                async with asyncio.timeout(self.timeout_s):
                    await adapter.send(req, s.model)
            except TimeoutError:
                ok = False
                log.info("health probe of %s %s timed out", *s.target)
            except GatewayError as err:
                if not (isinstance(err, UpstreamError) or err.failover):
                    # The provider answered (400, 429, ...): no verdict on its health.
                    log.info("health probe of %s %s inconclusive: %s", *s.target, err)
                    return INCONCLUSIVE
                ok = False
                log.info("health probe of %s %s failed: %s", *s.target, err)
            except Exception:
                log.warning("health probe of %s %s broke", *s.target, exc_info=True)
                return INCONCLUSIVE
            else:
                ok = True
            latency_ms = (perf_counter() - started) * 1000
            self.health.record(s.provider, s.model, ok, latency_ms, probe=True)
        return OK if ok else FAILED
