"""Passive health: every provider attempt on the request path (and every active probe), per
provider × model.

`record` and `record_output` are a few dictionary and deque operations (no I/O, nothing
awaited); the figures are computed only when read, and `summary` (what routing reads on the
request path) is cached per provider × model for `summary_ttl_s`. Each worker keeps its own
window (the last `window_s` seconds, at most `max_samples` attempts per provider × model).

A sample's `source` is "request" (a user's request) or "probe" (an active health probe);
`last_request_at` tells the prober whether real traffic already measured a model recently.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from statistics import median, quantiles
from typing import Any

# Fewer attempts than this in the window: too few to call a provider degraded or down.
MIN_SAMPLES = 5


@dataclass(slots=True)
class Sample:
    at: float
    ok: bool
    latency_ms: float
    ttft_ms: float | None
    probe: bool


@dataclass(frozen=True, slots=True)
class Summary:
    """What routing needs of one provider × model over the window."""

    attempts: int
    success_rate: float
    latency_p50_ms: float | None  # of successful attempts; None without any
    tokens_per_s: float | None  # median output throughput of completed answers


class PassiveHealth:
    def __init__(
        self,
        *,
        window_s: float = 300.0,
        max_samples: int = 500,
        clock: Callable[[], float] = time.monotonic,
        summary_ttl_s: float = 1.0,
    ) -> None:
        self.window_s = window_s
        self.max_samples = max_samples
        self.clock = clock
        self.summary_ttl_s = summary_ttl_s
        self._samples: dict[tuple[str, str], deque[Sample]] = {}
        self._output: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        self._last_request: dict[tuple[str, str], float] = {}
        self._summaries: dict[tuple[str, str], tuple[float, Summary]] = {}

    def record(
        self,
        provider: str,
        model: str,
        ok: bool,
        latency_ms: float,
        *,
        ttft_ms: float | None = None,
        probe: bool = False,
    ) -> Sample:
        """One attempt: its outcome and its time to the provider's answer (a stream: to its
        headers; `ttft_ms`: to its first token, when known — the caller may set it later on
        the returned sample)."""
        key = (provider, model)
        samples = self._samples.get(key)
        if samples is None:
            samples = self._samples[key] = deque(maxlen=self.max_samples)
        now = self.clock()
        sample = Sample(now, ok, latency_ms, ttft_ms, probe)
        samples.append(sample)
        if not probe:
            self._last_request[key] = now
        return sample

    def record_output(self, provider: str, model: str, tokens: int, seconds: float) -> None:
        """A completed answer's output throughput (completion tokens over generation time)."""
        if tokens <= 0 or seconds <= 0:
            return
        key = (provider, model)
        out = self._output.get(key)
        if out is None:
            out = self._output[key] = deque(maxlen=self.max_samples)
        out.append((self.clock(), tokens / seconds))

    def clear(self) -> None:
        """Forget every sample (a fresh window)."""
        self._samples.clear()
        self._output.clear()
        self._last_request.clear()
        self._summaries.clear()

    def last_request_at(self, provider: str, model: str) -> float | None:
        """When (on `clock`) a user's request last tried this provider × model, if ever."""
        return self._last_request.get((provider, model))

    def summary(self, provider: str, model: str) -> Summary | None:
        """The window's figures for routing; None when nothing was recorded in the window."""
        key = (provider, model)
        now = self.clock()
        cached = self._summaries.get(key)
        if cached is not None and 0 <= now - cached[0] < self.summary_ttl_s:
            return cached[1]
        samples = self._recent(self._samples.get(key, ()))
        value: Summary | None = None
        if samples:
            ok = [s.latency_ms for s in samples if s.ok]
            rates = [r for at, r in self._output.get(key, ()) if at >= now - self.window_s]
            value = Summary(
                attempts=len(samples),
                success_rate=len(ok) / len(samples),
                latency_p50_ms=median(ok) if ok else None,
                tokens_per_s=median(rates) if rates else None,
            )
        self._summaries[key] = (now, value)
        return value

    def models(self) -> list[dict[str, Any]]:
        """Per provider × model over the window: attempts, errors, success rate, latency."""
        out = []
        for (provider, model), samples in sorted(self._samples.items()):
            recent = self._recent(samples)
            if recent:
                out.append({"provider": provider, "model": model, **_figures(recent)})
        return out

    def providers(self) -> list[dict[str, Any]]:
        by_provider: dict[str, list[Sample]] = {}
        for (provider, _), samples in self._samples.items():
            by_provider.setdefault(provider, []).extend(self._recent(samples))
        return [
            {"provider": provider, **_figures(samples)}
            for provider, samples in sorted(by_provider.items())
            if samples
        ]

    def _recent(self, samples: Iterable[Sample]) -> list[Sample]:
        since = self.clock() - self.window_s
        return [s for s in samples if s.at >= since]


def _figures(samples: list[Sample]) -> dict[str, Any]:
    errors = sum(not s.ok for s in samples)
    p50, p95 = _p50_p95([s.latency_ms for s in samples])
    ttfts = [s.ttft_ms for s in samples if s.ttft_ms is not None]
    ttft_p50, _ = _p50_p95(ttfts) if ttfts else (None, None)
    return {
        "attempts": len(samples),
        "errors": errors,
        "probes": sum(s.probe for s in samples),
        "success_rate": round((len(samples) - errors) / len(samples), 4),
        "latency_p50_ms": round(p50, 3),
        "latency_p95_ms": round(p95, 3),
        "ttft_p50_ms": None if ttft_p50 is None else round(ttft_p50, 3),
        "status": status_of(errors, len(samples)),
    }


def _p50_p95(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    if len(values) == 1:
        return values[0], values[0]
    cuts = quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94]


def status_of(errors: int, attempts: int) -> str:
    """operational; degraded at ≥ 10 % errors; down at ≥ 50 % — with at least MIN_SAMPLES
    attempts (fewer: down only when every one failed, else operational)."""
    if attempts == 0:
        return "operational"
    ratio = errors / attempts
    if attempts < MIN_SAMPLES:
        return "down" if errors == attempts and attempts >= 2 else "operational"
    if ratio >= 0.5:
        return "down"
    if ratio >= 0.1:
        return "degraded"
    return "operational"
