"""The chat request path after the edge has authenticated and parsed a request:
resolve model → hold its worst-case cost → invoke provider → normalize usage → settle the cost →
record. Dialect-independent: the OpenAI and Anthropic edges translate in and out around it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from time import perf_counter
from typing import Any, TypeVar

from gatewayz.billing.meter import Meter, Tab
from gatewayz.canonical.types import ChatRequest, ChatResponse, StreamChunk, Usage
from gatewayz.context import RequestContext
from gatewayz.errors import (
    GatewayError,
    RateLimited,
    UpstreamError,
    UpstreamUnavailable,
)
from gatewayz.money import nanos_to_usd, usd_text
from gatewayz.observability.request_log import RequestLog
from gatewayz.pipeline.tokens import final_usage
from gatewayz.reliability.breaker import CircuitBreakers
from gatewayz.reliability.health import PassiveHealth
from gatewayz.routing.failover import load_failover_policy
from gatewayz.routing.resolve import Resolver, Route
from gatewayz.security.auth import Principal

T = TypeVar("T")


class Call:
    """One chat call's bookkeeping: the request-log record it leaves behind, whatever happens."""

    __slots__ = ("attempts", "ctx", "principal", "req", "route", "row", "tab", "ttft_s")

    def __init__(self, ctx: RequestContext, principal: Principal, endpoint: str) -> None:
        self.ctx = ctx
        self.principal = principal
        self.req: ChatRequest | None = None
        self.route: Route | None = None
        self.tab: Tab | None = None
        self.ttft_s: float | None = None
        self.attempts = 0
        self.row: dict[str, Any] = {
            "request_id": ctx.request_id,
            "user_id": principal.user_id,
            "api_key_id": principal.api_key_id,
            "endpoint": endpoint,
            "model": "",
            "provider": None,
            "native_model": None,
            "stream": False,
            "status_code": 200,
            "error_code": None,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "usage_estimated": False,
            "cost_nanos": None,
        }

    def use(self, route: Route) -> None:
        self.route = route
        self.row["provider"] = route.provider.slug
        self.row["native_model"] = route.native_id

    def set_usage(self, usage: Usage) -> None:
        self.row["prompt_tokens"] = usage.prompt_tokens
        self.row["completion_tokens"] = usage.completion_tokens
        self.row["total_tokens"] = usage.total_tokens
        self.row["usage_estimated"] = usage.estimated

    @property
    def cost_header(self) -> tuple[bytes, bytes] | None:
        """`X-Gatewayz-Cost: <USD>` once the request is settled."""
        if self.row["cost_nanos"] is None:
            return None
        return (b"x-gatewayz-cost", usd_text(self.row["cost_nanos"]).encode())

    def fail(self, err: GatewayError) -> None:
        self.row["status_code"] = err.status
        self.row["error_code"] = err.code

    def finish(self, log: RequestLog) -> None:
        ctx = self.ctx
        row = self.row
        row["latency_ms"] = (perf_counter() - ctx.t0) * 1000
        row["upstream_ms"] = ctx.upstream_s * 1000
        row["overhead_ms"] = ctx.overhead_ms()
        row["ttft_ms"] = None if self.ttft_s is None else (self.ttft_s - ctx.t0) * 1000
        row["created_at"] = datetime.now(UTC)
        log.record(row)


