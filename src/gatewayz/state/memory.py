"""In-process state: a dict with expiry and LRU eviction. Same semantics as `RedisState` within
one process (see `gatewayz.state.base`). Methods are coroutines for interface compatibility but
never await, so each call is atomic with respect to other tasks on the event loop."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Mapping, Sequence

from gatewayz.lru import LRU
from gatewayz.state.base import (
    INT64_MAX,
    INT64_MIN,
    BreakerRecord,
    HashValue,
    IncrItem,
    WindowResult,
    check_breaker,
    check_window,
    encode_hash_value,
    ttl_ms,
)

# bytes: a string value; int: a counter (read back as decimal bytes); dict: a hash;
# list: a sorted sliding-window log of timestamps.
_Value = bytes | int | dict[str, bytes] | list[float]


class _Entry:
    __slots__ = ("expires_at", "value")

    def __init__(self, value: _Value, expires_at: float | None) -> None:
        self.value = value
        self.expires_at = expires_at


def _wrong_type(key: str) -> ValueError:
    return ValueError(f"WRONGTYPE: key {key!r} holds the wrong kind of value")


def _parse_int(key: str, raw: bytes) -> int:
    """Redis's rule: only canonical decimal 64-bit integers count as integers."""
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or str(value).encode() != raw:
        raise ValueError(f"value of {key!r} is not an integer")
    return value


