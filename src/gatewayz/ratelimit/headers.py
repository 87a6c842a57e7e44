"""The outcome of one rate-limit check and the headers it puts on the response.

Every response on a limited route carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
`X-RateLimit-Reset` (seconds until the window that decided resets); a 429 also carries
`Retry-After` (seconds)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gatewayz.errors import RateLimited

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Decision:
    """`limit`, `remaining` and `reset_s` describe the window that decided: the refusing one
    for a refusal, the request-rate window for an admission. `scope` names it
    (`ip`, `rpm`, `tokens_per_day`, `tokens_per_month`, `anonymous`); `enforced` is False when
    the state backend failed and the request was let through (fail open)."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    scope: str
    enforced: bool = True

    @property
    def reset_header(self) -> str:
        return str(max(0, math.ceil(self.reset_s)))

    def header_items(self) -> list[tuple[str, str]]:
        items = [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(max(0, self.remaining))),
            ("X-RateLimit-Reset", self.reset_header),
        ]
        if not self.allowed:
            items.append(("Retry-After", str(max(1, math.ceil(self.reset_s)))))
        return items

    def headers(self) -> Headers:
        """Raw ASGI headers (lower-case names)."""
        return [(k.lower().encode(), v.encode()) for k, v in self.header_items()]

    def error(self) -> RateLimited:
        """The 429 for a refusal, carrying every header."""
        what = {
            "ip": "requests per minute from this IP address",
            "rpm": "requests per minute for this API key",
            "tokens_per_day": "tokens per day for this API key",
            "tokens_per_month": "tokens per month for this API key",
            "anonymous": "requests per minute for callers without an API key",
        }.get(self.scope, "requests")
        return RateLimited(
            f"Rate limit exceeded: {self.limit} {what}. "
            f"Retry after {max(1, math.ceil(self.reset_s))} s.",
            headers=dict(self.header_items()),
        )


def has_limit_headers(headers: Headers) -> bool:
    return any(k.lower() == b"x-ratelimit-limit" for k, _ in headers)
