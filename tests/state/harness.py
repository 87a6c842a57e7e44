"""Test doubles shared by the state tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gatewayz.state import StateBackend


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    kind: str
    state: StateBackend
    # Lets `seconds` pass for the backend: fake clock for memory, real sleep for Redis.
    advance: Callable[[float], Awaitable[None]]
    # Another backend on the same store with another prefix (`suffix` distinguishes them).
    sibling: Callable[[str], StateBackend]
    opened: list[StateBackend] = field(default_factory=list)


class Flaky:
    """Wraps a backend; while `down`, every call fails with `error()` (after a yield, like I/O).
    Counts calls, to show which calls reached it."""

    name = "flaky"

    def __init__(self, inner: StateBackend, error: Callable[[], Exception]) -> None:
        self.inner = inner
        self.error = error
        self.down = False
        self.calls = 0

    def __getattr__(self, op: str) -> Callable[..., Awaitable[Any]]:
        target = getattr(self.inner, op)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            await asyncio.sleep(0)
            if self.down and op != "close":
                raise self.error()
            return await target(*args, **kwargs)

        return call
