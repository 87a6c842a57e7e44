"""State in Redis, shared by every worker and host. Each operation is one round trip and atomic:
read-modify-write operations (incr, window_add, hset with its TTL) are Lua scripts, registered
once and run by EVALSHA. Semantics: see `gatewayz.state.base`.

Counter increments (`incr_many`: every rate-limit check) are coalesced: the increments asked for
while one script call is in flight go into the next one (each caller's keys and results kept
apart), so under load a worker makes one round trip per batch of requests, not per request.
Each counter's increment is still atomic; a batch is not one transaction across callers (it
need not be: each caller's check reads only its own counters)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gatewayz.ids import unique_hex
from gatewayz.state.base import (
    BreakerRecord,
    HashValue,
    IncrItem,
    WindowResult,
    check_breaker,
    check_window,
    encode_hash_value,
    ttl_ms,
)

# KEYS: counters; ARGV: amount_1, ttl_ms_1 ('' = none), amount_2, ttl_ms_2, ...
# The TTL is set when the key has none, i.e. when INCRBY just created it (or it was persistent).
_INCR_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('INCRBY', key, ARGV[2 * i - 1])
  local ttl = ARGV[2 * i]
  if ttl ~= '' and redis.call('PTTL', key) == -1 then
    redis.call('PEXPIRE', key, ttl)
  end
end
return out
"""

# Sliding-window log in a sorted set scored by microseconds.
# KEYS[1]: the log; ARGV: limit, window_us, now_us ('' = server TIME), unique member.
# Returns {allowed, admitted calls in the window, reset_after_us}.
_WINDOW_LUA = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[3])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  count = count + 1
  allowed = 1
end
local reset = window
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then
  reset = tonumber(oldest[2]) + window - now
  if reset < 0 then reset = 0 end
end
return {allowed, count, reset}
"""

# KEYS[1]: the hash; ARGV: ttl_ms ('' = keep the current expiry), field_1, value_1, ...
# A wrong-type error from HSET aborts the script before PEXPIRE touches the key.
_HSET_LUA = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if ARGV[1] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
"""


# One circuit-breaker transition (see StateBackend.breaker_update).
# KEYS[1]: the breaker record (hash: state, failures, opened_at); KEYS[2]: its half-open probe
# token. ARGV: ok ('1'/'0'), threshold, open_s, now (the caller's clock, kept as sent), ttl_ms.
# Returns {state, failures, opened_at} as strings (a Lua number reply would be truncated).
_BREAKER_LUA = """
local r = redis.call('HMGET', KEYS[1], 'state', 'failures', 'opened_at')
local state = r[1] or 'closed'
local failures = tonumber(r[2]) or 0
local opened = r[3] or '0.0'
local now = tonumber(ARGV[4])
local half_open = state == 'open' and now >= tonumber(opened) + tonumber(ARGV[3])
if state == 'open' and not half_open then
  return {state, tostring(failures), opened}
end
if ARGV[1] == '1' then
  if state == 'closed' and failures == 0 then
    return {state, '0', opened}
  end
  state = 'closed'
  failures = 0
  opened = '0.0'
else
  failures = failures + 1
  if half_open or failures >= tonumber(ARGV[2]) then
    state = 'open'
    opened = ARGV[4]
  end
end
redis.call('HSET', KEYS[1], 'state', state, 'failures', tostring(failures), 'opened_at', opened)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('DEL', KEYS[2])
return {state, tostring(failures), opened}
"""


@contextmanager
def _value_errors() -> Iterator[None]:
    """Redis's wrong-type and not-an-integer replies as ValueError (MemoryState raises those)."""
    try:
        yield
    except ResponseError as exc:
        text = str(exc)
        if "WRONGTYPE" in text or "not an integer" in text or "overflow" in text:
            raise ValueError(text) from exc
        raise


