"""A small in-process event bus (one per worker): `subscribe(type, handler)`, `emit(type, data)`.

An event is `{"id": "evt_…", "type": …, "created_at": ISO-8601 UTC, "data": {…}}`; `data`
should be JSON-ready (webhook delivery will serialise it). `emit` never blocks and never raises
on the caller: each handler runs as its own task on the running loop, with its own copy of the
event, and a handler's failure is logged. Subscribing to `"*"` receives every type. The last
`history` events are kept for inspection (`recent`).

Events emitted today: `model.degraded` and `model.recovered` (reliability/incidents.py).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("gatewayz.events")

Event = dict[str, Any]
Handler = Callable[[Event], Awaitable[None]]

ALL = "*"


class EventBus:
    def __init__(self, *, history: int = 100) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._recent: deque[Event] = deque(maxlen=history)
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, event_type: str, handler: Handler) -> None:
        """Call `handler(event)` for every later event of `event_type` ("*": every type)."""
        self._handlers.setdefault(event_type, []).append(handler)

    def unsubscribe(self, event_type: str, handler: Handler) -> None:
        handlers = self._handlers.get(event_type, [])
        if handler in handlers:
            handlers.remove(handler)

    def emit(self, event_type: str, data: Mapping[str, Any]) -> Event:
        """Record the event and schedule its handlers; returns the event."""
        event: Event = {
            "id": f"evt_{secrets.token_hex(12)}",
            "type": event_type,
            "created_at": datetime.now(UTC).isoformat(),
            "data": dict(data),
        }
        self._recent.append(event)
        handlers = [*self._handlers.get(event_type, ()), *self._handlers.get(ALL, ())]
        if not handlers:
            return event
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.error("event %s (%s): no running event loop; handlers skipped", event_type, event)
            return event
        for handler in handlers:
            task = loop.create_task(self._deliver(handler, copy.deepcopy(event)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return event

    def recent(self, event_type: str | None = None) -> list[Event]:
        """The kept events, oldest first (only those of `event_type` when given)."""
        return [
            copy.deepcopy(e) for e in self._recent if event_type is None or e["type"] == event_type
        ]

    async def drain(self, timeout_s: float | None = None) -> None:
        """Wait until every handler scheduled so far has finished (or `timeout_s` passed)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Let running handlers finish for up to `timeout_s`, then cancel the rest."""
        await self.drain(timeout_s)
        pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning("event bus stopped: %d handlers cancelled", len(pending))

    @staticmethod
    async def _deliver(handler: Handler, event: Event) -> None:
        try:
            await handler(event)
        except Exception:
            log.exception("event %s (%s): handler %r failed", event["type"], event["id"], handler)
