"""The IP layer (SPEC §2, layer 1): pure ASGI middleware, in front of the routes.

Per client IP (the request context's: the socket peer, or `X-Forwarded-For` behind a trusted
proxy), at most `ip_rate_limit_rpm` requests in any 60 s (sliding window, shared state: one
counter across workers), tightened in velocity mode (`ratelimit/velocity.py`). Requests carrying
a VALID API key are exempt: the key is authenticated once for the request (`api.access`), and a
malformed or unknown key is not exempt. Health probes are not limited.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatewayz.api.access import authenticated
from gatewayz.api.anthropic_routes import ANTHROPIC
from gatewayz.api.asgi import send_bytes, speaks_anthropic
from gatewayz.api.openai_routes import OPENAI
from gatewayz.context import RequestContext
from gatewayz.errors import GatewayError
from gatewayz.ratelimit.headers import Decision, has_limit_headers
from gatewayz.ratelimit.velocity import VelocityTracker

if TYPE_CHECKING:
    from gatewayz.services import Services

log = logging.getLogger("gatewayz.ratelimit")
# Health and readiness probes, and Stripe's webhook: it must always be answered 200 (bursts
# come from Stripe's few IPs; every delivery is signature-checked). The web console's files
# (a dozen per visit, from memory; the page itself, `/console`, is counted).
EXEMPT_PATHS = ("/health", "/ready", "/api/stripe/webhook", "/console/")


class IPRateLimitMiddleware:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services
        s = services.settings
        self.rpm = s.ip_rate_limit_rpm
        self.velocity = VelocityTracker(
            s.velocity_min_requests,
            s.velocity_error_ratio,
            s.velocity_factor,
            s.velocity_cooldown_s,
        )

    async def _has_valid_key(self, ctx: RequestContext) -> bool:
        if ctx.key is None:
            return False
        try:  # once per request: the route finds the outcome on the context
            await authenticated(ctx, self.services.auth)
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
        ctx: RequestContext = scope["gw"]
        if not await self._has_valid_key(ctx):
            limit = self.velocity.limit(self.rpm)
            decision = await self.services.limiter.check_ip(ctx.ip, limit)
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
        dialect = ANTHROPIC if speaks_anthropic(scope["path"]) else OPENAI
        body = dialect.render_error(decision.error())
        await send_bytes(send, 429, body, headers=decision.headers())
