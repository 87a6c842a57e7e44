"""Step: the candidate routes of a request and their prices.

The request's `provider` preferences over its key's defaults (field by field) → the resolver's
providers for the model (routing/resolve.py), in the failover policy's order or exactly the order
an explicit override asks for → each one's price (a premium model never at the default rate)
→ those whose family can take every field the request uses (canonical/fidelity.py: none →
a 400 naming the field) → those whose context window holds the prompt (none → 400
`context_length_exceeded`, before anything is held or sent) → load balancing
(routing/balance.py). The `provider` field is ours: it is taken out of the request, never
forwarded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz.billing.meter import Meter
from gatewayz.billing.pricing import Price
from gatewayz.canonical.fidelity import Survey, refusal
from gatewayz.canonical.types import ChatRequest
from gatewayz.errors import InvalidRequest, Unsupported
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.steps import Step
from gatewayz.pipeline.tokens import estimate_tokens, prompt_chars
from gatewayz.routing.balance import Balancer, Preferences
from gatewayz.routing.detect import Override, parse_override
from gatewayz.routing.explanation import Explanation, Route, through_proxies
from gatewayz.routing.failover import FailoverPolicy
from gatewayz.routing.resolve import Resolver
from gatewayz.routing.smart.modes import parse_router
from gatewayz.security.auth import Principal

if TYPE_CHECKING:
    from gatewayz.pipeline.smart_route import SmartRoutes


class Routes(Step):
    span_name = "routing"
    via_proxies = True  # try a provider's caching proxy first (chat)

    def __init__(
        self,
        resolver: Resolver,
        policy: FailoverPolicy,
        balancer: Balancer,
        meter: Meter,
        chars_per_token: int,
    ) -> None:
        self.resolver = resolver
        self.policy = policy
        self.balancer = balancer
        self.meter = meter
        self.chars_per_token = chars_per_token
        self.smart: SmartRoutes | None = None  # `router:*` names (set by the chat pipeline)

    async def run(self, call: Call) -> None:
        req, principal = call.req, call.principal
        assert req is not None and principal is not None
        call.row["model"] = req.model
        call.row["stream"] = req.stream
        override = call.override = preferences(principal, req.extra.pop("provider", None))
        router = parse_router(req.model)
        if router is not None:
            if self.smart is None or not isinstance(req, ChatRequest):
                raise InvalidRequest(
                    f"'{router}' chooses among chat models: name a model for this endpoint.",
                    code="model_not_supported",
                    param="model",
                )
            return self.smart.run(call, router)
        exp, routes = self.chain_of(req.model, override)
        call.canonical = exp.canonical
        prices = call.prices = self.meter.price_routes(routes, call.discount)
        if isinstance(req, ChatRequest):  # not the media requests (pipeline/media.py)
            routes = able(routes, prices, req)
        routes = self._fitting(call, routes, prices, req)
        # The request's (or key's) preferences, else the data row's.
        balanced = self.balancer.order(
            routes, exp.canonical, sorting(override or exp.override), prices
        )
        call.routes = self.proxied(balanced)
        call.use(call.routes[0])

    def proxied(self, routes: tuple[Route, ...]) -> tuple[Route, ...]:
        """A provider's proxy (Butter, a chat cache) first, then the provider itself."""
        return through_proxies(routes) if self.via_proxies else routes

    def chain(self, model: str, override: str | dict[str, Any] | None = None) -> tuple[Route, ...]:
        """The providers a request for `model` may try, in the failover policy's order, or
        exactly the order an explicit override (the request's, or a model's row in
        `routing/aliases.toml`) asks for (before load balancing)."""
        return self.chain_of(model, parse_override(override))[1]

    def chain_of(
        self, model: str, override: Override | None
    ) -> tuple[Explanation, tuple[Route, ...]]:
        # An override that only sorts changes no provider set: the default resolution stands.
        exp = self.resolver.explain(model, override if override and override.restricts else None)
        if exp.error is not None:
            raise exp.error
        if exp.override is not None or exp.exclusive:  # a request's or a data row's own order
            return exp, exp.routes
        return exp, self.policy.order(exp.routes, exp.canonical)

    def _fitting(
        self, call: Call, routes: tuple[Route, ...], prices: dict[str, Price], req: ChatRequest
    ) -> tuple[Route, ...]:
        if any(p.mode is not None for p in prices.values()):  # priced as embedding/image/audio
            routes = self._chat_only(routes, prices, req.model)
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

    @staticmethod
    def _chat_only(
        routes: tuple[Route, ...], prices: dict[str, Price], model: str
    ) -> tuple[Route, ...]:
        chat = tuple(
            r for r in routes if getattr(prices.get(r.provider.slug), "mode", None) is None
        )
        if not chat:
            kind = next(iter(prices.values())).kind
            raise InvalidRequest(
                f"The model '{model}' is an {kind} model, not a chat model: use {ENDPOINTS[kind]}.",
                code="model_not_supported",
                param="model",
            )
        for slug in {r.provider.slug for r in routes} - {r.provider.slug for r in chat}:
            del prices[slug]
        return chat


ENDPOINTS = {
    "embedding": "POST /v1/embeddings",
    "image": "POST /v1/images/generations",
    "audio": "POST /v1/audio/transcriptions",
}


def able(
    routes: tuple[Route, ...], prices: dict[str, Price], req: ChatRequest
) -> tuple[Route, ...]:
    """The routes whose family can take every field of the request (canonical/fidelity.py):
    a field a family would have to drop routes the request to another family; with none left,
    the first refusal is the answer (a 400 naming the field)."""
    refusals: dict[str, Unsupported | None] = {}
    survey = Survey.of(req, {r.provider.family for r in routes})
    fit = []
    for r in routes:
        family = r.provider.family
        if family not in refusals:
            refusals[family] = refusal(req, family, survey)
        if refusals[family] is None:
            fit.append(r)
    if len(fit) < len(routes):
        for slug in {r.provider.slug for r in routes} - {r.provider.slug for r in fit}:
            prices.pop(slug, None)
        if not prices:  # none left that may serve it (those left have no price)
            raise next(e for e in refusals.values() if e is not None)
    return tuple(fit)


def sorting(ov: Override | None) -> Preferences:
    """What load balancing takes of provider preferences."""
    return Preferences(ov.sort, ov.max_latency_ms, bool(ov.order)) if ov else Preferences()


def preferences(principal: Principal, requested: Any) -> Override | None:
    """The request's `provider` preferences over its key's defaults (field by field); a plain
    slug in the request pins the provider whatever the key says."""
    defaults = principal.record.get("provider_preferences")
    if defaults and (requested is None or isinstance(requested, dict)):
        requested = {**defaults, **(requested or {})}
    return parse_override(requested)
