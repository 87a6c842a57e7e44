"""Circuit breakers per provider, optionally per provider × model (SPEC §5, CM-5.3).

CLOSED → OPEN after `failure_threshold` consecutive failures; while OPEN `allow` is False; once
`open_s` has passed the breaker is HALF_OPEN: the first caller is let through as the probe
(an atomic set-if-absent token with a short TTL), every other caller is still refused while the
probe is in flight; the probe's success closes the breaker (count reset), its failure opens it
again with the timer restarted. A success while CLOSED resets the consecutive-failure count.

The record lives in the state backend (Redis when configured), so every worker and replica sees
the same breaker; each transition is one atomic `StateBackend.breaker_update` (a Lua script on
Redis). Times are on `clock` (wall-clock seconds by default, so every host agrees).

Hot path: `allow` reads a breaker's record at most once per `local_ttl_s` per process (the
record is cached locally; concurrent refreshes of one breaker share one read), and
`record_success` writes nothing while the local view is CLOSED with 0 failures. Hence another
worker's transitions are seen here within `local_ttl_s`.

Infrastructure failure never blocks a request: if the state cannot be read, `allow` is True;
if an outcome cannot be recorded, it is logged and dropped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gatewayz.single_flight import SingleFlight
from gatewayz.state import StateBackend

log = logging.getLogger("gatewayz.reliability")

KEY_PREFIX = "breaker:"
PROBE_PREFIX = "breaker_probe:"
# Hash: breaker key -> {"provider", "model"} of every breaker that ever recorded a failure
# (what `snapshot` lists).
INDEX_KEY = "breaker_index"
MODEL_SEPARATOR = "|"


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class _View:
    """A breaker's record as this process last saw it, and when (on `clock`)."""

    state: str  # as stored: "closed" or "open"
    failures: int
    opened_at: float
    seen_at: float


_CLOSED = ("closed", 0, 0.0)


