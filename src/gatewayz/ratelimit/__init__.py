"""Three rate-limit layers (SPEC §2): IP (`api/ip_limit.py` counts with `RateLimiter.check_ip`,
tightened by `velocity`), key and anonymous (`limits`; the chat path's Limit step), and the
headers every limited response carries (`headers`)."""

from gatewayz.ratelimit.headers import Decision
from gatewayz.ratelimit.limits import (
    ANONYMOUS,
    KeyLimits,
    LimiterMetrics,
    RateLimiter,
    ip_hash,
    is_anonymous,
    key_limits,
)

__all__ = [
    "ANONYMOUS",
    "Decision",
    "KeyLimits",
    "LimiterMetrics",
    "RateLimiter",
    "ip_hash",
    "is_anonymous",
    "key_limits",
]
