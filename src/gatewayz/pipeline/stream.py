"""A streamed chat answer: `StreamSession` turns the upstream (or a cached answer, `Replay`)
into batches of canonical chunks and settles the money when the stream ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from time import perf_counter
from typing import TYPE_CHECKING, Any

from gatewayz.cache.response_codec import StreamRecorder, replay
from gatewayz.canonical.types import ChatResponse, StreamChunk, Usage
from gatewayz.errors import UpstreamError
from gatewayz.money import nanos_to_usd
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.tokens import final_usage

if TYPE_CHECKING:
    from gatewayz.pipeline.chat import ChatPipeline


class Replay:
    """A stored answer as an upstream stream: its chunks in one batch, then its usage."""

    def __init__(self, resp: ChatResponse) -> None:
        self._chunks = [*replay(resp), StreamChunk([], resp.usage)]

    async def __aiter__(self) -> AsyncIterator[list[StreamChunk]]:
        yield self._chunks

    def abort(self) -> None:
        pass

    def release(self) -> None:
        pass


class StreamSession:
    """Iterate for batches of canonical chunks; usage-only upstream chunks are held back and
    one final usage chunk (real, else estimated, with the cost) ends the stream.

    Money: a completed stream is settled at its usage, an empty one released (refunded). An
    interrupted one is settled at what was produced when the client left (`settle_partial`),
    released when the provider failed (`refund`); `close` releases whatever is still held."""

    def __init__(
        self,
        pipeline: ChatPipeline,
        call: Call,
        upstream: Any,
        recorder: StreamRecorder | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.call = call
        self._upstream = upstream
        self._recorder = recorder  # assembles the answer for the response cache
        self._cpt = pipeline.chars_per_token
        self.usage: Usage | None = None
        self.produced_chars = 0

    async def batches(self) -> AsyncIterator[list[StreamChunk]]:
        reported: Usage | None = None
        chars = 0
        recorder = self._recorder
        async for batch in self._upstream:
            out = []
            for chunk in batch:
                if chunk.usage is not None:
                    reported = chunk.usage
                    if not chunk.choices:
                        continue
                    chunk.usage = None
                if recorder is not None:
                    recorder.add(chunk)
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
                    self._first_token()
                self.produced_chars = chars
                yield out
        self.produced_chars = chars
        assert self.call.req is not None
        self.usage = final_usage(reported, self.call.req, chars, self._cpt)
        self.call.set_usage(self.usage)
        self._throughput(self.usage.completion_tokens)
        if chars == 0 and not self.usage.completion_tokens:  # an empty stream: refunded
            await self.pipeline.abandon(self.call, UpstreamError("empty stream"))
            self.usage.cost = nanos_to_usd(0)
            recorder = None
        else:
            await self.pipeline.settle(self.call, self.usage)
        yield [StreamChunk([], self.usage)]
        # The stream completed: the answer it carried is kept for the next identical request.
        call = self.call
        if recorder is not None and call.plan is not None and call.route is not None:
            await self.pipeline.store(call, recorder.response(self.usage))

    def _first_token(self) -> None:
        call = self.call
        call.ttft_s = perf_counter()
        if call.sample is not None:  # passive health: the answering attempt's time to first token
            call.sample.ttft_ms = (call.ttft_s - call.attempt_t0) * 1000

    def _throughput(self, tokens: int) -> None:
        """Passive health: output tokens per second from the first token to the end."""
        route, first = self.call.route, self.call.ttft_s
        if route is not None and first is not None and self.call.cache is None:
            seconds = perf_counter() - first
            self.pipeline.health.record_output(
                route.provider.slug, route.native_id, tokens, seconds
            )

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
