"""`Periodic`: a background job that runs `run_once` every `interval_s` once started.

A failing round is logged (and reported: `report_failure`) and the job tries again next
interval: a background job never ends the loop, whatever goes wrong. `stop` cancels it and waits
for it to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable

log = logging.getLogger("gatewayz")

# Where failing rounds are reported, as `report_failure(exc, job=name)`: set by
# observability/error_reports.py while error reporting is on.
report_failure: Callable[..., None] | None = None


class Periodic(ABC):
    name = "background job"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def run_once(self) -> None:
        """One round of the job."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.run_once()
            except Exception as exc:
                log.warning(
                    "%s failed (retried in %g s)", self.name, self.interval_s, exc_info=True
                )
                if report_failure is not None:
                    report_failure(exc, job=self.name)