class ChatPipeline:
    def __init__(
        self,
        resolver: Resolver,
        meter: Meter,
        breakers: CircuitBreakers,
        chars_per_token: int,
        *,
        retries_429: int = 2,
        max_retry_wait_s: float = 5.0,
    ) -> None:
        self.resolver = resolver
        self.meter = meter
        self.breakers = breakers
        self.chars_per_token = chars_per_token
        self.failover = load_failover_policy()
        self.health = PassiveHealth()
        self.retries_429 = retries_429
        self.max_retry_wait_s = max_retry_wait_s

    async def settle(self, call: Call, usage: Usage) -> None:
        await self.meter.settle(call.tab, usage)
        call.row["cost_nanos"] = 0 if call.tab is None else call.tab.charged_nanos

    async def abandon(self, call: Call, exc: BaseException) -> None:
        """The request failed: release the hold or keep it, by the refund rules."""
        await self.meter.abandon(call.tab, exc)
        if call.tab is not None:
            call.row["cost_nanos"] = call.tab.charged_nanos

    def chain(self, model: str, override: str | dict[str, Any] | None = None) -> tuple[Route, ...]:
        """The providers a request for `model` tries, in order: the resolver's candidates in
        the failover policy's order (`routing/failover.toml`), or exactly the order an explicit
        override (the request's, or a model's row in `routing/aliases.toml`) asks for."""
        exp = self.resolver.explain(model, override)
        if exp.error is not None:
            raise exp.error
        if exp.override is not None or exp.exclusive:  # a request's or a data row's own order
            return exp.routes
        return self.failover.order(exp.routes, exp.canonical)

    def routes(self, call: Call, req: ChatRequest) -> tuple[Route, ...]:
        call.req = req
        call.row["model"] = req.model
        call.row["stream"] = req.stream
        # The explicit provider override is ours, never forwarded upstream.
        routes = self.chain(req.model, req.extra.pop("provider", None))
        call.use(routes[0])
        return routes

    async def _attempt(
        self, call: Call, req: ChatRequest, action: Callable[[Route], Awaitable[T]]
    ) -> T:
        """Resolve, hold the worst case, then try the chain: fail over on provider failures
        (401/402/403/404/5xx, timeouts, connect errors), retry 429 on the same provider with
        backoff, return 400 as is. Providers whose circuit breaker is open are skipped."""
        routes = self.routes(call, req)
        prices = self.meter.price_routes(routes)
        call.tab = await self.meter.open(call.principal, req, prices, call.ctx.request_id)
        last: GatewayError | None = None
        for route in routes:
            slug = route.provider.slug
            if slug not in prices or not await self.breakers.allow(slug):
                continue
            call.use(route)
            started = perf_counter()
            try:
                result = await self._with_429_retries(call, route, action)
            except GatewayError as err:
                if isinstance(err, UpstreamError):
                    self._health(route, False, started)
                    await self.breakers.record_failure(slug)
                if err.failover:
                    last = err
                    continue
                await self.abandon(call, err)
                raise
            except BaseException as exc:
                await self.abandon(call, exc)
                raise
            self._health(route, True, started)
            await self.breakers.record_success(slug)
            self.meter.answered_by(call.tab, route, prices[slug])
            return result
        err = last or UpstreamUnavailable(
            "Every provider serving this model is unavailable right now (circuit breakers "
            "open); retry shortly.",
            headers={"Retry-After": "30"},
        )
        await self.abandon(call, err)
        raise err

    def _health(self, route: Route, ok: bool, started: float) -> None:
        """Passive health: the attempt's outcome and its time to the provider's answer (for a
        stream, to its headers)."""
        latency_ms = (perf_counter() - started) * 1000
        self.health.record(route.provider.slug, route.native_id, ok, latency_ms)

    async def _with_429_retries(
        self, call: Call, route: Route, action: Callable[[Route], Awaitable[T]]
    ) -> T:
        for retry in range(self.retries_429 + 1):
            call.attempts += 1
            t = perf_counter()
            try:
                return await action(route)
            except RateLimited as err:
                wait = self._backoff(retry, err.headers.get("Retry-After"))
                if retry == self.retries_429 or wait is None:
                    raise
                await asyncio.sleep(wait)
            finally:
                call.ctx.upstream_s += perf_counter() - t
        raise AssertionError("unreachable")

    def _backoff(self, retry: int, retry_after: str | None) -> float | None:
        """Retry-After when the provider sent one, else exponential with full jitter; None when
        the provider asks for longer than we hold a request (its 429 goes back at once)."""
        try:
            wait = float(retry_after) if retry_after is not None else None
        except ValueError:
            wait = None
        if wait is None:
            return random.uniform(0, 0.25 * 2**retry)
        return max(0.0, wait) if wait <= self.max_retry_wait_s else None

    async def complete(self, call: Call, req: ChatRequest) -> ChatResponse:
        async def send(route: Route) -> ChatResponse:
            adapter = route.provider.adapter
            assert adapter is not None
            return await adapter.send(req, route.native_id)

        resp = await self._attempt(call, req, send)
        chars = sum(len(c.message.text()) for c in resp.choices)
        resp.usage = final_usage(resp.usage, req, chars, self.chars_per_token)
        call.set_usage(resp.usage)
        await self.settle(call, resp.usage)
        return resp

    async def stream(self, call: Call, req: ChatRequest) -> StreamSession:
        """Open the upstream stream, failing over until one opens. Errors before the first
        byte raise here, so the edge can still answer with a proper status code."""

        async def open_stream(route: Route) -> Any:
            adapter = route.provider.adapter
            assert adapter is not None
            return await adapter.stream(req, route.native_id)

        upstream = await self._attempt(call, req, open_stream)
        return StreamSession(self, call, upstream)


