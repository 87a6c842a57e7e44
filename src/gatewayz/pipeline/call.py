"""`Call`: one chat call as the steps see it — the caller, the request, its candidate routes
and prices, the route that answered, the money tab, the answer — and the request-log row it
leaves behind, whatever happens.

A call is an async context manager around one exit stack: what a step takes (the hold, the
upstream connection, the log row) is given back there, in reverse order, on every exit —
success, error, cancellation, a client gone mid-stream — because the step pushed its clean-up
when it took it, not because every branch remembers to."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import UTC, datetime
from decimal import Decimal
from time import perf_counter
from typing import TYPE_CHECKING, Any

from gatewayz.canonical.types import ChatRequest, Usage
from gatewayz.context import RequestContext
from gatewayz.errors import GatewayError
from gatewayz.money import usd_text
from gatewayz.observability.requests import Served
from gatewayz.reliability.passive_health import Sample
from gatewayz.routing.explanation import Route
from gatewayz.security.auth import Principal

if TYPE_CHECKING:
    from gatewayz.billing.pricing import Price
    from gatewayz.billing.tab import Tab
    from gatewayz.cache.response_cache import CachePlan
    from gatewayz.pipeline.answer import Answer
    from gatewayz.routing.detect import Override
    from gatewayz.routing.smart.pick import Decision


NO_DISCOUNT = Decimal(0)


class Call:
    __slots__ = (
        "answer",
        "attempt_t0",
        "attempts",
        "cache",
        "canonical",
        "ctx",
        "decision",
        "discount",
        "gone",
        "limits",
        "override",
        "plan",
        "prices",
        "principal",
        "prompt_tokens",
        "req",
        "route",
        "routes",
        "row",
        "sample",
        "stack",
        "tab",
        "ttft_s",
    )

    def __init__(self, ctx: RequestContext, endpoint: str) -> None:
        self.ctx = ctx
        self.principal: Principal | None = None  # once authenticated
        self.req: ChatRequest | None = None  # once parsed
        self.override: Override | None = None  # the request's (and key's) provider preferences
        self.canonical = ""  # the model's canonical id, once resolved
        self.routes: tuple[Route, ...] = ()  # the candidates, in the order they are tried
        self.prices: dict[str, Price] = {}  # each candidate provider's price
        self.decision: Decision | None = None  # a router's choice (pipeline/smart_route.py)
        self.discount = NO_DISCOUNT  # the share off every price (a batch's line: batch_discount)
        self.route: Route | None = None  # the route of the answer (or of the last attempt)
        self.tab: Tab | None = None
        self.answer: Answer | None = None
        self.ttft_s: float | None = None
        self.sample: Sample | None = None  # the last attempt's passive-health sample
        self.attempt_t0 = 0.0  # when the last attempt started (perf_counter)
        self.attempts = 0
        self.prompt_tokens: int | None = None  # the prompt's estimate, once made
        self.plan: CachePlan | None = None  # what the response cache does for it
        self.cache: str | None = None  # "hit" / "semantic" when the cache answered
        self.gone = False  # the client disconnected before the answer ended
        self.limits: list[tuple[bytes, bytes]] = []  # X-RateLimit-* once the call is counted
        self.stack = AsyncExitStack()
        self.row: dict[str, Any] = {
            "request_id": ctx.request_id,
            "user_id": None,
            "api_key_id": None,
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
            "cache": None,
        }

    async def __aenter__(self) -> Call:
        await self.stack.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool:
        return await self.stack.__aexit__(*exc)

    def use(self, route: Route) -> None:
        self.route = route
        self.row["provider"] = route.provider.slug
        self.row["native_model"] = route.native_id

    def waited_upstream(self, seconds: float) -> None:
        self.ctx.upstream_s += seconds

    def set_usage(self, usage: Usage) -> None:
        self.row["prompt_tokens"] = usage.prompt_tokens
        self.row["completion_tokens"] = usage.completion_tokens
        self.row["total_tokens"] = usage.total_tokens
        self.row["usage_estimated"] = usage.estimated
        if usage.invalid:  # a 200 whose provider reported nonsense usage: estimated, flagged
            self.row["error_code"] = "upstream_usage_invalid"

    @property
    def cost_header(self) -> tuple[bytes, bytes] | None:
        """`X-Gatewayz-Cost: <USD>` once the request is settled."""
        if self.row["cost_nanos"] is None:
            return None
        return (b"x-gatewayz-cost", usd_text(self.row["cost_nanos"]).encode())

    def fail(self, err: GatewayError) -> None:
        self.row["status_code"] = err.status
        self.row["error_code"] = err.code

    def disconnected(self) -> None:
        self.row["status_code"], self.row["error_code"] = 499, "client_disconnected"

    def served(self) -> Served:
        """The call as it ends, for the request log, the metrics and the access log."""
        ctx = self.ctx
        row = self.row
        row["latency_ms"] = latency = (perf_counter() - ctx.t0) * 1000
        row["upstream_ms"] = upstream = ctx.upstream_s * 1000
        row["overhead_ms"] = max(0.0, latency - upstream)
        row["ttft_ms"] = None if self.ttft_s is None else (self.ttft_s - ctx.t0) * 1000
        row["created_at"] = datetime.now(UTC)
        cache = self.cache or ("miss" if self.plan is not None else None)
        model = self.canonical or (self.req.model if self.req is not None else "")
        served = Served(row, model, self.attempts, cache)
        user = getattr(self.req, "user", None)  # a transcription has none
        if user:  # kept where a family has no field for it
            served.end_user = user[:256]
        usage = self.answer.usage if self.answer is not None else None
        if usage is not None:
            served.cached_tokens = usage.cached_tokens or 0
            served.reasoning_tokens = usage.reasoning_tokens or 0
        return served
