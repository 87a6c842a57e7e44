"""The chat request path after the edge has authenticated and parsed a request:
resolve model → invoke provider → normalize usage → record. Dialect-independent: the OpenAI
edge (and later the Anthropic one) translates in and out around it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from gatewayz.canonical.types import ChatRequest, ChatResponse, StreamChunk, Usage
from gatewayz.context import RequestContext
from gatewayz.errors import GatewayError
from gatewayz.observability.request_log import RequestLog
from gatewayz.pipeline.tokens import final_usage
from gatewayz.routing.resolve import Resolver, Route
from gatewayz.security.auth import Principal


class Call:
    """One chat call's bookkeeping: the request-log record it leaves behind, whatever happens."""

    __slots__ = ("ctx", "req", "route", "row", "ttft_s")

    def __init__(self, ctx: RequestContext, principal: Principal, endpoint: str) -> None:
        self.ctx = ctx
        self.req: ChatRequest | None = None
        self.route: Route | None = None
        self.ttft_s: float | None = None
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
        }

    def set_usage(self, usage: Usage) -> None:
        self.row["prompt_tokens"] = usage.prompt_tokens
        self.row["completion_tokens"] = usage.completion_tokens
        self.row["total_tokens"] = usage.total_tokens
        self.row["usage_estimated"] = usage.estimated

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
    def __init__(self, resolver: Resolver, chars_per_token: int) -> None:
        self.resolver = resolver
        self.chars_per_token = chars_per_token

    def route(self, call: Call, req: ChatRequest) -> Route:
        call.req = req
        call.row["model"] = req.model
        call.row["stream"] = req.stream
        # The explicit provider override is ours, never forwarded upstream.
        override = req.extra.pop("provider", None)
        route = self.resolver.resolve(req.model, override)[0]
        call.route = route
        call.row["provider"] = route.provider.slug
        call.row["native_model"] = route.native_id
        return route

    async def complete(self, call: Call, req: ChatRequest) -> ChatResponse:
        route = self.route(call, req)
        adapter = route.provider.adapter
        assert adapter is not None
        t = perf_counter()
        try:
            resp = await adapter.send(req, route.native_id)
        finally:
            call.ctx.upstream_s += perf_counter() - t
        chars = sum(len(c.message.text()) for c in resp.choices)
        resp.usage = final_usage(resp.usage, req, chars, self.chars_per_token)
        call.set_usage(resp.usage)
        return resp

    async def stream(self, call: Call, req: ChatRequest) -> StreamSession:
        """Open the upstream stream. Errors before the first byte raise here, so the edge can
        still answer with a proper status code."""
        route = self.route(call, req)
        adapter = route.provider.adapter
        assert adapter is not None
        t = perf_counter()
        try:
            upstream = await adapter.stream(req, route.native_id)
        finally:
            call.ctx.upstream_s += perf_counter() - t
        return StreamSession(call, upstream, self.chars_per_token)


class StreamSession:
    """Iterate for batches of canonical chunks; usage-only upstream chunks are held back and
    one final usage chunk (real, else estimated) ends the stream."""

    def __init__(self, call: Call, upstream: Any, chars_per_token: int) -> None:
        self.call = call
        self._upstream = upstream
        self._cpt = chars_per_token
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
        yield [StreamChunk([], self.usage)]

    def settle_partial(self) -> None:
        """After an interrupted stream: record (estimated) usage for what was produced."""
        if self.usage is None and self.call.req is not None:
            self.usage = final_usage(None, self.call.req, self.produced_chars, self._cpt)
            self.call.set_usage(self.usage)

    def abort(self) -> None:
        self._upstream.abort()

    def release(self) -> None:
        self._upstream.release()
