"""Stored answers in Redis, shared by every worker: one key per entry (`{prefix}rc:{sha256}`,
with its own TTL) and one sorted set of last-use times (`{prefix}rc:lru`) that bounds them to
`max_entries` (least recently used first out). Each get and each put is one Lua script: one round
trip, atomic.

It uses the connection pool of the shared state's `RedisState` (its fail-fast timeouts: about
0.5 s at worst). After a connectivity error Redis is left alone for `retry_after_s` (calls fail
at once with `CacheUnavailable`), so an outage costs requests nothing but their cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gatewayz.state.redis import RedisState

# KEYS[1]: the entry, KEYS[2]: the LRU set. ARGV[1]: now (ms). A hit refreshes its use time.
_GET_LUA = """
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('ZADD', KEYS[2], 'XX', ARGV[1], KEYS[1])
end
return v
"""

# KEYS[1]: the entry, KEYS[2]: the LRU set. ARGV: value, ttl_ms, now_ms, max_entries, max_age_ms.
# Members not used for max_age (the longest TTL) have expired: dropped first. Then the least
# recently used entries beyond max_entries are evicted. Returns how many were evicted.
_PUT_LUA = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #old, 2 do
    redis.call('DEL', old[i])
  end
  return over
end
return 0
"""

CONNECTIVITY_ERRORS: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    TimeoutError,
    OSError,
)


class CacheUnavailable(Exception):
    """Redis failed recently: not tried again until the retry window has passed."""


class RedisBackoff:
    """`with backoff:` around a cache layer's Redis calls: after a connectivity error the layer
    leaves Redis alone for `retry_after_s` (the next calls raise `CacheUnavailable` at once)."""

    def __init__(self, what: str, retry_after_s: float, clock: Callable[[], float]) -> None:
        self.what = what
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._down_until = 0.0

    def __enter__(self) -> None:
        if self._down_until and self._clock() < self._down_until:
            raise CacheUnavailable(f"Redis failed recently; the {self.what} is skipped")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None and issubclass(kind, CONNECTIVITY_ERRORS):
            self._down_until = self._clock() + self.retry_after_s


class RedisResponseStore:
    name = "redis"

    def __init__(
        self,
        redis: RedisState,
        max_entries: int,
        max_ttl_s: float,
        *,
        retry_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._client = redis.client
        self._prefix = redis.prefix
        self.max_entries = max_entries
        self.max_ttl_ms = max(1, round(max_ttl_s * 1000))
        self._backoff = RedisBackoff("response cache", retry_after_s, clock)
        self._lru = f"{self._prefix}rc:lru"
        self._get = self._client.register_script(_GET_LUA)
        self._put = self._client.register_script(_PUT_LUA)

    def entry_key(self, key: str) -> str:
        return f"{self._prefix}rc:{key}"

    async def get(self, key: str) -> bytes | None:
        with self._backoff:
            value: bytes | None = await self._get(
                keys=[self.entry_key(key), self._lru], args=[_now_ms()]
            )
        return value

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        ttl_ms = max(1, round(ttl_s * 1000))
        args = [value, ttl_ms, _now_ms(), self.max_entries, self.max_ttl_ms]
        with self._backoff:
            await self._put(keys=[self.entry_key(key), self._lru], args=args)

    async def size(self) -> int:
        """Entries counted by the LRU set (expired ones included until evicted)."""
        count: int = await self._client.zcard(self._lru)
        return count


def _now_ms() -> int:
    return int(time.time() * 1000)
