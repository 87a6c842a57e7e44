"""The steps of embeddings, image generation and audio transcription (canonical/media.py): the
chat path's steps where they apply, and three of their own where the unit differs.

    Limit        → the key's rate limits, as chat (the input's estimated tokens count)
    MediaRoutes  → chat's routes, kept to providers priced for this kind of request whose
                   family implements it (none → 400 naming the model and what it is for)
    MediaHold    → the most it can cost at the dearest candidate (billing/media_prices.py),
                   402 before any provider is called; charged once, after success, for what
                   came back (images returned, tokens reported, seconds measured)
    MediaInvoke  → the providers, with failover (routing/fallback.py)

No response cache: an embedding or an image is not looked up by the prompt here.
"""

from __future__ import annotations

from functools import partial
from typing import Any, cast

from gatewayz.billing.media_prices import (
    audio_nanos,
    embedding_bound,
    embedding_nanos,
    image_nanos,
    worst_nanos,
)
from gatewayz.billing.pricing import FREE, Price
from gatewayz.canonical.media import (
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    MediaRequest,
    MediaResponse,
    TranscriptionRequest,
)
from gatewayz.canonical.types import Usage
from gatewayz.errors import InvalidRequest
from gatewayz.money import nanos_to_usd
from gatewayz.pipeline.answer import Answer
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.hold import Hold
from gatewayz.pipeline.invoke import Invoke
from gatewayz.pipeline.route import Routes
from gatewayz.pipeline.tokens import estimate_tokens
from gatewayz.routing.explanation import Route

_FOR = {"embedding": "embeddings", "image": "image generation", "audio": "transcription"}


def media_tokens(req: MediaRequest, chars_per_token: int) -> int:
    """The input's estimated tokens (rate limits and the request log)."""
    if isinstance(req, EmbeddingRequest):
        if req.token_arrays is not None:
            return sum(len(a) for a in req.token_arrays)
        return sum(estimate_tokens(len(t), chars_per_token) for t in req.texts or ())
    if isinstance(req, ImageRequest):
        return estimate_tokens(len(req.prompt), chars_per_token)
    return estimate_tokens(len(req.prompt or ""), chars_per_token)


class MediaAnswer(Answer):
    """A whole answer of one of the media endpoints; `usage` is what the request log records
    (input tokens; for images and audio the prompt's estimate)."""

    def __init__(self, result: MediaResponse, usage: Usage) -> None:
        self.result = result
        self.usage = usage
        self.produced_chars = 1  # never an empty answer: an empty result is charged nothing

    def response(self) -> MediaResponse:  # type: ignore[override]
        """The provider's answer (the edge's media dialect renders it)."""
        return self.result


class MediaRoutes(Routes):
    via_proxies = False  # Butter caches chat completions, not these

    def _fitting(
        self, call: Call, routes: tuple[Route, ...], prices: dict[str, Price], req: Any
    ) -> tuple[Route, ...]:
        def serves(route: Route) -> bool:
            price = prices.get(route.provider.slug)
            if price is None or not hasattr(route.adapter, req.method):
                return False
            return price.kind == req.mode or price == FREE  # a free route costs nothing

        fit = tuple(r for r in routes if serves(r))
        if not fit:
            raise InvalidRequest(
                f"The model '{req.model}' is not served for {_FOR[req.mode]} by any provider "
                "configured here (it may be a model for another endpoint).",
                code="model_not_supported",
                param="model",
            )
        for slug in set(prices) - {r.provider.slug for r in fit}:
            del prices[slug]
        return fit


class MediaHold(Hold):
    async def run(self, call: Call) -> None:
        req = cast(MediaRequest, call.req)
        assert call.principal is not None
        worst = max(worst_nanos(req, p) for p in call.prices.values())
        covers = _covers(req)
        call.tab = await self.meter.open_amount(
            call.principal, req.model, worst, call.prices, call.ctx.request_id, covers
        )
        if call.tab is not None:
            call.stack.push_async_exit(partial(self._close, call))

    async def finish(self, call: Call) -> None:
        answer, tab, req = call.answer, call.tab, cast(MediaRequest, call.req)
        assert isinstance(answer, MediaAnswer) and answer.usage is not None
        cost, tokens = 0, answer.usage.total_tokens
        if tab is not None:
            cost = _cost(req, tab.price, answer.result, answer.usage)
            await self.meter.charge(tab, cost, tokens)
            cost = tab.charged_nanos
        answer.usage.cost = nanos_to_usd(cost)
        call.row["cost_nanos"] = cost


def _covers(req: MediaRequest) -> str:
    if isinstance(req, EmbeddingRequest):
        return f"at most {embedding_bound(req):,} input tokens"
    if isinstance(req, ImageRequest):
        return f"{req.n} image(s)"
    return f"{req.duration_s:.3f} seconds of audio"


def _cost(req: MediaRequest, price: Price, result: MediaResponse, usage: Usage) -> int:
    if isinstance(req, EmbeddingRequest):
        return embedding_nanos(price, usage.prompt_tokens)
    if isinstance(req, ImageRequest):
        assert isinstance(result, ImageResponse)
        return image_nanos(req, price, len(result.images))
    assert isinstance(req, TranscriptionRequest)
    return audio_nanos(req, price)


class MediaInvoke(Invoke):
    """Invoke's failover for a whole media answer (nothing streamed, no throughput sample)."""

    async def run(self, call: Call) -> None:
        req = cast(MediaRequest, call.req)

        async def send(route: Route) -> MediaResponse:
            result: MediaResponse = await getattr(route.adapter, req.method)(req, route.native_id)
            return result

        result = await self.fallback.run(call.routes, call.prices, send, call, call.ctx.t0)
        route = call.route
        assert route is not None
        self.meter.answered_by(call.tab, route, call.prices[route.provider.slug])
        call.answer = MediaAnswer(result, self._usage(req, result))

    def _usage(self, req: MediaRequest, result: MediaResponse) -> Usage:
        estimate = media_tokens(req, self.chars_per_token)
        if isinstance(result, EmbeddingResponse):
            bound = embedding_bound(req) if isinstance(req, EmbeddingRequest) else estimate
            reported = result.prompt_tokens
            if reported is not None and reported >= 0:
                return Usage(prompt_tokens=reported, completion_tokens=0)
            return Usage(prompt_tokens=min(estimate, bound), completion_tokens=0, estimated=True)
        return Usage(prompt_tokens=estimate, completion_tokens=0, estimated=True)

    async def finish(self, call: Call) -> None:
        assert call.answer is not None and call.answer.usage is not None
        call.set_usage(call.answer.usage)
