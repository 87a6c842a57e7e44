"""Per-request context shared by the edge middleware and the request path."""

from __future__ import annotations

from contextvars import ContextVar
from time import perf_counter

# The id of the request being served, for log lines (observability/log_config.py). Set and reset
# by the edge middleware around each request; the request path runs in that task (and tasks it
# starts copy it), so whatever it logs carries the id without being handed it.
REQUEST_ID: ContextVar[str | None] = ContextVar("gatewayz_request_id", default=None)


class RequestContext:
    __slots__ = ("request_id", "t0", "upstream_s")

    def __init__(self, request_id: str, t0: float) -> None:
        self.request_id = request_id
        self.t0 = t0
        self.upstream_s = 0.0

    def overhead_ms(self) -> float:
        return max(0.0, (perf_counter() - self.t0 - self.upstream_s) * 1000)
