"""A gateway serving one model of the OpenAI-compatible family (`vllm`, `test-model`) and one of
the Anthropic family (`anthropic/claude-sonnet-4-5`), both simulated, for the Responses API end
to end with the official `openai` SDK; prices the tests set, one hold row per request."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openai
import orjson
import pytest

from gatewayz.simulators import Simulator
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway

OPENAI_MODEL, ANTHROPIC_MODEL = "test-model", "anthropic/claude-sonnet-4-5"
MODELS = {"openai": OPENAI_MODEL, "anthropic": ANTHROPIC_MODEL}
TOOLS_MODEL = "test-tools"
MODELS_SERVED = f"{OPENAI_MODEL},{TOOLS_MODEL}"
# USD per 1M tokens
PROMPT_PRICE, COMPLETION_PRICE = Decimal(10), Decimal(20)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="package")
def upstream() -> Iterator[Simulator]:
    sim = Simulator()
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


@pytest.fixture(scope="package")
def gateway(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    settings = gateway_settings(
        tmp_path_factory.mktemp("responses"),
        upstream,
        price_refresh_s=3600,  # prices are set on the meter directly
        billing_leases=False,  # one hold and one charge row per request
    )
    # `test-tools`: the simulator calls the offered tools even under tool_choice "auto".
    env = {
        **settings.provider_env,
        "vllm": {"base_url": upstream.base_url, "models": MODELS_SERVED},
    }
    gw = start_gateway(settings.model_copy(update={"provider_env": env}), upstream)
    set_price(gw, OPENAI_MODEL, "vllm", prompt=PROMPT_PRICE, completion=COMPLETION_PRICE)
    set_price(gw, TOOLS_MODEL, "vllm", prompt=PROMPT_PRICE, completion=COMPLETION_PRICE)
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def _clean(upstream: Simulator) -> None:
    upstream.clear()


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)


@pytest.fixture(params=sorted(MODELS))
def model(request: pytest.FixtureRequest) -> str:
    """The model of each family (the test runs once per family)."""
    return MODELS[request.param]


def upstream_body(gateway: Gateway) -> dict[str, Any]:
    """The JSON body of the last request the provider received."""
    return dict(orjson.loads(gateway.upstream.requests[-1].body))
