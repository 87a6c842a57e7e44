"""The routers on the request path (pipeline/smart_route.py), through a running gateway with the
official SDKs: the chosen model answers and is the response's `model`, `X-Gatewayz-Route` says
why, a failing choice fails over to the runner-up, and what a model cannot take (tools, context)
or a bad router name is handled before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from langchain_openai import ChatOpenAI

from gatewayz.catalog.capabilities import CapabilityTable
from gatewayz.pipeline.smart_route import SmartRoutes
from gatewayz.routing.smart.classifier import TierModel
from gatewayz.routing.smart.data import RouterData
from gatewayz.simulators import Fault, Simulator
from tests.e2e.harness import WEATHER_TOOLS, Gateway, gateway_settings, simulators, start_gateway

HI = [{"role": "user", "content": "hello"}]
# Served here: OpenAI's and Anthropic's models (both providers point at the simulator).
DATA = RouterData.from_mapping(
    {
        "meta": {"general_benchmark": "test index", "code_benchmark": "SWE-bench Verified"},
        "latency_prior_ms": {"1": 300, "2": 500, "3": 900, "4": 1500},
        "general": {
            "openai/gpt-4.1-nano": {"score": 20, "tier": 1},
            "openai/gpt-4.1-mini": {"score": 40, "tier": 2},
            "anthropic/claude-haiku-4-5": {"score": 45, "tier": 2},
            "anthropic/claude-sonnet-4-5": {"score": 60, "tier": 3},
            "anthropic/claude-opus-4-1": {"score": 80, "tier": 4},
            "google/gemini-2.5-pro": {"score": 99, "tier": 4},  # no Google provider here
        },
        "code": {
            "openai/gpt-4.1-mini": {"swe_bench": 24, "tier": 2},
            "anthropic/claude-sonnet-4-5": {"swe_bench": 77, "tier": 3},
            "anthropic/claude-opus-4-1": {"swe_bench": 79, "tier": 4},
        },
    }
)


def always(tier: int) -> TierModel:
    """A classifier that puts every prompt in `tier` (its bias alone decides)."""
    return TierModel({}, [10.0 if t == tier else 0.0 for t in (1, 2, 3, 4)])


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with simulators(Simulator, 1) as (upstream,):
        yield upstream


@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = start_gateway(gateway_settings(tmp_path_factory.mktemp("router"), sim), sim)
    yield gateway
    gateway.stop()


@pytest.fixture
def smart(gw: Gateway, sim: Simulator) -> Iterator[SmartRoutes]:
    pipeline = gw.services.pipeline
    router = pipeline.routes.smart
    assert router is not None
    saved = (router.data, router.tiers, router.capabilities)
    router.data, router.tiers = DATA, always(2)
    sim.clear()
    pipeline.health.clear()
    yield router
    router.data, router.tiers, router.capabilities = saved


def oai(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


def route_header(raw: Any) -> dict[str, str]:
    value = raw.headers["x-gatewayz-route"]
    return dict(part.split("=", 1) for part in value.split("; "))


def test_cost_mode_answers_with_the_cheapest_model_that_clears_the_tier(
    gw: Gateway, sim: Simulator, smart: SmartRoutes
) -> None:
    raw = oai(gw).chat.completions.with_raw_response.create(
        model="router:general:cost", messages=HI
    )
    resp = raw.parse()
    assert resp.model == "openai/gpt-4.1-mini"
    assert sim.requests[-1].json["model"] == "gpt-4.1-mini"  # OpenAI's own id, sent as is
    route = route_header(raw)
    assert route["mode"] == "general:cost" and route["model"] == "openai/gpt-4.1-mini"
    assert route["reason"].startswith("tier 2, cheapest at tier 2+")
    assert route["runner_up"] == "anthropic/claude-haiku-4-5"
    assert raw.headers["x-gatewayz-provider"] == "openai"
    assert float(raw.headers["x-gatewayz-cost"]) > 0


def test_quality_mode_through_the_anthropic_sdk(gw: Gateway, smart: SmartRoutes) -> None:
    client = anthropic.Anthropic(base_url=gw.root, api_key=gw.api_key, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="router:general:quality", max_tokens=50, messages=HI
    )
    # The best served: Gemini scores higher but no provider here serves it.
    assert raw.parse().model == "anthropic/claude-opus-4-1"
    # Sonnet scores next, but only at `anthropic`, already in the chain: the runner-up failover
    # can reach is the best OpenAI model.
    assert route_header(raw)["runner_up"] == "openai/gpt-4.1-mini"


def test_a_streamed_answer_carries_the_route_and_the_model_used(
    gw: Gateway, smart: SmartRoutes
) -> None:
    smart.tiers = always(3)
    with oai(gw).chat.completions.with_streaming_response.create(
        model="router:code:auto", messages=HI, stream=True
    ) as raw:
        assert route_header(raw)["model"] == "anthropic/claude-sonnet-4-5"
        models = {chunk.model for chunk in raw.parse()}
    assert models == {"anthropic/claude-sonnet-4-5"}


def test_the_chosen_model_failing_fails_over_to_the_runner_up(
    gw: Gateway, sim: Simulator, smart: SmartRoutes
) -> None:
    sim.fault(Fault(status=503))
    raw = oai(gw).chat.completions.with_raw_response.create(
        model="router:general:cost", messages=HI
    )
    assert raw.parse().model == "anthropic/claude-haiku-4-5"
    assert raw.headers["x-gatewayz-attempts"] == "2"
    assert route_header(raw)["model"] == "openai/gpt-4.1-mini"  # the choice; `model`: the use


def test_a_model_without_tools_is_passed_over_for_a_tools_request(
    gw: Gateway, sim: Simulator, smart: SmartRoutes
) -> None:
    smart.capabilities = CapabilityTable.from_mapping(
        {"models": {"openai/gpt-4.1-mini": {"openai": {"tools": False}}}}
    )
    resp = oai(gw).chat.completions.create(
        model="router:general:cost", messages=HI, tools=WEATHER_TOOLS
    )
    assert resp.model == "anthropic/claude-haiku-4-5"
    plain = oai(gw).chat.completions.create(model="router:general:cost", messages=HI)
    assert plain.model == "openai/gpt-4.1-mini"


def test_latency_mode_follows_live_p50(gw: Gateway, smart: SmartRoutes) -> None:
    health = gw.services.pipeline.health
    for _ in range(5):
        health.record("anthropic", "claude-opus-4-1", True, 40.0)
    resp = oai(gw).chat.completions.create(model="router:general:latency", messages=HI)
    assert resp.model == "anthropic/claude-opus-4-1"  # 40 ms measured beats the priors


def test_an_unknown_mode_is_a_400_listing_the_valid_ones_in_both_dialects(
    gw: Gateway, sim: Simulator, smart: SmartRoutes
) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        oai(gw).chat.completions.create(model="router:general:cheapest", messages=HI)
    assert "router:general:cost" in str(err.value) and "router:code:agentic" in str(err.value)
    client = anthropic.Anthropic(base_url=gw.root, api_key=gw.api_key, max_retries=0)
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="router:code:fast", max_tokens=5, messages=HI)
    assert sim.requests == []  # nothing sent


def test_a_prompt_no_candidate_can_hold_is_a_400(gw: Gateway, smart: SmartRoutes) -> None:
    smart.data = RouterData.from_mapping(
        {"general": {"openai/gpt-4.1-nano": {"score": 1, "tier": 1}}, "code": {}}
    )
    long = [{"role": "user", "content": "word " * 1_200_000}]  # ~1.5M tokens
    with pytest.raises(openai.BadRequestError) as err:
        oai(gw).chat.completions.create(model="router:general:cost", messages=long)
    assert "router:general:cost" in str(err.value)


def test_a_router_with_no_served_candidate_is_a_404(gw: Gateway, smart: SmartRoutes) -> None:
    smart.data = RouterData.from_mapping(
        {"general": {"google/gemini-2.5-pro": {"score": 1, "tier": 1}}, "code": {}}
    )
    with pytest.raises(openai.NotFoundError):
        oai(gw).chat.completions.create(model="router:general", messages=HI)


def test_a_media_endpoint_refuses_a_router_name(gw: Gateway, smart: SmartRoutes) -> None:
    with httpx2.Client(base_url=gw.base_url, timeout=10) as c:
        r = c.post(
            "/embeddings",
            json={"model": "router:general:cost", "input": "x"},
            headers={"Authorization": f"Bearer {gw.api_key}"},
        )
    assert r.status_code == 400 and "chat models" in r.json()["error"]["message"]


def test_the_responses_api_takes_a_router_name(gw: Gateway, smart: SmartRoutes) -> None:
    raw = oai(gw).responses.with_raw_response.create(model="router:general:cost", input="hello")
    assert raw.parse().model == "openai/gpt-4.1-mini"
    assert route_header(raw)["model"] == "openai/gpt-4.1-mini"


def test_the_models_list_names_the_routers_that_have_a_served_model(
    gw: Gateway, smart: SmartRoutes
) -> None:
    listed = {m.id for m in oai(gw).models.list()}
    assert {"router:general:cost", "router:code:agentic"} <= listed
    assert oai(gw).models.retrieve("router:general:cost").owned_by == "gatewayz"
    smart.data = RouterData.from_mapping(
        {"general": {"openai/gpt-4.1-nano": {"score": 1, "tier": 1}}, "code": {}}
    )
    listed = {m["id"] for m in smart.listed()}  # (the list itself is cached a while)
    assert "router:general:balanced" in listed and "router:code:auto" not in listed


def test_langchain_names_a_router_and_reads_the_model_used(gw: Gateway, smart: SmartRoutes) -> None:
    llm = ChatOpenAI(
        model="router:general:cost", base_url=gw.base_url, api_key=gw.api_key, max_retries=0
    )
    reply = llm.invoke("hello")
    assert reply.response_metadata["model_name"] == "openai/gpt-4.1-mini"
    assert reply.content


def test_the_runner_up_named_is_one_the_chain_can_reach(gw: Gateway, smart: SmartRoutes) -> None:
    # Both models only at the `openai` provider: the chain holds the provider once, so the
    # cheaper model has no runner-up it could fail over to, and the header must not name one.
    smart.data = RouterData.from_mapping(
        {
            "general": {
                "openai/gpt-4.1-nano": {"score": 20, "tier": 1},
                "openai/gpt-4.1-mini": {"score": 40, "tier": 2},
            },
            "code": {},
        }
    )
    smart.tiers = always(1)
    raw = oai(gw).chat.completions.with_raw_response.create(
        model="router:general:cost", messages=HI
    )
    assert route_header(raw)["model"] == "openai/gpt-4.1-nano"
    assert route_header(raw)["runner_up"] == "none"
