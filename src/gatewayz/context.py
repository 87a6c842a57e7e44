"""Per-request context shared by the edge middleware and the request path."""

from __future__ import annotations

from time import perf_counter


class RequestContext:
    __slots__ = ("request_id", "t0", "upstream_s")

    def __init__(self, request_id: str, t0: float) -> None:
        self.request_id = request_id
        self.t0 = t0
        self.upstream_s = 0.0

    def overhead_ms(self) -> float:
        return max(0.0, (perf_counter() - self.t0 - self.upstream_s) * 1000)
