"""The hot shared-state interface: counters, rate-limit windows, small records and caches.

Three implementations share these semantics: `MemoryState` (one process), `RedisState` (shared
across processes, every multi-step operation atomic via Lua or MULTI/EXEC) and `ResilientState`
(Redis with an in-memory fallback while Redis is unreachable).

Semantics common to all backends:

* Every key is stored as `prefix + key`; the prefix is a constructor argument.
* `ttl_s` is in seconds and must be > 0 (resolution: 1 ms); `None` means no expiry (MemoryState
  applies its `default_ttl_s`, if any).
* `set`/`set_if_absent` (with or without `ttl_s`) replace any previous expiry, as Redis SET does.
* `incr` applies `ttl_s` when it creates the key, or when the key exists without an expiry; an
  existing expiry is never extended. Values are 64-bit signed integers stored as decimal bytes.
* `window_add` is a sliding-window LOG rate limiter (not a fixed window): the key holds the
  timestamps of the admitted calls of the last `window_s` seconds. A call is admitted while fewer
  than `limit` calls were admitted in `(now - window_s, now]`; refused calls are not recorded.
  `now` is seconds on any clock the caller uses consistently for that key; by default the
  backend's clock (Redis: the server's TIME, so all workers agree; memory: its `clock`).
* `breaker_update` is the one circuit-breaker transition (see its docstring): read, decide and
  write a breaker record (a hash with fields `state`, `failures`, `opened_at`) atomically, so
  that concurrent workers never lose a failure or both take the same transition.
* Using a key with the wrong kind of operation (e.g. `incr` on a hash) raises `ValueError`, as
  does `incr` on a value that is not an integer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

HashValue = bytes | str | int
IncrItem = tuple[str, int, float | None]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class StateError(Exception):
    """Base class of state-layer errors."""


class StateUnavailable(StateError):
    """Neither the primary nor the fallback backend could serve the call.

    Callers decide what that means; the rate limiter, for instance, fails open."""


class WindowResult(NamedTuple):
    """Outcome of `window_add`.

    `remaining`: calls still admissible in the current window after this one (0 when refused).
    `reset_after_s`: seconds until the oldest admitted call leaves the window, i.e. until
    `remaining` grows again; for a refused call, the earliest useful retry (Retry-After)."""

    allowed: bool
    remaining: int
    reset_after_s: float


class BreakerRecord(NamedTuple):
    """A circuit breaker's stored record, as `breaker_update` left it.

    `state`: "closed" or "open" (half-open is not stored: it is "open" once `open_s` has passed
    since `opened_at`). `failures`: consecutive failures. `opened_at`: when it last opened, on
    the caller's clock (0.0 if it never did since it last closed)."""

    state: str
    failures: int
    opened_at: float


@runtime_checkable
class StateBackend(Protocol):
    """Async key/value state with TTLs, atomic counters, rate-limit windows and hashes."""

    name: str

    async def get(self, key: str) -> bytes | None:
        """The value of a string key, or None if it is missing or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Store `value`, replacing any previous value (of any type) and expiry."""
        ...

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float | None = None) -> bool:
        """SET NX: store `value` only if the key does not exist; True if it was stored."""
        ...

    async def delete(self, *keys: str) -> int:
        """Remove keys of any type; returns how many existed."""
        ...

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        """Atomically add `amount` (a missing key counts as 0); returns the new value."""
        ...

    async def incr_many(self, items: Sequence[IncrItem]) -> list[int]:
        """`incr` for each `(key, amount, ttl_s)` in order, atomically, in one round trip."""
        ...

    async def window_add(
        self, key: str, limit: int, window_s: float, now: float | None = None
    ) -> WindowResult:
        """Sliding-window-log rate limit: admit and record one call if fewer than `limit` calls
        were admitted within the last `window_s` seconds."""
        ...

    async def hget_all(self, key: str) -> dict[str, bytes]:
        """All fields of a hash; {} if the key is missing."""
        ...

    async def hset(
        self, key: str, mapping: Mapping[str, HashValue], ttl_s: float | None = None
    ) -> None:
        """Set hash fields (str values UTF-8 encoded, ints as decimal). With `ttl_s` the whole
        hash expires `ttl_s` from now; without it, the current expiry is kept."""
        ...

    async def breaker_update(
        self,
        key: str,
        probe_key: str,
        ok: bool,
        threshold: int,
        open_s: float,
        now: float,
        ttl_s: float,
    ) -> BreakerRecord:
        """Record one call's outcome in the circuit-breaker hash `key`, atomically; returns the
        record after it. A missing key is closed with 0 failures. `now` and `opened_at` are on
        the caller's clock; the breaker is half-open when open and `now >= opened_at + open_s`.

        * ok, closed: failures reset to 0 (nothing is written if they already are 0).
        * ok, half-open: closed, failures 0.
        * failure, closed: failures + 1; at `threshold` it opens (`opened_at = now`).
        * failure, half-open: opens again, `opened_at = now` (the timer restarts).
        * either, open before `open_s` has passed: nothing changes (a late outcome of a call
          admitted before the breaker opened).

        Every write (so every transition, and in particular leaving half-open) deletes
        `probe_key`, the half-open probe's token, and sets the record's expiry to `ttl_s`."""
        ...

    async def ttl(self, key: str) -> float | None:
        """Seconds until the key expires; None if it is missing or has no expiry."""
        ...

    async def ping(self) -> bool:
        """True if the backend can serve calls now; never raises for connectivity problems."""
        ...

    async def close(self) -> None:
        """Release connections; the backend must not be used afterwards."""
        ...


def ttl_ms(ttl_s: float | None) -> int | None:
    """`ttl_s` as whole milliseconds (at least 1), validated."""
    if ttl_s is None:
        return None
    if not ttl_s > 0 or math.isinf(ttl_s):
        raise ValueError(f"ttl_s must be a positive finite number of seconds, got {ttl_s!r}")
    return max(1, math.ceil(ttl_s * 1000))


def check_window(limit: int, window_s: float) -> None:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit!r}")
    if not window_s > 0 or math.isinf(window_s):
        raise ValueError(f"window_s must be a positive finite number, got {window_s!r}")


def check_breaker(threshold: int, open_s: float, now: float) -> None:
    if threshold < 1:
        raise ValueError(f"threshold must be >= 1, got {threshold!r}")
    if not open_s >= 0 or math.isinf(open_s):
        raise ValueError(f"open_s must be a finite number >= 0, got {open_s!r}")
    if not math.isfinite(now):
        raise ValueError(f"now must be a finite number, got {now!r}")


def encode_hash_value(value: HashValue) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        raise TypeError("hash values must be bytes, str or int, not bool")
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"hash values must be bytes, str or int, not {type(value).__name__}")