class CircuitBreakers:
    def __init__(
        self,
        state: StateBackend,
        *,
        failure_threshold: int = 5,
        open_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        local_ttl_s: float = 1.0,
        probe_ttl_s: float = 30.0,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if open_s < 0 or local_ttl_s < 0 or probe_ttl_s <= 0:
            raise ValueError("open_s and local_ttl_s must be >= 0, probe_ttl_s > 0")
        self.state = state
        self.failure_threshold = failure_threshold
        self.open_s = float(open_s)
        self.local_ttl_s = float(local_ttl_s)
        # A half-open probe that never reports (its worker died) frees the slot after this long.
        self.probe_ttl_s = float(probe_ttl_s)
        # A record outlives any open period; an idle CLOSED count eventually lapses.
        self.record_ttl_s = max(3600.0, 2 * self.open_s)
        self._clock = clock
        self._local: dict[str, _View] = {}
        self._names: dict[str, tuple[str, str | None]] = {}
        self._indexed: set[str] = set()
        self._reads: SingleFlight[str, _View | None] = SingleFlight()

    # ---- keys --------------------------------------------------------------------------
    def key(self, provider: str, model: str | None = None) -> str:
        """The state key of the breaker of `provider` (or of `provider` × `model`)."""
        if not provider:
            raise ValueError("provider must not be empty")
        if model:
            return f"{KEY_PREFIX}{provider}{MODEL_SEPARATOR}{model}"
        return f"{KEY_PREFIX}{provider}"

    def _key(self, provider: str, model: str | None, *, used: bool = True) -> str:
        """The key; `used` (the request path) also makes `snapshot` list the breaker."""
        k = self.key(provider, model)
        if used and k not in self._names:
            self._names[k] = (provider, model or None)
        return k

    # ---- reading -----------------------------------------------------------------------
    def _view(self, fields: dict[str, bytes], now: float) -> _View:
        try:
            return _View(
                fields.get("state", b"closed").decode(),
                int(fields.get("failures", b"0")),
                float(fields.get("opened_at", b"0")),
                now,
            )
        except ValueError:
            log.error("circuit breaker: unreadable record %r; treated as closed", fields)
            return _View(*_CLOSED, now)

    async def _read(self, k: str) -> _View:
        view = self._view(await self.state.hget_all(k), self._clock())
        self._local[k] = view
        return view

    async def _refresh(self, k: str) -> _View | None:
        """A fresh view of `k` (None if the state cannot be read); one read per breaker at a
        time, shared by every caller waiting for it."""
        return await self._reads.run(k, lambda: self._read_or_none(k))

    async def _read_or_none(self, k: str) -> _View | None:
        try:
            return await self._read(k)
        except Exception:
            log.warning("circuit breaker %s: state unreadable; allowing", k, exc_info=True)
            return None

    def _phase(self, view: _View, now: float) -> BreakerState:
        if view.state != "open":
            return BreakerState.CLOSED
        if now < view.opened_at + self.open_s:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    # ---- hot path ----------------------------------------------------------------------
    async def allow(self, provider: str, model: str | None = None) -> bool:
        """Whether a request may go to this provider now. CLOSED: True. OPEN: False.
        HALF_OPEN: True for exactly one caller (the probe) until its outcome is recorded or
        `probe_ttl_s` passes; False for everyone else."""
        k = self._key(provider, model)
        now = self._clock()
        view = self._local.get(k)
        if view is None or not 0 <= now - view.seen_at < self.local_ttl_s:
            view = await self._refresh(k)
            if view is None:
                return True
        phase = self._phase(view, now)
        if phase is BreakerState.CLOSED:
            return True
        if phase is BreakerState.OPEN:
            return False
        try:
            return await self.state.set_if_absent(
                PROBE_PREFIX + k, str(now).encode(), ttl_s=self.probe_ttl_s
            )
        except Exception:
            log.warning("circuit breaker %s: probe token unavailable; allowing", k, exc_info=True)
            return True

    async def record_success(self, provider: str, model: str | None = None) -> None:
        """A call to this provider succeeded. Free while the local view is CLOSED, 0 failures."""
        k = self._key(provider, model)
        view = self._local.get(k)
        if view is not None and view.state == "closed" and view.failures == 0:
            return
        await self._update(k, ok=True, previous=view)

    async def record_failure(self, provider: str, model: str | None = None) -> None:
        """A call to this provider failed (a failure that counts: the caller decides)."""
        k = self._key(provider, model)
        view = self._local.get(k)
        now = self._clock()
        if (
            view is not None
            and 0 <= now - view.seen_at < self.local_ttl_s
            and self._phase(view, now) is BreakerState.OPEN
        ):
            return  # a late failure while OPEN changes nothing: spare the round trip
        await self._update(k, ok=False, previous=view)
        if k not in self._indexed:
            try:
                await self.state.hset(INDEX_KEY, {k: json.dumps(self._name_json(k))})
                self._indexed.add(k)
            except Exception:
                log.warning("circuit breaker %s: index write failed", k, exc_info=True)

    async def _update(self, k: str, *, ok: bool, previous: _View | None) -> None:
        now = self._clock()
        try:
            record = await self.state.breaker_update(
                k,
                PROBE_PREFIX + k,
                ok,
                self.failure_threshold,
                self.open_s,
                now,
                self.record_ttl_s,
            )
        except Exception:
            log.warning("circuit breaker %s: outcome not recorded", k, exc_info=True)
            return
        self._local[k] = _View(record.state, record.failures, record.opened_at, self._clock())
        if not ok and record.state == "open" and record.opened_at == now:
            log.warning(
                "circuit breaker %s opened after %d consecutive failures; retry in %.0f s",
                k,
                record.failures,
                self.open_s,
            )
        elif ok and record.state == "closed" and previous is not None and previous.state == "open":
            log.info("circuit breaker %s closed (half-open probe succeeded)", k)

    # ---- admin -------------------------------------------------------------------------
    def _name_json(self, k: str) -> dict[str, Any]:
        provider, model = self._names[k]
        return {"provider": provider, "model": model}

    def _entry(self, provider: str, model: str | None, view: _View) -> dict[str, Any]:
        phase = self._phase(view, self._clock())
        opened = phase is not BreakerState.CLOSED
        return {
            "provider": provider,
            "model": model,
            "state": phase.value,
            "failures": view.failures,
            "opened_at": view.opened_at if opened else None,
            "retry_at": view.opened_at + self.open_s if opened else None,
        }

    async def state_of(self, provider: str, model: str | None = None) -> BreakerState:
        """The breaker's state now, read from the state backend (no local cache)."""
        k = self._key(provider, model, used=False)
        return self._phase(await self._read(k), self._clock())

    async def get(self, provider: str, model: str | None = None) -> dict[str, Any]:
        """One breaker, as `snapshot` lists it, read from the state backend."""
        k = self._key(provider, model, used=False)
        return self._entry(provider, model or None, await self._read(k))

    async def snapshot(self) -> list[dict[str, Any]]:
        """Every breaker that ever recorded a failure (any worker) or that this process has
        used, read from the state backend: provider, model, state, failures, opened_at and
        retry_at (when it turns, or turned, half-open; None while closed); sorted."""
        names: dict[str, tuple[str, str | None]] = dict(self._names)
        for k, raw in (await self.state.hget_all(INDEX_KEY)).items():
            try:
                name = json.loads(raw)
                names.setdefault(k, (str(name["provider"]), name.get("model") or None))
            except (ValueError, KeyError, TypeError):
                log.error("circuit breaker index: unreadable entry %r", k)
        out = []
        for k, (provider, model) in names.items():
            out.append(self._entry(provider, model, await self._read(k)))
        out.sort(key=lambda e: (e["provider"], e["model"] or ""))
        return out

    async def reset(self, provider: str, model: str | None = None) -> bool:
        """Force the breaker CLOSED with 0 failures (its probe token cleared). Other workers
        see it within `local_ttl_s`. True if there was a record to clear."""
        k = self._key(provider, model, used=False)
        removed = await self.state.delete(k, PROBE_PREFIX + k)
        self._local[k] = _View(*_CLOSED, self._clock())
        log.warning("circuit breaker %s reset", k)
        return removed > 0
