"""Passive health figures over a sliding window (unit level, injected clock)."""

from __future__ import annotations

from gatewayz.reliability.passive_health import PassiveHealth


def test_window_figures_and_status() -> None:
    now = [1000.0]
    health = PassiveHealth(window_s=60, clock=lambda: now[0])
    for i in range(10):
        health.record("p", "m", ok=i != 0, latency_ms=float(10 * (i + 1)))
    (row,) = health.models()
    assert (row["attempts"], row["errors"], row["success_rate"]) == (10, 1, 0.9)
    assert row["latency_p50_ms"] == 55.0 and row["status"] == "degraded"
    health.record("q", "m", ok=False, latency_ms=5.0)
    # One failure is too little to call a provider down; two of two are.
    assert {p["provider"]: p["status"] for p in health.providers()}["q"] == "operational"
    health.record("q", "m", ok=False, latency_ms=5.0)
    assert {p["provider"]: p["status"] for p in health.providers()} == {
        "p": "degraded",
        "q": "down",
    }
    now[0] += 61  # everything ages out of the window
    assert health.models() == [] and health.providers() == []
