"""A primary backend (Redis) with a fallback (memory) for while the primary is unreachable.

Every call goes to the primary. When it fails with a connectivity error, the same call is served
by the fallback, `on_fallback(operation, error)` is called, and the primary is considered down:
for `retry_after_s` every call goes straight to the fallback. After that, ONE call probes the
primary (concurrent calls keep using the fallback meanwhile); if it succeeds the primary is back,
and the fallback is cleared (if it has `clear()`) so that the next outage does not start from
data that is stale by then. If the fallback fails too, the call raises `StateUnavailable`.

Errors that are not about connectivity (e.g. `ValueError` for a wrong-type key) propagate
unchanged from either backend: the fallback would fail the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gatewayz.state.base import (
    BreakerRecord,
    HashValue,
    IncrItem,
    StateBackend,
    StateUnavailable,
    WindowResult,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Errors meaning "the backend cannot be reached", as opposed to "the call was wrong".
# builtin TimeoutError covers asyncio.TimeoutError; OSError covers socket errors.
CONNECTIVITY_ERRORS: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    TimeoutError,
    OSError,
    StateUnavailable,
)


@runtime_checkable
class _Clearable(Protocol):
    def clear(self) -> None: ...


class _NoPong(StateUnavailable):
    """Internal: a backend's ping() returned False."""


class ResilientState:
    name: str = "resilient"

    def __init__(
        self,
        primary: StateBackend,
        fallback: StateBackend,
        retry_after_s: float = 5.0,
        on_fallback: Callable[[str, Exception], None] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.retry_after_s = retry_after_s
        self._on_fallback = on_fallback
        self._clock = clock
        self._down_until: float | None = None
        self._probing = False

    @property
    def degraded(self) -> bool:
        """True while calls are being served by the fallback."""
        return self._down_until is not None

    # ---- routing ---------------------------------------------------------------------
    def _claim_primary(self) -> tuple[bool, bool]:
        """(use the primary, this call is the recovery probe)."""
        if self._down_until is None:
            return True, False
        if self._probing or self._clock() < self._down_until:
            return False, False
        self._probing = True
        return True, True

    def _mark_down(self, op: str, exc: Exception) -> None:
        self._down_until = self._clock() + self.retry_after_s
        if self._on_fallback is not None:
            try:
                self._on_fallback(op, exc)
            except Exception:
                log.exception("state on_fallback callback failed")

    def _mark_up(self) -> None:
        self._down_until = None
        if isinstance(self.fallback, _Clearable):
            self.fallback.clear()

    async def _run(self, op: str, call: Callable[[StateBackend], Awaitable[T]]) -> T:
        use_primary, probe = self._claim_primary()
        if use_primary:
            try:
                result = await call(self.primary)
            except CONNECTIVITY_ERRORS as exc:
                self._mark_down(op, exc)
            except Exception:
                if probe:  # it answered, if only with an error: it is reachable again
                    self._mark_up()
                raise
            else:
                if probe:
                    self._mark_up()
                return result
            finally:
                if probe:
                    self._probing = False
        try:
            return await call(self.fallback)
        except CONNECTIVITY_ERRORS as exc:
            raise StateUnavailable(f"state {op}: primary and fallback both unavailable") from exc

    # ---- StateBackend ----------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        return await self._run("get", lambda b: b.get(key))

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        await self._run("set", lambda b: b.set(key, value, ttl_s))

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float | None = None) -> bool:
        return await self._run("set_if_absent", lambda b: b.set_if_absent(key, value, ttl_s))

    async def delete(self, *keys: str) -> int:
        return await self._run("delete", lambda b: b.delete(*keys))

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        return await self._run("incr", lambda b: b.incr(key, amount, ttl_s))

    async def incr_many(self, items: Sequence[IncrItem]) -> list[int]:
        return await self._run("incr_many", lambda b: b.incr_many(items))

    async def window_add(
        self, key: str, limit: int, window_s: float, now: float | None = None
    ) -> WindowResult:
        return await self._run("window_add", lambda b: b.window_add(key, limit, window_s, now))

    async def hget_all(self, key: str) -> dict[str, bytes]:
        return await self._run("hget_all", lambda b: b.hget_all(key))

    async def hset(
        self, key: str, mapping: Mapping[str, HashValue], ttl_s: float | None = None
    ) -> None:
        await self._run("hset", lambda b: b.hset(key, mapping, ttl_s))

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
        return await self._run(
            "breaker_update",
            lambda b: b.breaker_update(key, probe_key, ok, threshold, open_s, now, ttl_s),
        )

    async def ttl(self, key: str) -> float | None:
        return await self._run("ttl", lambda b: b.ttl(key))

    async def ping(self) -> bool:
        """True if the primary or, failing it, the fallback answers; updates `degraded`."""

        async def _ping(backend: StateBackend) -> bool:
            if await backend.ping():
                return True
            raise _NoPong(f"{backend.name} did not answer ping")

        try:
            return await self._run("ping", _ping)
        except StateUnavailable:
            return False

    async def close(self) -> None:
        try:
            await self.primary.close()
        finally:
            await self.fallback.close()