class RedisState:
    """State in Redis. An unreachable or stalled Redis surfaces as
    `redis.exceptions.ConnectionError` or `redis.exceptions.TimeoutError` within about
    `socket_timeout_s` (twice that if the call first waited for a free pooled connection);
    `ResilientState` turns those into a fallback. At most `max_connections` calls are in flight
    per instance; further calls wait for a connection."""

    name: str = "redis"

    def __init__(
        self,
        url: str,
        prefix: str = "gw:",
        socket_timeout_s: float = 0.5,
        *,
        max_connections: int = 100,
    ) -> None:
        self.prefix = prefix
        # A blocking pool: redis-py's default pool raises MaxConnectionsError (a
        # ConnectionError, which would look like an outage) once 100 calls are in flight; this
        # one makes extra calls wait up to `socket_timeout_s` for a free connection.
        # Fail fast: redis-py's default retries 3 times with backoff, also on timeouts. Retry
        # once, immediately, and only on connection errors (a pooled connection that died with
        # a Redis restart); a timeout means Redis is unreachable or stalled, so give up.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=socket_timeout_s,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 1, (RedisConnectionError,)),
        )
        self._redis: Redis = Redis.from_pool(pool)
        self._incr_script = self._redis.register_script(_INCR_LUA)
        self._window_script = self._redis.register_script(_WINDOW_LUA)
        self._hset_script = self._redis.register_script(_HSET_LUA)
        self._breaker_script = self._redis.register_script(_BREAKER_LUA)
        self._incrs: list[tuple[list[str], list[Any], asyncio.Future[list[int]]]] = []
        self._incr_sender: asyncio.Task[None] | None = None

    @property
    def client(self) -> Redis:
        """The underlying client (keys are NOT prefixed there)."""
        return self._redis

    async def get(self, key: str) -> bytes | None:
        with _value_errors():
            value: bytes | None = await self._redis.get(self.prefix + key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        with _value_errors():
            await self._redis.set(self.prefix + key, value, px=ttl_ms(ttl_s))

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float | None = None) -> bool:
        with _value_errors():
            done = await self._redis.set(self.prefix + key, value, px=ttl_ms(ttl_s), nx=True)
        return bool(done)

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        count: int = await self._redis.delete(*(self.prefix + k for k in keys))
        return count

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        (value,) = await self.incr_many([(key, amount, ttl_s)])
        return value

    async def incr_many(self, items: Sequence[IncrItem]) -> list[int]:
        """The counters after adding; one script call for every caller that asked while the
        previous call was in flight (the request path's rate-limit checks, coalesced)."""
        if not items:
            return []
        keys: list[str] = []
        args: list[Any] = []
        for key, amount, ttl_s in items:
            ms = ttl_ms(ttl_s)
            keys.append(self.prefix + key)
            args += [int(amount), "" if ms is None else ms]
        done = asyncio.get_running_loop().create_future()
        self._incrs.append((keys, args, done))
        if self._incr_sender is None or self._incr_sender.done():
            self._incr_sender = asyncio.create_task(self._send_incrs())
        values: list[int] = await done
        return values

    async def _send_incrs(self) -> None:
        while self._incrs:
            batch, self._incrs = self._incrs, []
            keys = [k for ks, _, _ in batch for k in ks]
            args = [a for _, a_s, _ in batch for a in a_s]
            try:
                with _value_errors():
                    values = await self._incr_script(keys=keys, args=args)
            except BaseException as exc:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            start = 0
            for ks, _, done in batch:
                if not done.done():
                    done.set_result([int(v) for v in values[start : start + len(ks)]])
                start += len(ks)

    async def window_add(
        self, key: str, limit: int, window_s: float, now: float | None = None
    ) -> WindowResult:
        check_window(limit, window_s)
        window_us = max(1, round(window_s * 1_000_000))
        now_us: int | str = "" if now is None else round(now * 1_000_000)
        member = unique_hex(8)
        with _value_errors():
            allowed, count, reset_us = await self._window_script(
                keys=[self.prefix + key], args=[limit, window_us, now_us, member]
            )
        return WindowResult(bool(allowed), max(0, limit - int(count)), int(reset_us) / 1_000_000)

    async def hget_all(self, key: str) -> dict[str, bytes]:
        with _value_errors():
            raw: dict[bytes, bytes] = await self._redis.hgetall(self.prefix + key)
        return {f.decode(): v for f, v in raw.items()}

    async def hset(
        self, key: str, mapping: Mapping[str, HashValue], ttl_s: float | None = None
    ) -> None:
        fields = {str(f): encode_hash_value(v) for f, v in mapping.items()}
        ms = ttl_ms(ttl_s)
        if not fields:
            return
        args: list[Any] = ["" if ms is None else ms]
        for field, value in fields.items():
            args += [field, value]
        with _value_errors():
            await self._hset_script(keys=[self.prefix + key], args=args)

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
        args = [
            1 if ok else 0,
            int(threshold),
            repr(float(open_s)),
            repr(float(now)),
            ttl_ms(ttl_s),
        ]
        with _value_errors():
            state, failures, opened_at = await self._breaker_script(
                keys=[self.prefix + key, self.prefix + probe_key], args=args
            )
        return BreakerRecord(state.decode(), int(failures), float(opened_at))

    async def ttl(self, key: str) -> float | None:
        ms: int = await self._redis.pttl(self.prefix + key)
        return None if ms < 0 else ms / 1000

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return False

    async def close(self) -> None:
        if self._incr_sender is not None:
            await asyncio.gather(self._incr_sender, return_exceptions=True)
        await self._redis.aclose()
