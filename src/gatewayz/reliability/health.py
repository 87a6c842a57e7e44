"""Passive health: every provider attempt on the request path, per provider × model.

`record` is a few dictionary and deque operations (no I/O, nothing awaited); the figures are
computed only when read. Each worker keeps its own window (the last `window_s` seconds, at most
`max_samples` attempts per provider × model).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from statistics import quantiles
from typing import Any


@dataclass(slots=True)
class _Sample:
    at: float
    ok: bool
    latency_ms: float


class PassiveHealth:
    def __init__(
        self,
        *,
        window_s: float = 300.0,
        max_samples: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.max_samples = max_samples
        self.clock = clock
        self._samples: dict[tuple[str, str], deque[_Sample]] = {}

    def record(self, provider: str, model: str, ok: bool, latency_ms: float) -> None:
        key = (provider, model)
        samples = self._samples.get(key)
        if samples is None:
            samples = self._samples[key] = deque(maxlen=self.max_samples)
        samples.append(_Sample(self.clock(), ok, latency_ms))

    def models(self) -> list[dict[str, Any]]:
        """Per provider × model over the window: attempts, errors, success rate, latency."""
        out = []
        for (provider, model), samples in sorted(self._samples.items()):
            recent = self._recent(samples)
            if recent:
                out.append({"provider": provider, "model": model, **_figures(recent)})
        return out

    def providers(self) -> list[dict[str, Any]]:
        by_provider: dict[str, list[_Sample]] = {}
        for (provider, _), samples in self._samples.items():
            by_provider.setdefault(provider, []).extend(self._recent(samples))
        return [
            {"provider": provider, **_figures(samples)}
            for provider, samples in sorted(by_provider.items())
            if samples
        ]

    def _recent(self, samples: Iterable[_Sample]) -> list[_Sample]:
        since = self.clock() - self.window_s
        return [s for s in samples if s.at >= since]


def _figures(samples: list[_Sample]) -> dict[str, Any]:
    errors = sum(not s.ok for s in samples)
    latencies = sorted(s.latency_ms for s in samples)
    if len(latencies) > 1:
        cuts = quantiles(latencies, n=100, method="inclusive")
        p50, p95 = cuts[49], cuts[94]
    else:
        p50 = p95 = latencies[0]
    return {
        "attempts": len(samples),
        "errors": errors,
        "success_rate": round((len(samples) - errors) / len(samples), 4),
        "latency_p50_ms": round(p50, 3),
        "latency_p95_ms": round(p95, 3),
        "status": _status(errors / len(samples)),
    }


def _status(error_ratio: float) -> str:
    if error_ratio >= 0.5:
        return "down"
    if error_ratio >= 0.1:
        return "degraded"
    return "operational"
