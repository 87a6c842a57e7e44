"""Hot shared state: counters, rate-limit windows, breaker records, caches.

`build_state` picks the backend: memory only without Redis; with Redis, Redis backed by a small
in-memory fallback (LRU, 500 entries, 15 min TTL) that serves calls while Redis is unreachable.
"""

from __future__ import annotations

from collections.abc import Callable

from gatewayz.state.base import (
    BreakerRecord,
    HashValue,
    IncrItem,
    StateBackend,
    StateError,
    StateUnavailable,
    WindowResult,
)
from gatewayz.state.memory import MemoryState
from gatewayz.state.redis import RedisState
from gatewayz.state.resilient import ResilientState

__all__ = [
    "BreakerRecord",
    "HashValue",
    "IncrItem",
    "MemoryState",
    "RedisState",
    "ResilientState",
    "StateBackend",
    "StateError",
    "StateUnavailable",
    "WindowResult",
    "build_state",
]


def build_state(
    redis_url: str | None,
    prefix: str,
    fallback_max_entries: int = 500,
    fallback_ttl_s: float = 900,
    *,
    retry_after_s: float = 5.0,
    on_fallback: Callable[[str, Exception], None] | None = None,
    socket_timeout_s: float = 0.5,
) -> StateBackend:
    """MemoryState without `redis_url` (None or ""); else ResilientState(RedisState, a small
    MemoryState fallback)."""
    if not redis_url:
        return MemoryState(prefix=prefix)
    return ResilientState(
        RedisState(redis_url, prefix=prefix, socket_timeout_s=socket_timeout_s),
        MemoryState(prefix=prefix, max_entries=fallback_max_entries, default_ttl_s=fallback_ttl_s),
        retry_after_s=retry_after_s,
        on_fallback=on_fallback,
    )
