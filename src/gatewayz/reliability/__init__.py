"""Provider reliability: circuit breakers (SPEC §5)."""

from __future__ import annotations

from gatewayz.reliability.breaker import BreakerState, CircuitBreakers

__all__ = ["BreakerState", "CircuitBreakers"]
