"""The key and anonymous layers at the chat endpoints: who may call, counted where."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import Scope

from gatewayz.api.asgi import header
from gatewayz.canonical.types import ChatRequest
from gatewayz.errors import Unauthorized
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.tokens import estimate_tokens, prompt_chars
from gatewayz.ratelimit.headers import Headers
from gatewayz.ratelimit.limits import FREE_SUFFIX, is_anonymous, is_free_model
from gatewayz.security.auth import Principal, bearer_token
from gatewayz.security.client_ip import client_ip, trusted_networks

if TYPE_CHECKING:
    from gatewayz.services import Services


def presents_key(scope: Scope) -> bool:
    """Whether the caller sent an API key at all (valid or not: authentication decides)."""
    return bearer_token(header(scope, b"authorization"), header(scope, b"x-api-key")) is not None


async def admit(
    services: Services, scope: Scope, principal: Principal, call: Call, req: ChatRequest
) -> Headers:
    """Count the call against its layer; the X-RateLimit-* headers for the response.

    Raises Unauthorized for an anonymous caller asking for a model that is not `:free`, and
    RateLimited (429 with Retry-After and the headers) when a limit is exceeded."""
    limiter = services.limiter
    if is_anonymous(principal):
        call.row["user_id"] = call.row["api_key_id"] = None
        ip = client_ip(scope, trusted_networks(services.settings.trusted_proxies)) or "unknown"
        if not is_free_model(req.model):
            err = Unauthorized(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'. "
                f"Without a key, only '{FREE_SUFFIX}' models are available."
            )
            services.audit.event(
                "auth_failed",
                severity="warning",
                ip=ip,
                path=scope.get("path"),
                detail={"reason": err.message, "key_presented": False},
            )
            raise err
        decision = await limiter.check_anonymous(ip)
    else:
        estimate = estimate_tokens(prompt_chars(req), services.settings.chars_per_token)
        decision = await limiter.check_key(principal, estimate)
    if not decision.allowed:
        raise decision.error()
    return decision.headers()
