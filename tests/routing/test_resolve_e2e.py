"""Model resolution through a running gateway with the official `openai` SDK: aliases, the
`provider` request field (pins, never forwarded upstream), the model echoed back as asked."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from gatewayz.simulators import Simulator
from tests.e2e.harness import Gateway, gateway_settings, start_gateway

MSG = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator()
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(scope="module")
def gateway(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {
        slug: {"api_key": f"k-{slug}", "base_url": sim.base_url}
        for slug in ("deepseek", "together", "groq")
    }
    gw = start_gateway(gateway_settings(tmp_path_factory.mktemp("gw"), sim, provider_env=env), sim)
    yield gw
    gw.stop()


@pytest.fixture
def client(gateway: Gateway, sim: Simulator) -> openai.OpenAI:
    sim.clear()
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)


def _upstream(sim: Simulator) -> dict:
    (req,) = [r for r in sim.requests if r.path.endswith("/chat/completions")]
    assert isinstance(req.json, dict)
    return req.json


def test_alias_reaches_the_provider_in_its_native_id(client: openai.OpenAI, sim: Simulator) -> None:
    r = client.chat.completions.create(model="r1", messages=MSG)
    assert r.model == "r1"  # what the client asked for, not the native or canonical id
    assert r.choices[0].message.content
    up = _upstream(sim)
    assert up["model"] == "deepseek-reasoner"
    assert "provider" not in up
    assert sim.requests[0].headers["authorization"] == "Bearer k-deepseek"


def test_provider_field_pins_and_is_not_forwarded(client: openai.OpenAI, sim: Simulator) -> None:
    r = client.chat.completions.create(
        model="r1", messages=MSG, extra_body={"provider": "together"}
    )
    assert r.model == "r1"
    up = _upstream(sim)
    assert up["model"] == "deepseek-ai/DeepSeek-R1"
    assert "provider" not in up
    assert sim.requests[0].headers["authorization"] == "Bearer k-together"


def test_provider_order_applies_to_streams(client: openai.OpenAI, sim: Simulator) -> None:
    stream = client.chat.completions.create(
        model="llama-3.3-70b",
        messages=MSG,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"provider": {"order": ["groq", "together"], "sort": "price"}},
    )
    chunks = list(stream)
    assert {c.model for c in chunks} == {"llama-3.3-70b"}
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    up = _upstream(sim)
    assert up["model"] == "llama-3.3-70b-versatile"
    assert "provider" not in up and up["stream"] is True


def test_bad_provider_field_is_400(client: openai.OpenAI, sim: Simulator) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="r1", messages=MSG, extra_body={"provider": "nope"})
    assert e.value.status_code == 400
    assert e.value.body["param"] == "provider"  # type: ignore[index]
    assert "unknown provider(s): nope" in e.value.body["message"]  # type: ignore[index]
    assert sim.requests == []


def test_unknown_model_is_404_model_not_found(client: openai.OpenAI, sim: Simulator) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model-at-all", messages=MSG)
    assert e.value.body["code"] == "model_not_found"  # type: ignore[index]
    assert "'no-such-model-at-all' does not exist" in e.value.body["message"]  # type: ignore[index]
    assert sim.requests == []
