"""Per-request context, built once by the edge middleware (`api/middleware.py`) and read by
everything after it: the request id, when it started, the client's IP, the API key it presented
(parsed from `Authorization: Bearer` or `x-api-key` here and nowhere else), the principal that
key authenticated as (once, whoever asks first: the IP layer or the route), and the time spent
waiting for providers."""

from __future__ import annotations

from contextvars import ContextVar
from time import perf_counter
from typing import Any

# The id of the request being served, for log lines (observability/log_config.py). Set and reset
# by the edge middleware around each request; the request path runs in that task (and tasks it
# starts copy it), so whatever it logs carries the id without being handed it.
REQUEST_ID: ContextVar[str | None] = ContextVar("gatewayz_request_id", default=None)

# The W3C trace-context headers (`traceparent`, `tracestate`) of the upstream attempt being made,
# for provider requests to carry (providers/base.py). Set only while an attempt's span is current
# and GATEWAYZ_TRACE_PROPAGATE_UPSTREAM is on (observability/tracing.py); else empty.
UPSTREAM_TRACE: ContextVar[tuple[tuple[bytes, bytes], ...]] = ContextVar(
    "gatewayz_upstream_trace", default=()
)


class RequestContext:
    __slots__ = ("auth", "ip", "key", "request_id", "t0", "upstream_s")

    def __init__(self, request_id: str, t0: float, *, ip: str = "", key: str | None = None) -> None:
        self.request_id = request_id
        self.t0 = t0
        self.ip = ip
        self.key = key
        # The authentication's outcome once made: a principal, or the error it raised.
        self.auth: Any = None
        self.upstream_s = 0.0

    def overhead_ms(self) -> float:
        return max(0.0, (perf_counter() - self.t0 - self.upstream_s) * 1000)


def bearer_token(authorization: bytes | None, x_api_key: bytes | None) -> str | None:
    """The API key from `Authorization: Bearer <key>` or `x-api-key: <key>`."""
    if authorization:
        scheme, _, value = authorization.partition(b" ")
        if scheme.lower() == b"bearer" and value.strip():
            return value.strip().decode("latin-1")
    if x_api_key and x_api_key.strip():
        return x_api_key.strip().decode("latin-1")
    return None
