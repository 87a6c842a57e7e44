"""Step: the response cache (cache/). Before any hold or provider call, a stored answer from a
provider this request may use answers it — no provider called, nothing held unless hits are
billed (`cache_billed_fraction` of what the answer costs at that provider's price, held and
settled like any request). When a fresh answer is complete it is stored for the next identical
request (never an empty one); a cache that fails is a miss next time, never a failed request.
The request field `cache` is ours: taken out of the request, never forwarded."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from gatewayz.cache.response_cache import ResponseCache
from gatewayz.pipeline.answer import Whole
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.hold import Hold
from gatewayz.pipeline.steps import Step
from gatewayz.routing.detect import Override

log = logging.getLogger("gatewayz.pipeline")


class Cache(Step):
    span_name = "cache lookup"

    def __init__(
        self, cache: ResponseCache, hold: Hold, billed_fraction: Decimal, chars_per_token: int
    ) -> None:
        self.cache = cache
        self.hold = hold
        self.billed_fraction = billed_fraction
        self.chars_per_token = chars_per_token

    async def run(self, call: Call) -> None:
        req, principal = call.req, call.principal
        assert req is not None and principal is not None
        requested = req.extra.pop("cache", None)
        plan = call.plan = self.cache.plan(
            principal, req, call.canonical, _restriction(call.override), requested
        )
        if plan is None:
            return
        hit = await self.cache.lookup(plan, call.prices)
        if hit is None:
            return
        route = next(r for r in call.routes if r.provider.slug == hit.answer.provider)
        call.use(route)
        call.cache = call.row["cache"] = hit.kind
        if self.billed_fraction > 0:
            slug = route.provider.slug
            price = call.prices[slug].scaled(self.billed_fraction)
            await self.hold.take(call, {slug: price})
            self.hold.meter.answered_by(call.tab, route, price)
            if call.tab is not None:
                call.tab.description += f" (cache {hit.kind})"
        call.answer = Whole(hit.answer.response, req, self.chars_per_token)

    async def finish(self, call: Call) -> None:
        answer, plan, route = call.answer, call.plan, call.route
        if call.cache or plan is None or not plan.store or answer is None or route is None:
            return
        if answer.empty or not answer.storable:
            return
        try:
            await self.cache.save(plan, answer.response(), route.provider.slug, route.native_id)
        except Exception:
            log.exception("the response cache failed to store an answer (a miss next time)")


def _restriction(override: Override | None) -> tuple[Any, ...] | None:
    """The providers a request may use, when it restricts them (part of its cache key)."""
    if override is None or not override.restricts:
        return None
    return (override.order, override.only, override.ignore, override.allow_fallbacks)