class StreamSession:
    """Iterate for batches of canonical chunks; usage-only upstream chunks are held back and
    one final usage chunk (real, else estimated, with the cost) ends the stream.

    Money: a completed stream is settled at its usage, an empty one released (refunded). An
    interrupted one is settled at what was produced when the client left (`settle_partial`),
    released when the provider failed (`refund`); `close` releases whatever is still held."""

    def __init__(self, pipeline: ChatPipeline, call: Call, upstream: Any) -> None:
        self.pipeline = pipeline
        self.call = call
        self._upstream = upstream
        self._cpt = pipeline.chars_per_token
        self.usage: Usage | None = None
        self.produced_chars = 0

    async def batches(self) -> AsyncIterator[list[StreamChunk]]:
        reported: Usage | None = None
        chars = 0
        async for batch in self._upstream:
            out = []
            for chunk in batch:
                if chunk.usage is not None:
                    reported = chunk.usage
                    if not chunk.choices:
                        continue
                    chunk.usage = None
                for d in chunk.choices:
                    if d.content:
                        chars += len(d.content)
                    if d.reasoning:
                        chars += len(d.reasoning)
                    if d.tool_calls:
                        for tc in d.tool_calls:
                            chars += len(tc.arguments or "") + len(tc.name or "")
                out.append(chunk)
            if out:
                if self.call.ttft_s is None and chars:
                    self.call.ttft_s = perf_counter()
                self.produced_chars = chars
                yield out
        self.produced_chars = chars
        assert self.call.req is not None
        self.usage = final_usage(reported, self.call.req, chars, self._cpt)
        self.call.set_usage(self.usage)
        if chars == 0 and not self.usage.completion_tokens:  # an empty stream: refunded
            await self.pipeline.abandon(self.call, UpstreamError("empty stream"))
            self.usage.cost = nanos_to_usd(0)
        else:
            await self.pipeline.settle(self.call, self.usage)
        yield [StreamChunk([], self.usage)]

    async def settle_partial(self) -> None:
        """The client left mid-stream: record and charge (estimated) usage for what was
        produced."""
        if self.usage is None and self.call.req is not None:
            self.usage = final_usage(None, self.call.req, self.produced_chars, self._cpt)
            self.call.set_usage(self.usage)
            await self.pipeline.settle(self.call, self.usage)

    async def refund(self, err: BaseException) -> None:
        """The provider failed mid-stream: record what was produced, charge nothing, and count
        the failure against the provider (its breaker and passive health)."""
        if self.usage is None and self.call.req is not None:
            self.usage = final_usage(None, self.call.req, self.produced_chars, self._cpt)
            self.call.set_usage(self.usage)
        route = self.call.route
        if route is not None and isinstance(err, UpstreamError):
            self.pipeline.health.record(route.provider.slug, route.native_id, False, 0.0)
            await self.pipeline.breakers.record_failure(route.provider.slug)
        await self.pipeline.abandon(self.call, err)

    def abort(self) -> None:
        self._upstream.abort()

    def release(self) -> None:
        self._upstream.release()
