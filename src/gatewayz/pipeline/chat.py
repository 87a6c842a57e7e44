"""The chat request path after the edge has authenticated the caller and parsed the request,
as its list of steps (pipeline/steps.py):

    Limit   → rate limits (key, or anonymous `:free` only); tokens counted when the call ends
    Routes  → candidate providers and their prices, fitted to the prompt, balanced (for a
              `router:*` name: the router's models, ranked — pipeline/smart_route.py)
    Cache   → a stored answer ends the request here (nothing held unless hits are billed)
    Hold    → the most the request can cost, held (402 before any provider call)
    Invoke  → the providers, with failover (routing/fallback.py): the answer, whole or streamed

and, once the answer is complete, in reverse: Invoke (usage on the log row, passive health),
Hold (charge once, or refund an empty answer), Cache (store it). Dialect-independent: the OpenAI
and Anthropic edges translate in and out around it (api/chat_endpoint.py).
"""

from __future__ import annotations

from typing import Any

from gatewayz.billing.meter import Meter
from gatewayz.cache.response_cache import ResponseCache
from gatewayz.observability.audit import AuditLog
from gatewayz.observability.tracing import Tracing
from gatewayz.pipeline.cache import Cache
from gatewayz.pipeline.hold import Hold
from gatewayz.pipeline.invoke import Invoke
from gatewayz.pipeline.limit import Limit
from gatewayz.pipeline.media import MediaHold, MediaInvoke, MediaRoutes, media_tokens
from gatewayz.pipeline.route import Routes
from gatewayz.pipeline.smart_route import SmartRoutes
from gatewayz.pipeline.steps import Steps
from gatewayz.ratelimit.limits import RateLimiter
from gatewayz.reliability.breaker import CircuitBreakers
from gatewayz.reliability.passive_health import PassiveHealth
from gatewayz.routing.balance import Balancer
from gatewayz.routing.explanation import Route
from gatewayz.routing.failover import load_failover_policy
from gatewayz.routing.fallback import FailoverRules, Fallback
from gatewayz.routing.resolve import Resolver
from gatewayz.settings import Settings
from gatewayz.webhooks.approaching import Approaching


class ChatPipeline:
    """The chat steps, built once; `steps` runs a call through them."""

    def __init__(
        self,
        settings: Settings,
        resolver: Resolver,
        meter: Meter,
        breakers: CircuitBreakers,
        limiter: RateLimiter,
        audit: AuditLog,
        cache: ResponseCache | None = None,
        tracing: Tracing | None = None,
        approaching: Approaching | None = None,
    ) -> None:
        cpt = settings.chars_per_token
        self.health = PassiveHealth()
        policy = load_failover_policy()
        balancer = Balancer(self.health, policy.splits, healthy_rate=settings.balance_healthy_rate)
        rules = FailoverRules(
            retries_429=settings.upstream_429_retries,
            max_retry_wait_s=settings.upstream_429_max_wait_s,
            deadline_s=settings.request_deadline_s,
        )
        tracing = tracing or Tracing()
        self.fallback = Fallback(rules, breakers, self.health, tracing)
        self.routes = Routes(resolver, policy, balancer, meter, cpt)
        self.routes.smart = SmartRoutes(self.routes, self.health)
        hold = Hold(meter, cpt)
        cache = cache or ResponseCache.off()
        self.steps = Steps(
            [
                Limit(limiter, audit, cpt, approaching),
                self.routes,
                Cache(cache, hold, settings.response_cache_billed_fraction, cpt),
                hold,
                Invoke(self.fallback, meter, cpt),
            ],
            tracing,
        )
        # Embeddings, images, audio (pipeline/media.py): the same limits, resolution, breakers
        # and failover; their own routes filter, hold and invocation.
        self.media = Steps(
            [
                Limit(limiter, audit, cpt, approaching, lambda req: media_tokens(req, cpt)),
                MediaRoutes(resolver, policy, balancer, meter, cpt),
                MediaHold(meter, cpt),
                MediaInvoke(self.fallback, meter, cpt),
            ],
            tracing,
        )

    def chain(self, model: str, override: str | dict[str, Any] | None = None) -> tuple[Route, ...]:
        """The providers a request for `model` may try, before load balancing."""
        return self.routes.chain(model, override)
