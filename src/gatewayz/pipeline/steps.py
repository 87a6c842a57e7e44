"""The request path as an ordered list of steps.

A step is a small object with one job. `run(call)` does it, in list order, before there is an
answer; a step may answer (`call.answer`: the response cache, the provider), which ends this
part. What a step takes — a hold, an upstream connection, a log row — it gives back by pushing
its clean-up on `call.stack` when it takes it, so every exit (success, error, cancellation, a
client gone mid-stream) returns it, in reverse order. `finish(call)` runs, in reverse list order
for every step, once the answer is complete (a whole answer as soon as it arrived; a stream after
its last chunk): usage is known, the money is settled, the answer stored. Streaming and not
share every step; only the edge writes them differently.

Adding a step is one class and one line in `ChatPipeline`'s list (pipeline/chat.py):

    class CountTokens(Step):
        async def finish(self, call: Call) -> None:
            if call.answer is not None and call.answer.usage is not None:
                metrics.tokens.inc(call.answer.usage.total_tokens)
"""

from __future__ import annotations

from collections.abc import Sequence

from gatewayz.observability.tracing import Tracing
from gatewayz.pipeline.answer import Answer
from gatewayz.pipeline.call import Call


class Step:
    span_name = "step"  # its span's name, with tracing on (observability/tracing.py)

    async def run(self, call: Call) -> None:
        """Before the answer, in list order."""

    async def finish(self, call: Call) -> None:
        """Once the answer is complete, in reverse list order."""


class Steps:
    def __init__(self, steps: Sequence[Step], tracing: Tracing | None = None) -> None:
        self.steps = tuple(steps)
        self._reversed = self.steps[::-1]
        self.tracing = tracing or Tracing()

    def __add__(self, more: Sequence[Step]) -> Steps:
        return Steps([*self.steps, *more], self.tracing)

    async def answer(self, call: Call) -> Answer:
        """Run the steps until one answers, each `run` in its span (tracing off: a shared no-op);
        the span of the step that answers a stream lasts until the call ends (its end)."""
        for step in self.steps:
            with self.tracing.span(step.span_name) as span:
                await step.run(call)
                if call.answer is not None and call.req is not None and call.req.stream:
                    span.end_with(call.stack)
            if call.answer is not None:
                return call.answer
        raise AssertionError("no step answered the request")

    async def finish(self, call: Call) -> None:
        for step in self._reversed:
            await step.finish(call)
