"""The IP layer (SPEC §2, layer 1): pure ASGI middleware, in front of authentication.

Per client IP (the socket peer, or `X-Forwarded-For` behind a trusted proxy), at most
`ip_rate_limit_rpm` requests in any 60 s (sliding window, shared state: one counter across
workers). Requests carrying a VALID API key are exempt (the key is checked through the cached
authenticator; a malformed or unknown key is not exempt). Health probes are not limited.

Velocity mode: when, over the last 60 s, at least `velocity_min_requests` responses were seen
and at least `velocity_error_ratio` of them were 5xx, the limit is multiplied by
`velocity_factor` for `velocity_cooldown_s`. The error rate is observed per worker (each worker
sees a representative share of the traffic); the counters it tightens are shared.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatewayz.api.asgi import header, send_bytes
from gatewayz.errors import GatewayError
from gatewayz.ratelimit.headers import Decision, has_limit_headers
from gatewayz.security.access import PRINCIPAL_SCOPE_KEY
from gatewayz.security.auth import bearer_token
from gatewayz.security.client_ip import client_ip, trusted_networks

if TYPE_CHECKING:
    from gatewayz.services import Services

log = logging.getLogger("gatewayz.ratelimit")

WINDOW_S = 60
# Health and readiness probes, and Stripe's webhook: it must always be answered 200 (bursts
# come from Stripe's few IPs; every delivery is signature-checked).
EXEMPT_PATHS = ("/health", "/ready", "/api/stripe/webhook")


class VelocityTracker:
    """Response statuses of the last 60 s in one-second buckets; decides velocity mode."""

    def __init__(
        self,
        min_requests: int,
        error_ratio: float,
        factor: float,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_requests = min_requests
        self.error_ratio = error_ratio
        self.factor = factor
        self.cooldown_s = cooldown_s
        self.clock = clock
        # Per second of the last 60 (slot = second % 60): [responses, 5xx], with running sums.
        self._buckets: list[list[int]] = [[0, 0] for _ in range(WINDOW_S)]
        self._last_sec: int | None = None
        self.total = 0
        self.errors = 0
        self.active_until = 0.0
        self.activations = 0

    def _advance(self, sec: int) -> None:
        """Drop the seconds that left the window since the last response (amortised O(1))."""
        last = self._last_sec
        if last is not None and sec <= last:
            return
        stale = range(WINDOW_S) if last is None else range(last + 1, min(sec, last + WINDOW_S) + 1)
        for second in stale:
            b = self._buckets[second % WINDOW_S]
            self.total -= b[0]
            self.errors -= b[1]
            b[0] = b[1] = 0
        self._last_sec = sec

    def record(self, status: int) -> None:
        now = self.clock()
        sec = int(now)
        self._advance(sec)
        b = self._buckets[sec % WINDOW_S]
        b[0] += 1
        self.total += 1
        if status >= 500:
            b[1] += 1
            self.errors += 1
        total, errors = self.total, self.errors
        if total >= self.min_requests and errors >= self.error_ratio * total:
            if not self.active:
                self.activations += 1
                log.warning(
                    "velocity mode: %d of %d responses in 60 s were 5xx; IP limits x%s for %ss",
                    errors,
                    total,
                    self.factor,
                    self.cooldown_s,
                )
            self.active_until = now + self.cooldown_s

    @property
    def active(self) -> bool:
        return self.clock() < self.active_until

    def limit(self, base: int) -> int:
        return max(1, int(base * self.factor)) if self.active else base


class IPRateLimitMiddleware:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services
        s = services.settings
        self.rpm = s.ip_rate_limit_rpm
        self.networks = trusted_networks(s.trusted_proxies)
        self.velocity = VelocityTracker(
            s.velocity_min_requests,
            s.velocity_error_ratio,
            s.velocity_factor,
            s.velocity_cooldown_s,
        )

    async def _has_valid_key(self, scope: Scope) -> bool:
        key = bearer_token(header(scope, b"authorization"), header(scope, b"x-api-key"))
        if key is None:
            return False
        try:
            # The endpoint reuses this principal (security.access.authorize): one check per call.
            scope[PRINCIPAL_SCOPE_KEY] = await self.services.auth.authenticate(key)
        except GatewayError:
            return False
        except Exception:  # the endpoint reports what is wrong; here it only means "not exempt"
            log.exception("IP layer: key check failed")
            return False
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PATHS):
            await self.app(scope, receive, send)
            return
        decision: Decision | None = None
        if not await self._has_valid_key(scope):
            ip = client_ip(scope, self.networks) or "unknown"
            decision = await self.services.limiter.check_ip(ip, self.velocity.limit(self.rpm))
            if not decision.allowed:
                await self._refuse(scope, send, decision)
                return
        velocity = self.velocity

        async def send_tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                velocity.record(message["status"])
                if decision is not None:
                    headers: list[Any] = list(message.get("headers", ()))
                    if not has_limit_headers(headers):  # a later layer's headers win
                        headers += decision.headers()
                        message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_tracked)

    async def _refuse(self, scope: Scope, send: Send, decision: Decision) -> None:
        # Imported here: the dialects import the request path, which imports this package.
        from gatewayz.api.anthropic_routes import ANTHROPIC
        from gatewayz.api.openai_routes import OPENAI

        dialect = ANTHROPIC if scope["path"].startswith("/v1/messages") else OPENAI
        body = dialect.render_error(decision.error())
        await send_bytes(send, 429, body, headers=decision.headers())
