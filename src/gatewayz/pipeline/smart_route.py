"""The routes step for a router model name (`router:general:cost`, …; routing/smart/): the
prompt's tier from the local classifier, then every candidate model of the router that is
served and can take this request — priced, its family carries every field the request uses,
tools or images only to models that support them, a context window that holds the prompt, the
request's and key's provider preferences — ranked by the router's mode (routing/smart/pick.py).

The chosen model's routes come first, then the runner-ups' (at most `MODELS` models), so
failover reaches the next-best model when the first one's providers fail. A provider appears
once in the chain (prices are per provider): a runner-up is not retried at a provider that has
just failed the chosen model. The hold covers every model in the chain, as for any failover."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from gatewayz.billing.pricing import Price
from gatewayz.canonical.types import ChatRequest
from gatewayz.catalog.capabilities import Capabilities, CapabilityTable
from gatewayz.errors import GatewayError, InvalidRequest, ModelNotFound
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.route import Routes, able, sorting
from gatewayz.pipeline.tokens import estimate_tokens, prompt_chars
from gatewayz.reliability.passive_health import PassiveHealth, Summary
from gatewayz.routing.detect import Override
from gatewayz.routing.explanation import Route
from gatewayz.routing.smart import classifier, data
from gatewayz.routing.smart.features import Prompt
from gatewayz.routing.smart.modes import MODES, PREFIX, WHAT, RouterName
from gatewayz.routing.smart.pick import Decision, Option, blended, decide

MODELS = 3  # the chosen model and two runner-ups


@dataclass(frozen=True, slots=True)
class _Served:
    option: Option
    canonical: str
    routes: tuple[Route, ...]
    prices: dict[str, Price]
    override: Override | None


class SmartRoutes:
    def __init__(
        self,
        routes: Routes,
        health: PassiveHealth,
        capabilities: CapabilityTable | None = None,
        router_data: data.RouterData | None = None,
        tiers: classifier.TierModel | None = None,
    ) -> None:
        self.routes = routes
        self.health = health
        self.capabilities = capabilities or CapabilityTable.load()
        self.data = router_data or data.shipped()
        self.tiers = tiers or classifier.shipped()

    def run(self, call: Call, name: RouterName) -> None:
        req = call.req
        assert isinstance(req, ChatRequest)
        prompt = Prompt.of(name.kind, req)
        tier = self.tiers.floor(prompt)
        need = call.prompt_tokens = estimate_tokens(prompt_chars(req), self.routes.chars_per_token)
        served: dict[str, _Served] = {}
        refusals: list[GatewayError] = []
        for cand in self.data.candidates[name.kind]:
            try:
                got = self._serve(cand, call, prompt, need)
            except GatewayError as exc:  # not served, not priced, or a field it cannot take
                refusals.append(exc)
                continue
            served[cand.model] = got
        decision = decide(name, tier, [s.option for s in served.values()])
        if decision is None:
            raise _nothing_fits(name, refusals)
        self._use(call, decision, served)

    def listed(self) -> list[dict[str, Any]]:
        """The router names `GET /v1/models` lists (OpenAI's model-object shape): those of a
        router with at least one candidate this gateway serves."""
        resolver = self.routes.resolver
        return [
            {
                "id": f"{PREFIX}{kind}:{mode}",
                "object": "model",
                "created": 0,
                "owned_by": "gatewayz",
                "description": f"Smart router: {WHAT[f'{kind}:{mode}']}.",
            }
            for kind, modes in MODES.items()
            if any(resolver.explain(c.model).error is None for c in self.data.candidates[kind])
            for mode in modes
        ]

    def _serve(self, cand: data.Candidate, call: Call, prompt: Prompt, need: int) -> _Served:
        req = call.req
        assert isinstance(req, ChatRequest)
        exp, routes = self.routes.chain_of(cand.model, call.override)
        prices = self.routes.meter.price_routes(routes, call.discount)
        routes = tuple(r for r in routes if r.provider.slug in prices)
        if any(p.mode is not None for p in prices.values()):
            raise InvalidRequest(f"'{cand.model}' is not a chat model here.", param="model")
        routes = able(routes, prices, req)
        caps = self.capabilities.models.get(cand.model, {})
        fit = tuple(r for r in routes if _takes(caps.get(r.provider.slug), prompt, req))
        fit = tuple(r for r in fit if (prices[r.provider.slug].context or need) >= need)
        if not fit:
            raise InvalidRequest(
                f"'{cand.model}' cannot take this request (tools, images or context).",
                param="model",
            )
        prices = {r.provider.slug: prices[r.provider.slug] for r in fit}
        price = min(blended(p) for p in prices.values())
        p50s = [s.latency_p50_ms for r in fit if (s := self._health(r)) is not None]
        live = [p for p in p50s if p is not None]
        p50 = min(live) if live else self.data.prior_ms(cand.tier)
        option = Option(cand, price, p50, bool(live))
        return _Served(option, exp.canonical, fit, prices, exp.override)

    def _health(self, route: Route) -> Summary | None:
        return self.health.summary(route.provider.slug, route.native_id)

    def _use(self, call: Call, decision: Decision, served: dict[str, _Served]) -> None:
        routes: list[Route] = []
        prices: dict[str, Price] = {}
        chained: list[Option] = []  # the models the chain reaches, best first
        for option in decision.order:
            if len(chained) == MODELS:
                break
            s = served[option.model]
            fresh = tuple(r for r in s.routes if r.provider.slug not in prices)
            if not fresh:
                continue
            chained.append(option)
            mine = {r.provider.slug: s.prices[r.provider.slug] for r in fresh}
            prefs = sorting(call.override or s.override)
            routes += self.routes.balancer.order(fresh, s.canonical, prefs, mine)
            prices.update(mine)
        # The runner-up the header names is one failover can reach.
        call.decision = replace(decision, order=tuple(chained))
        call.canonical = served[decision.model].canonical
        call.prices = prices
        call.routes = self.routes.proxied(tuple(routes))
        call.use(call.routes[0])


def _takes(caps: Capabilities | None, prompt: Prompt, req: ChatRequest) -> bool:
    """Whether a provider's model supports what the request uses (unknown: assumed able)."""
    if caps is None:
        return True
    return (not req.tools or caps.tools) and (not prompt.images or caps.vision)


def _nothing_fits(name: RouterName, refusals: list[GatewayError]) -> GatewayError:
    asks = [e for e in refusals if isinstance(e, InvalidRequest)]
    if asks:
        first = asks[0]
        return InvalidRequest(
            f"No model of {name} can take this request. {first.message}",
            code=first.code,
            param=first.param,
        )
    return ModelNotFound(f"No model of {name} is served by this gateway.", param="model")
