"""The chat request path after the edge has authenticated and parsed a request:
resolve model → response cache (a hit ends here: no provider, nothing held unless hits are
billed) → hold its worst-case cost → invoke provider → normalize usage → (the edge renders) →
settle the cost → store the answer in the cache → record. Dialect-independent: the OpenAI and
Anthropic edges translate in and out around it. The call's bookkeeping is `call.py`, a
streamed answer `stream.py`.

A hold is given back by structure: `_hold` pushes its clean-up on the call's exit stack, which
releases it (or settles what the caller's own error cost) on any exit that did not settle it —
an exception nobody foresaw included.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from time import perf_counter
from typing import Any, TypeVar

from gatewayz.billing.meter import Meter
from gatewayz.billing.pricing import Price
from gatewayz.cache.response_cache import CacheHit, ResponseCache
from gatewayz.cache.response_codec import StreamRecorder
from gatewayz.canonical.types import ChatRequest, ChatResponse, Usage
from gatewayz.errors import (
    GatewayError,
    InvalidRequest,
    RateLimited,
    Unsupported,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.stream import Replay, StreamSession
from gatewayz.pipeline.tokens import estimate_tokens, final_usage, prompt_chars
from gatewayz.reliability.breaker import CircuitBreakers
from gatewayz.reliability.health import PassiveHealth
from gatewayz.routing.balance import Balancer, Preferences
from gatewayz.routing.detect import Override, parse_override
from gatewayz.routing.failover import load_failover_policy
from gatewayz.routing.resolve import Explanation, Resolver, Route
from gatewayz.security.auth import Principal

T = TypeVar("T")
log = logging.getLogger("gatewayz.pipeline")


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
        deadline_s: float = 600.0,
        healthy_rate: float = 0.9,
        cache: ResponseCache | None = None,
        cache_billed_fraction: Decimal = Decimal(0),
    ) -> None:
        self.resolver = resolver
        self.meter = meter
        self.breakers = breakers
        self.chars_per_token = chars_per_token
        self.failover = load_failover_policy()
        self.health = PassiveHealth()
        self.balancer = Balancer(self.health, self.failover.splits, healthy_rate=healthy_rate)
        self.retries_429 = retries_429
        self.max_retry_wait_s = max_retry_wait_s
        self.deadline_s = deadline_s
        self.cache = cache or ResponseCache.off()
        self.cache_billed_fraction = cache_billed_fraction

    async def settle(self, call: Call, usage: Usage) -> None:
        await self.meter.settle(call.tab, usage)
        call.row["cost_nanos"] = 0 if call.tab is None else call.tab.charged_nanos

    async def _hold(self, call: Call, req: ChatRequest, prices: dict[str, Price]) -> None:
        """Hold the request's worst case; whatever ends the call with the hold still open gives
        it back (`abandon` by the refund rules; a normal end that left it open releases it)."""
        call.tab = await self.meter.open(call.principal, req, prices, call.ctx.request_id)
        if call.tab is None:
            return

        async def close(exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
            if call.tab is not None and call.tab.open:
                if exc is None:
                    log.error("request %s ended with its hold open: released", call.tab.id)
                    exc = UpstreamError("the request ended without settling")
                await self.abandon(call, exc)
            return False

        call.stack.push_async_exit(close)

    async def abandon(self, call: Call, exc: BaseException) -> None:
        """The request failed: release the hold or keep it, by the refund rules."""
        await self.meter.abandon(call.tab, exc)
        if call.tab is not None:
            call.row["cost_nanos"] = call.tab.charged_nanos

    def chain(self, model: str, override: str | dict[str, Any] | None = None) -> tuple[Route, ...]:
        """The providers a request for `model` may try, in the failover policy's order, or
        exactly the order an explicit override (the request's, or a model's row in
        `routing/aliases.toml`) asks for (before load balancing)."""
        return self._chain(model, parse_override(override))[1]

    def _chain(
        self, model: str, override: Override | None
    ) -> tuple[Explanation, tuple[Route, ...]]:
        # An override that only sorts changes no provider set: the default resolution stands.
        exp = self.resolver.explain(model, override if override and override.restricts else None)
        if exp.error is not None:
            raise exp.error
        if exp.override is not None or exp.exclusive:  # a request's or a data row's own order
            return exp, exp.routes
        return exp, self.failover.order(exp.routes, exp.canonical)

    def preferences(self, principal: Principal, requested: Any) -> Override | None:
        """The request's `provider` preferences over its key's defaults (field by field); a
        plain slug in the request pins the provider whatever the key says."""
        defaults = principal.record.get("provider_preferences")
        if defaults and (requested is None or isinstance(requested, dict)):
            requested = {**defaults, **(requested or {})}
        return parse_override(requested)

    def routes(self, call: Call, req: ChatRequest) -> tuple[tuple[Route, ...], dict[str, Price]]:
        """The request's providers in the order it tries them, and each one's price."""
        call.req = req
        call.row["model"] = req.model
        call.row["stream"] = req.stream
        # The explicit provider override and the cache control are ours, never forwarded upstream.
        override = self.preferences(call.principal, req.extra.pop("provider", None))
        cache_field = req.extra.pop("cache", None)
        exp, routes = self._chain(req.model, override)
        restriction = _restriction(override)
        call.plan = self.cache.plan(call.principal, req, exp.canonical, restriction, cache_field)
        prices = self.meter.price_routes(routes)
        routes = self._fitting(call, routes, prices, req)
        ov = override or exp.override  # the request's (or key's) preferences, else the data row's
        prefs = Preferences(ov.sort, ov.max_latency_ms, bool(ov.order)) if ov else Preferences()
        routes = self.balancer.order(routes, exp.canonical, prefs, prices)
        call.use(routes[0])
        return routes, prices

    def _fitting(
        self, call: Call, routes: tuple[Route, ...], prices: dict[str, Price], req: ChatRequest
    ) -> tuple[Route, ...]:
        """The routes whose context window (when the price data knows it) holds the prompt;
        none → 400 `context_length_exceeded`, before anything is held or sent."""
        windows = {slug: p.context for slug, p in prices.items() if p.context}
        if not windows:
            return routes
        need = call.prompt_tokens = estimate_tokens(prompt_chars(req), self.chars_per_token)
        fit = tuple(r for r in routes if windows.get(r.provider.slug, need) >= need)
        if not fit:
            raise InvalidRequest(
                f"The prompt (about {need} tokens) exceeds the context window of every provider "
                f"serving '{req.model}' (the largest holds {max(windows.values())} tokens).",
                code="context_length_exceeded",
                param="messages",
            )
        return fit

    async def _attempt(
        self,
        call: Call,
        req: ChatRequest,
        action: Callable[[Route], Awaitable[T]],
        routes: tuple[Route, ...],
        prices: dict[str, Price],
    ) -> T:
        """Hold the worst case, then try the chain (`routes()`): fail over on provider failures
        (401/402/403/404/5xx, timeouts, connect errors), retry 429 on the same provider with
        backoff, return 400 as is. Providers (or provider × model pairs) whose circuit breaker
        is open are skipped. Nothing outlives the request's deadline (`deadline_s` from its
        start): an attempt still running then is cancelled and the caller gets a 504."""
        await self._hold(call, req, prices)
        deadline = call.ctx.t0 + self.deadline_s
        last: GatewayError | None = None
        for route in routes:
            slug, native = route.provider.slug, route.native_id
            if (
                slug not in prices
                or not await self.breakers.allow(slug, native)
                or not await self.breakers.allow(slug)
            ):
                continue
            remaining = deadline - perf_counter()
            if remaining <= 0:
                last = self._deadline_passed()
                break
            call.use(route)
            started = perf_counter()
            try:
                async with asyncio.timeout(remaining) as budget:
                    result = await self._with_429_retries(call, route, action, deadline)
            except TimeoutError:
                if not budget.expired():
                    raise
                self._health(call, route, False, started)
                last = self._deadline_passed()
                break
            except Unsupported as err:  # nothing was sent: this provider cannot take it
                call.attempts -= 1
                last = last or err
                continue
            except GatewayError as err:
                if err.failover or isinstance(err, UpstreamError):  # the provider's failure
                    self._health(call, route, False, started)
                    await self._record_failure(route, err)
                if err.failover:
                    last = err
                    continue
                raise
            self._health(call, route, True, started)
            await self.breakers.record_success(slug, native)
            await self.breakers.record_success(slug)
            self.meter.answered_by(call.tab, route, prices[slug])
            return result
        raise last or UpstreamUnavailable(
            "Every provider serving this model is unavailable right now (circuit breakers "
            "open); retry shortly.",
            headers={"Retry-After": "30"},
        )

    def _deadline_passed(self) -> UpstreamTimeout:
        return UpstreamTimeout(
            f"No provider answered within the request deadline of {self.deadline_s:g} s.",
            code="deadline_exceeded",
        )

    async def _record_failure(self, route: Route, err: GatewayError) -> None:
        """A failed attempt counts against the provider × model breaker; and against the
        provider's, unless only the model is missing there (404)."""
        slug = route.provider.slug
        await self.breakers.record_failure(slug, route.native_id)
        if err.upstream_status != 404:
            await self.breakers.record_failure(slug)

    def _health(self, call: Call, route: Route, ok: bool, started: float) -> None:
        """Passive health: the attempt's outcome and its time to the provider's answer (for a
        stream, to its headers; its time to first token is added when that arrives)."""
        latency_ms = (perf_counter() - started) * 1000
        call.sample = self.health.record(route.provider.slug, route.native_id, ok, latency_ms)
        call.attempt_t0 = started

    async def _with_429_retries(
        self, call: Call, route: Route, action: Callable[[Route], Awaitable[T]], deadline: float
    ) -> T:
        for retry in range(self.retries_429 + 1):
            call.attempts += 1
            t = perf_counter()
            try:
                return await action(route)
            except RateLimited as err:
                wait = self._backoff(retry, err.headers.get("Retry-After"))
                if retry == self.retries_429 or wait is None or perf_counter() + wait >= deadline:
                    raise
                await asyncio.sleep(wait)
            finally:
                call.ctx.upstream_s += perf_counter() - t
        raise AssertionError("unreachable")

    def _backoff(self, retry: int, retry_after: str | None) -> float | None:
        """Retry-After when the provider sent one, else exponential with full jitter; None when
        the provider asks for longer than we hold a request (its 429 goes back at once)."""
        wait = retry_after_s(retry_after)
        if wait is None:
            return random.uniform(0, 0.25 * 2**retry)
        return max(0.0, wait) if wait <= self.max_retry_wait_s else None

    async def _cached(
        self, call: Call, req: ChatRequest, routes: tuple[Route, ...], prices: dict[str, Price]
    ) -> CacheHit | None:
        """The cache's answer, when it has one from a provider this request may use. A hit
        holds nothing unless hits are billed (`cache_billed_fraction` of what the cached answer
        costs at that provider's price, held and settled like any request)."""
        if call.plan is None:
            return None
        hit = await self.cache.lookup(call.plan, prices)
        if hit is None:
            return None
        route = next(r for r in routes if r.provider.slug == hit.answer.provider)
        call.use(route)
        call.cache = call.row["cache"] = hit.kind
        if self.cache_billed_fraction > 0:
            slug = route.provider.slug
            price = prices[slug].scaled(self.cache_billed_fraction)
            await self._hold(call, req, {slug: price})
            self.meter.answered_by(call.tab, route, price)
            if call.tab is not None:
                call.tab.description += f" (cache {hit.kind})"
        return hit

    async def complete(self, call: Call, req: ChatRequest) -> ChatResponse:
        """The answer, its usage normalized and its cost quoted (`usage.cost`); charged by
        `deliver` once the edge has rendered it. An empty answer (no text, no tool call, no
        output tokens) is refunded here, as an empty stream is."""

        async def send(route: Route) -> ChatResponse:
            adapter = route.provider.adapter
            assert adapter is not None
            return await adapter.send(req, route.native_id)

        routes, prices = self.routes(call, req)
        hit = await self._cached(call, req, routes, prices)
        if hit is not None:
            resp = hit.answer.response
        else:
            resp = await self._attempt(call, req, send, routes, prices)
        chars = sum(len(c.message.text()) for c in resp.choices)
        resp.usage = final_usage(resp.usage, req, chars, self.chars_per_token)
        call.set_usage(resp.usage)
        if call.route is not None and call.sample is not None:
            self.health.record_output(
                call.route.provider.slug,
                call.route.native_id,
                resp.usage.completion_tokens,
                call.sample.latency_ms / 1000,
            )
        if chars == 0 and not resp.usage.completion_tokens:
            await self.abandon(call, UpstreamError("empty answer"))
            call.plan = None  # never kept for the next request
        self.meter.quote(call.tab, resp.usage)
        if hit is not None:
            call.plan = None  # nothing new to store
        return resp

    async def deliver(self, call: Call, resp: ChatResponse) -> None:
        """The rendered answer is about to be sent: charge it, keep it for the next identical
        request (a cache that fails is only a miss next time, never a failed request)."""
        assert resp.usage is not None
        await self.settle(call, resp.usage)
        if call.plan is not None and call.route is not None:
            await self.store(call, resp)

    async def store(self, call: Call, resp: ChatResponse) -> None:
        assert call.plan is not None and call.route is not None
        try:
            await self.cache.save(call.plan, resp, call.route.provider.slug, call.route.native_id)
        except Exception:
            log.exception("the response cache failed to store an answer (a miss next time)")

    async def stream(self, call: Call, req: ChatRequest) -> StreamSession:
        """Open the upstream stream, failing over until one opens (or replay the cache's
        answer). Errors before the first byte raise here, so the edge can still answer with a
        proper status code."""

        async def open_stream(route: Route) -> Any:
            adapter = route.provider.adapter
            assert adapter is not None
            return await adapter.stream(req, route.native_id)

        routes, prices = self.routes(call, req)
        hit = await self._cached(call, req, routes, prices)
        if hit is not None:
            return StreamSession(self, call, Replay(hit.answer.response))
        upstream = await self._attempt(call, req, open_stream, routes, prices)
        call.stack.callback(upstream.abort)  # a no-op once released (read to the end)
        keep = call.plan is not None and call.plan.store
        return StreamSession(self, call, upstream, StreamRecorder() if keep else None)


def _restriction(override: Override | None) -> tuple[Any, ...] | None:
    """The providers a request may use, when it restricts them (part of its cache key)."""
    if override is None or not override.restricts:
        return None
    return (override.order, override.only, override.ignore, override.allow_fallbacks)


def retry_after_s(value: str | None) -> float | None:
    """A `Retry-After` header in seconds: delay-seconds or an HTTP-date (RFC 9110 §10.2.3);
    None when absent or unreadable."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()
