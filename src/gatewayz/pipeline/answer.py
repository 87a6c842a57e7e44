"""A request's answer, as the steps after it and the edge see it: whole (`Whole`: one
ChatResponse, from the provider or the response cache) or streamed (`Streamed`: batches of
canonical chunks as they arrive from the provider, or a stored answer replayed). Either way its
usage is normalised once the answer is complete — the provider's when it reported a readable
one, else the estimate (CM-14) — and what was produced so far is known at any moment, so an
interrupted answer can be charged for what the client received."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from typing import Any

from gatewayz.cache.response_codec import StreamRecorder, replay
from gatewayz.canonical.types import ChatRequest, ChatResponse, StreamChunk, Usage
from gatewayz.pipeline.tokens import final_usage


class Answer(ABC):
    usage: Usage | None = None  # normalised, once the answer is complete
    produced_chars = 0  # text, reasoning and tool-call characters produced so far

    @property
    def empty(self) -> bool:
        """Complete, and nothing in it: no text, no tool call, no output tokens."""
        usage = self.usage
        return usage is not None and not self.produced_chars and not usage.completion_tokens

    @property
    def storable(self) -> bool:
        """Whether the whole answer can be had for the response cache."""
        return True

    def partial_usage(self, req: ChatRequest, chars_per_token: int) -> Usage:
        """The usage of what was produced so far (estimated when the answer did not end)."""
        return self.usage or final_usage(None, req, self.produced_chars, chars_per_token)

    @abstractmethod
    def response(self) -> ChatResponse:
        """The whole answer (for a stream: what it amounted to, once it ended)."""

    def batches(self) -> AsyncIterator[list[StreamChunk]]:
        raise TypeError(f"a {type(self).__name__} answer is not streamed")

    def release(self) -> None:  # noqa: B027 (a default: nothing to give back)
        """The answer was read to its end: give its connection back for reuse."""

    def abort(self) -> None:  # noqa: B027 (a default: nothing to drop)
        """Drop its connection now (a no-op once released)."""


class Whole(Answer):
    def __init__(self, resp: ChatResponse, req: ChatRequest, chars_per_token: int) -> None:
        self._resp = resp
        self.produced_chars = sum(len(c.message.text()) for c in resp.choices)
        resp.usage = self.usage = final_usage(resp.usage, req, self.produced_chars, chars_per_token)

    def response(self) -> ChatResponse:
        return self._resp

    async def batches(self) -> AsyncIterator[list[StreamChunk]]:
        """A stored answer replayed as a stream: its chunks in one batch."""
        yield replay(self._resp)


class Streamed(Answer):
    """Batches of canonical chunks from an upstream stream; usage-only chunks are held back
    (the edge ends the stream with the final usage, cost included)."""

    def __init__(
        self,
        upstream: Any,
        req: ChatRequest,
        chars_per_token: int,
        on_first_token: Callable[[], None],
        keep: bool,
    ) -> None:
        self._upstream = upstream
        self._req = req
        self._cpt = chars_per_token
        self._on_first_token = on_first_token
        self._recorder = StreamRecorder() if keep else None  # for the response cache

    async def batches(self) -> AsyncIterator[list[StreamChunk]]:
        reported: Usage | None = None
        chars = 0
        recorder = self._recorder
        first = True
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
                    for tc in d.tool_calls or ():
                        chars += len(tc.arguments or "") + len(tc.name or "")
                out.append(chunk)
            if out:
                self.produced_chars = chars
                if first and chars:
                    first = False
                    self._on_first_token()
                yield out
        self.produced_chars = chars
        self.usage = final_usage(reported, self._req, chars, self._cpt)

    def response(self) -> ChatResponse:
        if self._recorder is None or self.usage is None:
            raise RuntimeError("only a completed, recorded stream amounts to a response")
        return self._recorder.response(self.usage)

    @property
    def storable(self) -> bool:
        return self._recorder is not None

    def release(self) -> None:
        self._upstream.release()

    def abort(self) -> None:
        self._upstream.abort()
