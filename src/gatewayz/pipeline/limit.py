"""Step: the key and anonymous rate-limit layers (SPEC §2). A keyed call is counted against its
key's requests per minute and token budgets (the prompt's estimate must fit); a call without a
key may only use `:free` models and is counted per IP. Refused → 429 (Retry-After, X-RateLimit-*)
or 401 for an anonymous call to another model (audited). The tokens a call used are counted when
it ends, whatever ended it (pushed on the call's stack), in the limiter's next batch. The request
that takes a key past 80 % of its requests per minute writes `rate_limit.approaching`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gatewayz.billing.pricing import FREE_SUFFIX, is_free_model
from gatewayz.errors import Unauthorized
from gatewayz.observability.audit import AuditLog
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.steps import Step
from gatewayz.pipeline.tokens import estimate_tokens, prompt_chars
from gatewayz.ratelimit.limits import RateLimiter, is_anonymous
from gatewayz.webhooks.approaching import Approaching


class Limit(Step):
    span_name = "rate_limit"

    def __init__(
        self,
        limiter: RateLimiter,
        audit: AuditLog,
        chars_per_token: int,
        approaching: Approaching | None = None,
        estimate: Callable[[Any], int] | None = None,
    ) -> None:
        self.limiter = limiter
        self.audit = audit
        self.chars_per_token = chars_per_token
        self.approaching = approaching
        # The request's estimated input tokens (the token budgets): a chat prompt's by default.
        self.estimate = estimate or self._prompt_tokens

    def _prompt_tokens(self, req: Any) -> int:
        return estimate_tokens(prompt_chars(req), self.chars_per_token)

    async def run(self, call: Call) -> None:
        principal, req = call.principal, call.req
        assert principal is not None and req is not None
        if is_anonymous(principal):
            if not is_free_model(req.model):
                err = Unauthorized(
                    "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'. "
                    f"Without a key, only '{FREE_SUFFIX}' models are available."
                )
                self.audit.event(
                    "auth_failed",
                    severity="warning",
                    ip=call.ctx.ip,
                    path=call.row["endpoint"],
                    detail={"reason": err.message, "key_presented": False},
                )
                raise err
            decision = await self.limiter.check_anonymous(call.ctx.ip)
        else:
            decision = await self.limiter.check_key(principal, self.estimate(req))
            call.stack.callback(self._count_tokens, call)
            if decision.allowed and self.approaching is not None:
                d = decision
                self.approaching.admitted(
                    principal.user_id,
                    principal.api_key_id,
                    d.scope,
                    d.limit,
                    d.remaining,
                    d.reset_s,
                )
        if not decision.allowed:
            raise decision.error()
        call.limits = decision.headers()

    def _count_tokens(self, call: Call) -> None:
        # A cached answer used no provider tokens: it does not count against token limits.
        tokens = 0 if call.cache else call.row["total_tokens"]
        assert call.principal is not None
        self.limiter.add_tokens(call.principal, tokens)  # written in the next batch
