from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from gatewayz.simulators import Simulator
from tests.e2e.harness import Gateway, gateway_settings, start_gateway


@pytest.fixture(scope="session")
def upstream() -> Iterator[Simulator]:
    sim = Simulator()
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


@pytest.fixture(scope="session")
def gateway(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir: Path = tmp_path_factory.mktemp("gw")
    gw = start_gateway(gateway_settings(data_dir, upstream), upstream)
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def _clean_upstream(request: pytest.FixtureRequest) -> Iterator[None]:
    if "upstream" in request.fixturenames or "gateway" in request.fixturenames:
        sim: Simulator = request.getfixturevalue("upstream")
        sim.clear()
    yield


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)


@pytest.fixture
def aclient(gateway: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)
