"""`SingleFlight[K, V]`: concurrent callers of one key share one piece of work (a "flight").

* `run(key, work)`: the result of `work()`, run in a task of its own — unless a flight of `key`
  is under way, whose result (or exception) this caller shares. Callers await the task through
  `asyncio.shield`: a caller that goes away (cancelled, timed out) does not cancel the flight
  the others are waiting for.
* `start(key, work)`: the same without waiting: the flight's task (e.g. to refresh in the
  background while a stale value is served).
* A flight leaves the table as its work ends, before any other task runs: a call after that
  starts afresh. `forget(key)` (`clear()`: every key) detaches a flight sooner, e.g. after a
  write: its callers still get its result, the next call starts a new flight, and the work,
  once it has its result, can ask `current(key)` whether it is still the flight of its key
  (a result read before the write should not be stored).
* `pending()`: the tasks in flight (e.g. to wait for background refreshes).
* A flight's exception is always retrieved: a flight whose every caller went away logs no
  "exception was never retrieved".

The table is a dict of tasks: looking a key up costs one dictionary lookup; only a new flight
allocates (its task).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, key: object) -> bool:
        return key in self._tasks

    def get(self, key: K) -> asyncio.Task[V] | None:
        """The flight of `key` under way, if any (await it shielded to share it)."""
        return self._tasks.get(key)

    def start(self, key: K, work: Callable[[], Awaitable[V]]) -> asyncio.Task[V]:
        """The flight of `key`: the one under way, else a new task running `work()`."""
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fly(key, work))
            task.add_done_callback(_retrieve)
            if not task.done():  # an eager task factory may have run it to its end already
                self._tasks[key] = task
        return task

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        """The result of the flight of `key` (joined, or started with `work`), awaited shielded."""
        return await asyncio.shield(self.start(key, work))

    def current(self, key: K) -> bool:
        """Called from a flight's work: whether it is still the flight of `key` (not forgotten)."""
        return self._tasks.get(key) is asyncio.current_task()

    def forget(self, key: K) -> None:
        """Detach the flight of `key`: the next call starts a new one."""
        self._tasks.pop(key, None)

    def clear(self) -> None:
        """Detach every flight."""
        self._tasks.clear()

    def pending(self) -> list[asyncio.Task[V]]:
        """The flights under way (not those detached)."""
        return list(self._tasks.values())

    async def _fly(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        try:
            return await work()
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]


def _retrieve(task: asyncio.Task[object]) -> None:
    """Look at the exception of a finished flight, so that none goes unretrieved."""
    if not task.cancelled():
        task.exception()
