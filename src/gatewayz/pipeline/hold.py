"""Step: price and hold. Before any provider is called, the most the request can cost at the
dearest candidate is held (billing/meter.py: 402 or 429 here when it does not fit; admin
accounts hold nothing; n choices from a family that answers one are n whole requests). When
the answer is complete it is charged once, in full — or, empty, refunded. The hold's clean-up
is pushed on the call's stack when it is taken: a hold still open when the call ends is settled
at what the client received if it left mid-answer, at nothing for a request the provider
refused as the caller's error (4xx), and released in every other case (the provider failed, the
gateway failed, the request was cancelled)."""

from __future__ import annotations

import logging
from functools import partial
from types import TracebackType

from gatewayz.billing.meter import Meter
from gatewayz.billing.pricing import Price
from gatewayz.canonical.adapt import fans_out
from gatewayz.errors import UpstreamError
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.steps import Step

log = logging.getLogger("gatewayz.pipeline")


class Hold(Step):
    span_name = "hold"

    def __init__(self, meter: Meter, chars_per_token: int) -> None:
        self.meter = meter
        self.chars_per_token = chars_per_token

    async def run(self, call: Call) -> None:
        await self.take(call, call.prices)

    async def take(self, call: Call, prices: dict[str, Price]) -> None:
        """Hold the worst case at `prices` (the cache step holds a billed hit this way)."""
        req = call.req
        assert call.principal is not None and req is not None
        fanned = {r.provider.slug for r in call.routes if fans_out(req, r.provider.family)}
        call.tab = await self.meter.open(call.principal, req, prices, call.ctx.request_id, fanned)
        if call.tab is not None:
            call.stack.push_async_exit(partial(self._close, call))

    async def finish(self, call: Call) -> None:
        answer, tab = call.answer, call.tab
        assert answer is not None and answer.usage is not None
        if answer.empty:  # nothing produced: refunded, streamed or not (usage.cost is 0)
            await self.meter.release(tab)
            self.meter.quote(tab, answer.usage)
        else:
            await self.meter.settle(tab, answer.usage)
        call.row["cost_nanos"] = 0 if tab is None else tab.charged_nanos

    async def _close(
        self,
        call: Call,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        tab = call.tab
        if tab is None or not tab.open:
            return False
        if call.gone and call.answer is not None and call.req is not None:
            # The client left mid-answer: it pays for what it received.
            usage = call.answer.partial_usage(call.req, self.chars_per_token)
            call.set_usage(usage)
            await self.meter.settle(tab, usage)
        else:
            if exc is None:
                log.error("request %s ended with its hold open: released", tab.id)
                exc = UpstreamError("the request ended without settling")
            await self.meter.abandon(tab, exc)
        call.row["cost_nanos"] = tab.charged_nanos
        return False
