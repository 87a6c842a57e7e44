"""Step: invoke the providers, with failover (routing/fallback.py). A whole answer is sent for
and returned once it arrives; a stream is opened (failover until its first byte) and handed to
the edge, its connection aborted on the call's stack unless it was read to the end. A provider
that fails mid-stream counts against its breaker and passive health; a client that leaves does
not. When the answer is complete, its usage goes on the request-log row and passive health gets
the answer's output throughput (streams: from the first token; the time to it too). Each
attempt goes through `emulation.py`: what the provider's family lacks (n choices, one tool call
at a time) is done around its adapter."""

from __future__ import annotations

from functools import partial
from time import perf_counter
from types import TracebackType

from gatewayz.billing.meter import Meter
from gatewayz.canonical.types import ChatResponse
from gatewayz.errors import UpstreamError
from gatewayz.pipeline import emulation
from gatewayz.pipeline.answer import Streamed, Whole
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.steps import Step
from gatewayz.providers.base import EventStream
from gatewayz.routing.explanation import Route
from gatewayz.routing.fallback import Fallback


class Invoke(Step):
    span_name = "invoke"

    def __init__(self, fallback: Fallback, meter: Meter, chars_per_token: int) -> None:
        self.fallback = fallback
        self.meter = meter
        self.chars_per_token = chars_per_token

    async def run(self, call: Call) -> None:
        req = call.req
        assert req is not None
        cpt = self.chars_per_token

        async def send(route: Route) -> ChatResponse:
            return await emulation.send(route, req, cpt)

        async def open_stream(route: Route) -> EventStream:
            return await emulation.open_stream(route, req)  # type: ignore[no-any-return]

        fallback, started = self.fallback, call.ctx.t0
        if req.stream:
            upstream = await fallback.run(call.routes, call.prices, open_stream, call, started)
            keep = call.plan is not None and call.plan.store
            answer = Streamed(upstream, req, cpt, partial(self._first_token, call), keep)
            call.stack.push_async_exit(partial(self._close, call, answer))
        else:
            resp = await fallback.run(call.routes, call.prices, send, call, started)
            answer = Whole(resp, req, cpt)
        route = call.route
        assert route is not None
        self.meter.answered_by(call.tab, route, call.prices[route.provider.slug])
        call.answer = answer

    async def finish(self, call: Call) -> None:
        answer, route = call.answer, call.route
        assert answer is not None and answer.usage is not None
        call.set_usage(answer.usage)
        if route is None or call.cache or call.sample is None:
            return
        first = call.ttft_s  # streams: output throughput from the first token to the end
        seconds = perf_counter() - first if first is not None else call.sample.latency_ms / 1000
        tokens = answer.usage.completion_tokens
        self.fallback.health.record_output(route.key, route.native_id, tokens, seconds)

    def _first_token(self, call: Call) -> None:
        call.ttft_s = perf_counter()
        if call.sample is not None:  # passive health: the attempt's time to first token
            call.sample.ttft_ms = (call.ttft_s - call.attempt_t0) * 1000

    async def _close(
        self,
        call: Call,
        answer: Streamed,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        answer.abort()  # a no-op once the stream was read to its end and released
        route = call.route
        if isinstance(exc, UpstreamError) and not call.gone and route is not None:
            # The provider failed mid-stream: its breaker and passive health hear of it.
            self.fallback.health.record(route.key, route.native_id, False, 0.0)
            await self.fallback.failed(route, exc)
        return False
