"""Auth-cache invalidation across workers: a key change takes effect everywhere within about
one poll interval (default 0.25 s), although each worker caches authenticated keys for minutes.

A change (revoke, rotate, allowlist or limit edit, role change) is committed to the database
first, then `publish` forgets the key in this process and increments a shared epoch counter in
the state backend (Redis). Every worker polls that counter in a background task — one small GET
per interval, whatever the traffic, nothing on the request path — and on any change empties its
auth cache, so the next request re-reads the database. Key changes are rare; a full clear is
cheap and leaves no window for a missed message (unlike pub/sub, which drops messages while
disconnected).

Without shared state the guarantee is kept the other way: with one worker, local invalidation
is exact; with several workers on the memory backend, or while Redis is unreachable (the
resilient backend is degraded), each poll empties the cache, which bounds the staleness of any
worker by the poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gatewayz.security.auth import Authenticator
from gatewayz.state import StateBackend

log = logging.getLogger("gatewayz.auth")

EPOCH_KEY = "auth:epoch"


class AuthSync:
    def __init__(
        self, auth: Authenticator, state: StateBackend, *, poll_s: float, workers: int
    ) -> None:
        self._auth = auth
        self._state = state
        self._poll_s = poll_s
        self._shared = state.name != "memory"
        self._workers = workers
        self._seen: bytes | None = None
        self._task: asyncio.Task[None] | None = None
        self.clears = 0

    async def publish(self, key_hash: str | None = None) -> None:
        """Forget `key_hash` (None: every key) here now, and on every other worker soon."""
        self._auth.invalidate(key_hash)
        if not self._shared:
            return
        try:
            await self._state.incr(EPOCH_KEY)
        except Exception:  # degraded state: the pollers clear on every tick meanwhile
            log.warning("could not publish an auth-cache invalidation", exc_info=True)

    def start(self) -> None:
        if self._shared or self._workers > 1:
            self._task = asyncio.create_task(self._run(), name="auth-cache-sync")

    async def _run(self) -> None:
        if self._shared:
            with contextlib.suppress(Exception):
                self._seen = await self._state.get(EPOCH_KEY)
        while True:
            await asyncio.sleep(self._poll_s)
            await self.poll()

    async def poll(self) -> None:
        """One tick: clear the cache if the epoch moved or it cannot be trusted."""
        if not self._shared or getattr(self._state, "degraded", False):
            self._clear()
            return
        try:
            value = await self._state.get(EPOCH_KEY)
        except Exception:
            log.warning("auth-cache epoch unreadable; clearing the cache", exc_info=True)
            self._clear()
            return
        if value != self._seen:
            self._seen = value
            self._clear()

    def _clear(self) -> None:
        self.clears += 1
        self._auth.invalidate()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