class MemoryState:
    """State in one process's memory.

    * `max_entries`: when exceeded, the least recently used keys are evicted.
    * `default_ttl_s`: expiry for keys written without a TTL (None: such keys never expire).
    * `clock`: seconds, monotonic; injectable for tests.
    * Expired keys are dropped when touched, and by a full sweep at most every
      `sweep_interval_s` (run on the next call after that)."""

    name: str = "memory"

    def __init__(
        self,
        prefix: str = "",
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        default_ttl_s: float | None = None,
        sweep_interval_s: float = 5.0,
    ) -> None:
        self._data: LRU[str, _Entry] = LRU(max_entries)  # validates max_entries
        ttl_ms(default_ttl_s)  # validates
        self.prefix = prefix
        self.max_entries = max_entries
        self.default_ttl_s = default_ttl_s
        self._clock = clock
        self._sweep_interval_s = sweep_interval_s
        self._last_sweep = clock()

    def __len__(self) -> int:
        """Stored entries, including expired ones not yet swept."""
        return len(self._data)

    @property
    def evictions(self) -> int:
        """Keys evicted to stay within `max_entries`."""
        return self._data.evictions

    def clear(self) -> None:
        self._data.clear()

    # ---- internals -------------------------------------------------------------------
    def _now(self) -> float:
        now = self._clock()
        if now - self._last_sweep >= self._sweep_interval_s:
            self._last_sweep = now
            expired = [
                k for k, e in self._data.items() if e.expires_at is not None and e.expires_at <= now
            ]
            for k in expired:
                self._data.pop(k)
        return now

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._data.get(key)  # the most recently used now (dropped below if expired)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= now:
            self._data.pop(key)
            return None
        return entry

    def _expiry(self, ttl_s: float | None, now: float) -> float | None:
        ms = ttl_ms(self.default_ttl_s if ttl_s is None else ttl_s)  # 1 ms resolution, as Redis
        return None if ms is None else now + ms / 1000

    def _store(self, key: str, value: _Value, expires_at: float | None) -> _Entry:
        entry = _Entry(value, expires_at)
        self._data.put(key, entry)  # beyond max_entries the least recently used keys go
        return entry

    def _incr(self, key: str, amount: int, ttl_s: float | None, now: float) -> int:
        entry = self._live(key, now)
        if entry is None:
            current = 0
        elif isinstance(entry.value, int):
            current = entry.value
        elif isinstance(entry.value, bytes):
            current = _parse_int(key, entry.value)
        else:
            raise _wrong_type(key)
        result = current + amount
        if not INT64_MIN <= result <= INT64_MAX:
            raise ValueError(f"increment of {key!r} would overflow")
        if entry is None:
            self._store(key, result, self._expiry(ttl_s, now))
        else:
            entry.value = result
            if ttl_s is not None and entry.expires_at is None:
                entry.expires_at = self._expiry(ttl_s, now)
        return result

    # ---- StateBackend ----------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        k = self.prefix + key
        entry = self._live(k, self._now())
        if entry is None:
            return None
        if isinstance(entry.value, bytes):
            return entry.value
        if isinstance(entry.value, int):
            return str(entry.value).encode()
        raise _wrong_type(k)

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        now = self._now()
        self._store(self.prefix + key, bytes(value), self._expiry(ttl_s, now))

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float | None = None) -> bool:
        k = self.prefix + key
        now = self._now()
        expires_at = self._expiry(ttl_s, now)
        if self._live(k, now) is not None:
            return False
        self._store(k, bytes(value), expires_at)
        return True

    async def delete(self, *keys: str) -> int:
        now = self._now()
        count = 0
        for key in keys:
            k = self.prefix + key
            if self._live(k, now) is not None:
                self._data.pop(k)
                count += 1
        return count

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        return self._incr(self.prefix + key, amount, ttl_s, self._now())

    async def incr_many(self, items: Sequence[IncrItem]) -> list[int]:
        now = self._now()
        for _key, _amount, ttl_s in items:
            ttl_ms(ttl_s)  # validate everything before changing anything
        return [self._incr(self.prefix + key, amount, ttl_s, now) for key, amount, ttl_s in items]

    async def window_add(
        self, key: str, limit: int, window_s: float, now: float | None = None
    ) -> WindowResult:
        check_window(limit, window_s)
        k = self.prefix + key
        clock_now = self._now()
        at = clock_now if now is None else now
        entry = self._live(k, clock_now)
        log: list[float] = []
        if entry is not None:
            if not isinstance(entry.value, list):
                raise _wrong_type(k)
            log = entry.value
        del log[: bisect.bisect_right(log, at - window_s)]
        allowed = len(log) < limit
        if allowed:
            bisect.insort(log, at)
            if entry is None:
                entry = self._store(k, log, None)
            entry.expires_at = clock_now + window_s
        elif entry is not None and not log:
            self._data.pop(k)
        reset = max(0.0, log[0] + window_s - at) if log else window_s
        return WindowResult(allowed, max(0, limit - len(log)), reset)

    async def hget_all(self, key: str) -> dict[str, bytes]:
        k = self.prefix + key
        entry = self._live(k, self._now())
        if entry is None:
            return {}
        if not isinstance(entry.value, dict):
            raise _wrong_type(k)
        return dict(entry.value)

    async def hset(
        self, key: str, mapping: Mapping[str, HashValue], ttl_s: float | None = None
    ) -> None:
        k = self.prefix + key
        now = self._now()
        fields = {str(f): encode_hash_value(v) for f, v in mapping.items()}
        expires_at = self._expiry(ttl_s, now)
        entry = self._live(k, now)
        if entry is None:
            if fields:
                self._store(k, fields, expires_at)
            return
        if not isinstance(entry.value, dict):
            raise _wrong_type(k)
        if fields:
            entry.value.update(fields)
            if ttl_s is not None:
                entry.expires_at = expires_at

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
        check_breaker(threshold, open_s, now)
        ttl_ms(ttl_s)  # validates
        k = self.prefix + key
        clock_now = self._now()
        entry = self._live(k, clock_now)
        fields: dict[str, bytes] = {}
        if entry is not None:
            if not isinstance(entry.value, dict):
                raise _wrong_type(k)
            fields = entry.value
        state = fields.get("state", b"closed").decode()
        failures = int(fields.get("failures", b"0"))
        opened_at = float(fields.get("opened_at", b"0"))
        half_open = state == "open" and now >= opened_at + open_s
        if state == "open" and not half_open:
            return BreakerRecord(state, failures, opened_at)
        if ok:
            if state == "closed" and failures == 0:
                return BreakerRecord(state, failures, opened_at)
            state, failures, opened_at = "closed", 0, 0.0
        else:
            failures += 1
            if half_open or failures >= threshold:
                state, opened_at = "open", float(now)
        record = {
            "state": state.encode(),
            "failures": str(failures).encode(),
            "opened_at": repr(opened_at).encode(),
        }
        self._store(k, record, self._expiry(ttl_s, clock_now))
        self._data.pop(self.prefix + probe_key)
        return BreakerRecord(state, failures, opened_at)

    async def ttl(self, key: str) -> float | None:
        now = self._now()
        entry = self._live(self.prefix + key, now)
        if entry is None or entry.expires_at is None:
            return None
        return max(0.0, round(entry.expires_at - now, 3))

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()
