"""One attempt at one provider, with what its family lacks done around its adapter
(`canonical/fidelity.py` says what; `canonical/adapt.py` rewrites the request):

- `n` > 1 where the family answers one choice: n requests in parallel, merged into n choices
  (streams: their events interleaved as they come, choice i from request i). Each request is
  billed: the usage is their sum (a request that reported none counts at its estimate), and the
  hold covered n prompts (`billing/meter.py`). One failing fails the attempt (failover).
- `parallel_tool_calls: false` where the family cannot say it: the first tool call is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from gatewayz.canonical.adapt import (
    fans_out,
    first_call_chunk,
    first_call_only,
    keeps_first_call,
    prepare,
)
from gatewayz.canonical.types import ChatRequest, ChatResponse, StreamChunk, Usage
from gatewayz.pipeline.tokens import estimate_usage
from gatewayz.routing.explanation import Route


async def send(route: Route, req: ChatRequest, chars_per_token: int) -> ChatResponse:
    adapter, family = route.adapter, route.provider.family
    assert adapter is not None
    out = prepare(req, family)
    if fans_out(req, family):
        answers = await _all([adapter.send(out, route.native_id) for _ in range(req.n)])
        resp = merge(answers, out, chars_per_token)
    else:
        resp = await adapter.send(out, route.native_id)
    return first_call_only(resp) if keeps_first_call(req, family) else resp


async def open_stream(route: Route, req: ChatRequest) -> Any:
    adapter, family = route.adapter, route.provider.family
    assert adapter is not None
    out = prepare(req, family)
    if fans_out(req, family):
        streams = await _all([adapter.stream(out, route.native_id) for _ in range(req.n)])
        stream: Any = Merged(streams)
    else:
        stream = await adapter.stream(out, route.native_id)
    return FirstCallOnly(stream) if keeps_first_call(req, family) else stream


async def _all(calls: list[Awaitable[Any]]) -> list[Any]:
    """Every call's result; if one fails, the others are cancelled (or, opened streams,
    dropped) and its error is raised."""
    tasks = [asyncio.ensure_future(c) for c in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                result = await t
                abort = getattr(result, "abort", None)
                if abort is not None:
                    abort()
        raise


def merge(answers: list[ChatResponse], req: ChatRequest, chars_per_token: int) -> ChatResponse:
    """n one-choice answers as one answer of n choices; the usage is their sum."""
    choices = []
    usages = []
    for i, resp in enumerate(answers):
        for c in resp.choices[:1]:
            c.index = i
            choices.append(c)
        chars = sum(len(c.message.text()) for c in resp.choices)
        reported = resp.usage
        if reported is None or reported.invalid:
            reported = estimate_usage(req, chars, chars_per_token)
        usages.append(reported)
    first = answers[0]
    return ChatResponse(choices, total(usages), first.upstream_id, first.upstream_model)


def total(usages: list[Usage]) -> Usage:
    def add(name: str) -> int | None:
        values = [getattr(u, name) for u in usages]
        return None if all(v is None for v in values) else sum(v or 0 for v in values)

    return Usage(
        prompt_tokens=sum(u.prompt_tokens for u in usages),
        completion_tokens=sum(u.completion_tokens for u in usages),
        cached_tokens=add("cached_tokens"),
        cache_write_tokens=add("cache_write_tokens"),
        reasoning_tokens=add("reasoning_tokens"),
        estimated=any(u.estimated for u in usages),
    )


_END = object()


class Merged:
    """n upstream streams as one: batches as they arrive, choice i from stream i; their usage
    reports are held back and summed into one usage chunk at the end (when every stream
    reported one; else none, and the pipeline estimates)."""

    def __init__(self, streams: list[Any]) -> None:
        self._streams = streams
        self._tasks: list[asyncio.Task[None]] = []

    async def __aiter__(self) -> AsyncIterator[list[StreamChunk]]:
        queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        usage: dict[int, Usage] = {}

        async def pump(i: int, stream: Any) -> None:
            try:
                async for batch in stream:
                    await queue.put((i, batch))
                await queue.put((i, _END))
            except Exception as exc:  # handed to the reader, which raises it
                await queue.put((i, exc))

        self._tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(self._streams)]
        running = len(self._streams)
        try:
            while running:
                i, item = await queue.get()
                if item is _END:
                    running -= 1
                    continue
                if isinstance(item, BaseException):
                    raise item
                out = []
                for chunk in item:
                    if chunk.usage is not None:
                        usage[i] = chunk.usage
                        chunk.usage = None
                    for d in chunk.choices:
                        d.index = i
                    if chunk.choices:
                        out.append(chunk)
                if out:
                    yield out
        finally:
            for t in self._tasks:
                t.cancel()
        if len(usage) == len(self._streams):
            yield [StreamChunk([], total([usage[i] for i in sorted(usage)]))]

    def abort(self) -> None:
        for t in self._tasks:
            t.cancel()
        for s in self._streams:
            s.abort()

    def release(self) -> None:
        for s in self._streams:
            s.release()


class FirstCallOnly:
    """A stream without the deltas of any tool call but the first."""

    def __init__(self, stream: Any, keep: Callable[[StreamChunk], Any] = first_call_chunk) -> None:
        self._stream = stream
        self._keep = keep

    async def __aiter__(self) -> AsyncIterator[list[StreamChunk]]:
        async for batch in self._stream:
            out = [c for c in (self._keep(chunk) for chunk in batch) if c is not None]
            if out:
                yield out

    def abort(self) -> None:
        self._stream.abort()

    def release(self) -> None:
        self._stream.release()
