"""`rate_limit.approaching`: a key passed 80 % of its requests per minute, once per minute.

The rate-limit counter is one atomic increment per request, so exactly one request of a window
sees the count that first reaches 80 % of the limit: that one writes the event (in the
background, in its own transaction), and no other request pays anything. The token budgets
refuse at the request that would overshoot them and are not watched here.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any, Protocol

from gatewayz.storage.db import Database
from gatewayz.storage.errors import DB_ERRORS
from gatewayz.storage.ledger.outbox import add_event_async

log = logging.getLogger("gatewayz.webhooks")

APPROACHING = "rate_limit.approaching"
SHARE = 0.8


class Window(Protocol):
    """What an admission says of its window (`ratelimit.headers.Decision`)."""

    @property
    def scope(self) -> str: ...
    @property
    def limit(self) -> int: ...
    @property
    def remaining(self) -> int: ...
    @property
    def reset_s(self) -> float: ...


class Approaching:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._tasks: set[asyncio.Task[None]] = set()

    def admitted(
        self, user_id: str, key_id: str, scope: str, limit: int, remaining: int, reset_s: float
    ) -> None:
        """A request the key's requests-per-minute window admitted (`remaining` after it)."""
        if scope != "rpm" or limit < 2 or limit - remaining != math.ceil(limit * SHARE):
            return
        data = {
            "key_id": key_id,
            "layer": "rpm",
            "limit": limit,
            "used": limit - remaining,
            "resets_in_s": math.ceil(reset_s),
        }
        task = asyncio.create_task(self._write(user_id, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, user_id: str, data: dict[str, Any]) -> None:
        try:
            async with self.db.begin() as conn:
                await add_event_async(conn, APPROACHING, data, user_id=user_id)
        except DB_ERRORS as exc:  # a notice, not money: logged and dropped
            log.warning("rate_limit.approaching for key %s not recorded: %s", data["key_id"], exc)

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
