"""One error tree. Each error knows its HTTP status, its OpenAI-style type and code, and whether
it is retryable or may fail over to another provider. Dialects render it at the edge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class GatewayError(Exception):
    status: int = 500
    type: str = "api_error"
    code: str | None = None
    retryable: bool = False
    failover: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        provider: str | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.upstream_status = upstream_status  # what the provider answered, if it did
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.param = param
        self.headers = headers or {}
        self.provider = provider

    def fields(self) -> dict[str, Any]:
        """Structured details beyond message/type/param/code, added to the dialect's error
        object (both SDKs keep unknown fields in the error's `body`)."""
        return {}


class InvalidRequest(GatewayError):
    status, type, code = 400, "invalid_request_error", "invalid_request"


class Unauthorized(GatewayError):
    status, type, code = 401, "authentication_error", "invalid_api_key"


class PermissionDenied(GatewayError):
    status, type, code = 403, "permission_error", "permission_denied"


class NotFound(GatewayError):
    status, type, code = 404, "not_found_error", "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, message: str, *, suggestions: Sequence[str] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.suggestions = tuple(suggestions)  # the closest served names ("Did you mean")

    def fields(self) -> dict[str, Any]:
        return {"suggestions": list(self.suggestions)} if self.suggestions else {}


class RequestTimeout(GatewayError):
    """The client sent its request head or body too slowly (api/http_protocol.py)."""

    status, type, code = 408, "invalid_request_error", "request_timeout"


class PayloadTooLarge(GatewayError):
    status, type, code = 413, "invalid_request_error", "request_too_large"


class RateLimited(GatewayError):
    status, type, code, retryable = 429, "rate_limit_error", "rate_limit_exceeded", True


class PaymentRequired(GatewayError):
    """Not enough credit (or an ended trial) for the request: nothing was sent upstream."""

    status, type, code = 402, "insufficient_quota", "insufficient_credits"


class SpendCapReached(GatewayError):
    """The plan's daily spend cap: a safety rail, lifted at 00:00 UTC (paying more won't help)."""

    status, type, code = 429, "insufficient_quota", "daily_spend_cap_reached"


class ServiceUnavailable(GatewayError):
    status, type, code = 503, "api_error", "service_unavailable"


class Unsupported(InvalidRequest):
    """This provider cannot take this request (tools, images, n > 1, …), found before anything
    is sent: the next provider of the chain is tried; if none can, the caller gets this 400."""

    code, failover = "unsupported_by_provider", True


class UpstreamError(GatewayError):
    """A provider failed (`upstream_status` None: it gave no HTTP answer at all)."""

    status, type, code = 502, "upstream_error", "upstream_error"


class UpstreamTimeout(UpstreamError):
    status, code, retryable, failover = 504, "upstream_timeout", True, True


class UpstreamUnavailable(UpstreamError):
    """Connect errors, dropped connections, 5xx: another provider may serve the request."""

    status, code, retryable, failover = 502, "upstream_unavailable", True, True


# Upstream status -> (error class, status we answer with, failover?) per SPEC.md §5:
# 401/402/403/404/502/503/504 fail over; 400 is the caller's error; 429 is retried, not failed over.
_UPSTREAM_MAP: dict[int, tuple[type[GatewayError], int, bool]] = {
    400: (InvalidRequest, 400, False),
    401: (UpstreamError, 502, True),
    402: (UpstreamError, 502, True),
    403: (UpstreamError, 502, True),
    404: (ModelNotFound, 404, True),
    408: (UpstreamTimeout, 504, True),
    413: (PayloadTooLarge, 413, False),
    422: (InvalidRequest, 400, False),
    429: (RateLimited, 429, False),
    502: (UpstreamUnavailable, 502, True),
    503: (UpstreamUnavailable, 503, True),
    504: (UpstreamTimeout, 504, True),
}


def from_upstream_status(
    upstream_status: int, message: str, provider: str, retry_after: str | None = None
) -> GatewayError:
    """Map a provider's HTTP error to the error we answer with."""
    cls, status, failover = _UPSTREAM_MAP.get(
        upstream_status,
        (UpstreamUnavailable, 502, True)
        if upstream_status >= 500
        else (InvalidRequest, 400, False),
    )
    headers = {"Retry-After": retry_after} if retry_after else None
    if not issubclass(cls, UpstreamError):  # the caller's problem: pass the message through
        text = message
    else:
        text = f"provider {provider} answered {upstream_status}: {message}"
    err = cls(
        text, status=status, headers=headers, provider=provider, upstream_status=upstream_status
    )
    err.failover = failover
    return err
