"""Velocity mode of the IP layer (SPEC §2): when, over the last 60 s, at least
`min_requests` responses were seen and at least `error_ratio` of them were 5xx, the IP limit is
multiplied by `factor` for `cooldown_s`. The error rate is observed per worker (each worker sees
a representative share of the traffic); the counters it tightens are shared."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("gatewayz.ratelimit")

WINDOW_S = 60


class VelocityTracker:
    """Response statuses of the last 60 s in one-second buckets; decides velocity mode."""

    def __init__(
        self,
        min_requests: int,
        error_ratio: float,
        factor: float,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_requests = min_requests
        self.error_ratio = error_ratio
        self.factor = factor
        self.cooldown_s = cooldown_s
        self.clock = clock
        # Per second of the last 60 (slot = second % 60): [responses, 5xx], with running sums.
        self._buckets: list[list[int]] = [[0, 0] for _ in range(WINDOW_S)]
        self._last_sec: int | None = None
        self.total = 0
        self.errors = 0
        self.active_until = 0.0
        self.activations = 0

    def _advance(self, sec: int) -> None:
        """Drop the seconds that left the window since the last response (amortised O(1))."""
        last = self._last_sec
        if last is not None and sec <= last:
            return
        stale = range(WINDOW_S) if last is None else range(last + 1, min(sec, last + WINDOW_S) + 1)
        for second in stale:
            b = self._buckets[second % WINDOW_S]
            self.total -= b[0]
            self.errors -= b[1]
            b[0] = b[1] = 0
        self._last_sec = sec

    def record(self, status: int) -> None:
        now = self.clock()
        sec = int(now)
        self._advance(sec)
        b = self._buckets[sec % WINDOW_S]
        b[0] += 1
        self.total += 1
        if status >= 500:
            b[1] += 1
            self.errors += 1
        total, errors = self.total, self.errors
        if total >= self.min_requests and errors >= self.error_ratio * total:
            if not self.active:
                self.activations += 1
                log.warning(
                    "velocity mode: %d of %d responses in 60 s were 5xx; IP limits x%s for %ss",
                    errors,
                    total,
                    self.factor,
                    self.cooldown_s,
                )
            self.active_until = now + self.cooldown_s

    @property
    def active(self) -> bool:
        return self.clock() < self.active_until

    def limit(self, base: int) -> int:
        return max(1, int(base * self.factor)) if self.active else base
