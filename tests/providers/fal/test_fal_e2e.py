"""fal through the gateway with the `openai` SDK (chat via fal-ai/any-llm on the simulator),
`generate_image` against the simulator's image app, and the simulator's fal format itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from gatewayz.errors import RateLimited
from gatewayz.providers.fal.adapter import Adapter, generate_image
from gatewayz.providers.provider import Provider
from gatewayz.providers.transport import HttpPool
from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.content import ECHO_PREFIX
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway

KEY = "fal-test-key"
MODEL = "fal/google/gemini-flash-1.5"
MSG = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {"fal": {"base_url": f"http://127.0.0.1:{sim.port}", "api_key": KEY}}
    g = start_gateway(gateway_settings(tmp_path_factory.mktemp("gw"), sim, provider_env=env), sim)
    # No public price for this model on fal: a premium model is only served once priced.
    set_price(g, MODEL, "fal", prompt="0.075", completion="0.3")
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def _clean(sim: Simulator) -> None:
    sim.clear()


@pytest.fixture
def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


def _upstream(sim: Simulator, path: str) -> dict:
    seen = [r for r in sim.requests if r.path == path]
    assert len(seen) == 1
    assert seen[0].headers["authorization"] == f"Key {KEY}"
    return seen[0].json


def test_plain_completion(client: openai.OpenAI, sim: Simulator) -> None:
    messages = [{"role": "system", "content": "Be nice."}, *MSG]
    r = client.chat.completions.create(model=MODEL, messages=messages)
    assert r.choices[0].message.content == ECHO_PREFIX + "Say hello"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.completion_tokens > 0
    assert (r.usage.model_extra or {}).get("estimated") is True  # fal reports no usage
    assert _upstream(sim, "/fal-ai/any-llm") == {
        "model": "google/gemini-flash-1.5",
        "prompt": "Say hello",
        "system_prompt": "Be nice.",
    }


def test_canonical_id_maps_to_fal(client: openai.OpenAI, sim: Simulator) -> None:
    r = client.chat.completions.create(model="meta-llama/llama-3.1-8b-instruct", messages=MSG)
    assert r.choices[0].message.content == ECHO_PREFIX + "Say hello"
    assert _upstream(sim, "/fal-ai/any-llm")["model"] == "meta-llama/llama-3.1-8b-instruct"


def test_streaming(client: openai.OpenAI, sim: Simulator) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=MSG, stream=True, stream_options={"include_usage": True}
        )
    )
    deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(deltas) > 3  # delivered piece by piece, not as one cumulative blob
    assert "".join(deltas) == ECHO_PREFIX + "Say hello"
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert _upstream(sim, "/fal-ai/any-llm/stream")["prompt"] == "Say hello"


def test_tools_are_rejected(client: openai.OpenAI, sim: Simulator) -> None:
    tools: Any = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=MSG, tools=tools)
    assert e.value.status_code == 400
    error = e.value.response.json()["error"]
    assert error["param"] == "tools"
    assert error["message"].startswith("The fal provider family does not support 'tools'")
    assert sim.requests == []


def test_image_input_is_rejected(client: openai.OpenAI) -> None:
    content: Any = [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": "http://127.0.0.1/x.png"}},
    ]
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    assert "does not support image input" in e.value.response.json()["error"]["message"]


def test_validation_error_is_400_with_fal_detail(client: openai.OpenAI, sim: Simulator) -> None:
    detail = {"detail": [{"loc": ["body", "model"], "msg": "unknown model", "type": "value_error"}]}
    sim.fault(Fault(status=422, body=detail))
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=MSG)
    assert e.value.response.json()["error"]["message"] == "model: unknown model"


def test_server_error_is_mapped(client: openai.OpenAI, sim: Simulator) -> None:
    sim.fault(Fault(status=503))
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model=MODEL, messages=MSG, stream=True)
    assert e.value.status_code == 503


def test_drop_mid_stream_ends_with_error_event(gw: Gateway, sim: Simulator) -> None:
    sim.fault(Fault(drop_after_chunks=2))
    with httpx.stream(
        "POST",
        gw.base_url + "/chat/completions",
        headers={"Authorization": f"Bearer {gw.api_key}"},
        json={"model": MODEL, "messages": MSG, "stream": True},
    ) as r:
        assert r.status_code == 200
        events = [e for e in r.read().decode().split("\n\n") if e]
    assert json.loads(events[-1][6:])["error"]["code"] == "upstream_unavailable"


def _adapter(sim: Simulator, **extra: Any) -> tuple[Adapter, HttpPool]:
    base = f"http://127.0.0.1:{sim.port}"
    pool = HttpPool(base)
    return Adapter(Provider("fal", "fal", "fal", base, api_key=KEY, **extra), pool), pool


def test_generate_image(sim: Simulator) -> None:
    async def run() -> dict:
        adapter, pool = _adapter(sim)
        try:
            return await generate_image(
                adapter, "fal-ai/flux/schnell", "a red fox", num_images=2, seed=11
            )
        finally:
            await pool.close()

    out = asyncio.run(run())
    assert len(out["images"]) == 2 and out["seed"] == 11
    assert out["images"][0]["url"].endswith("-0.png")
    assert out["images"][0]["content_type"] == "image/png"
    body = _upstream(sim, "/fal-ai/flux/schnell")
    assert body == {"prompt": "a red fox", "num_images": 2, "seed": 11}


def test_generate_image_error(sim: Simulator) -> None:
    sim.fault(Fault(status=429, retry_after="3"))

    async def run() -> None:
        adapter, pool = _adapter(sim)
        try:
            await generate_image(adapter, "fal-ai/flux/schnell", "x")
        finally:
            await pool.close()

    with pytest.raises(RateLimited) as e:
        asyncio.run(run())
    assert e.value.status == 429 and e.value.headers == {"Retry-After": "3"}


def test_list_models_is_configuration() -> None:
    pool = HttpPool("http://127.0.0.1:9")
    provider = Provider(
        "fal", "fal", "fal", "http://127.0.0.1:9", models=("a/b",), native_ids={"x/y": "x/y"}
    )
    assert asyncio.run(Adapter(provider, pool).list_models()) == ["a/b", "x/y"]


def test_simulator_checks_key_and_input(sim: Simulator) -> None:
    base = f"http://127.0.0.1:{sim.port}/fal-ai/any-llm"
    r = httpx.post(base, json={"prompt": "x"}, headers={"Authorization": "Key wrong"})
    assert r.status_code == 401 and r.json() == {"detail": "Invalid authentication credentials."}
    r = httpx.post(base, json={"model": "m"}, headers={"Authorization": f"Key {KEY}"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "prompt"]
    r = httpx.post(
        base, json={"prompt": "Hi", "reasoning": True}, headers={"Authorization": f"Key {KEY}"}
    )
    assert r.json() == {
        "output": ECHO_PREFIX + "Hi",
        "reasoning": "Considering the prompt: Hi",
        "partial": False,
        "error": None,
    }


# ---------------------------------------------------------------- the fidelity rule
def test_max_tokens_is_emulated_by_ending_the_answer(client: openai.OpenAI) -> None:
    """any-llm takes no output limit: the gateway ends the answer after max_tokens (at about
    4 characters a token) with finish_reason length, whole or streamed."""
    cut = (ECHO_PREFIX + "Say hello")[:12]
    r = client.chat.completions.create(model=MODEL, messages=MSG, max_tokens=3)
    assert r.choices[0].message.content == cut and r.choices[0].finish_reason == "length"
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=MSG, max_tokens=3, stream=True)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert text == cut and finishes == ["length"]


@pytest.mark.parametrize("field", ["temperature", "top_p", "seed", "stop", "presence_penalty"])
def test_sampling_fields_fal_cannot_take_are_refused_by_name(
    client: openai.OpenAI, sim: Simulator, field: str
) -> None:
    value: Any = ["x"] if field == "stop" else 1
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=MSG, extra_body={field: value})
    assert e.value.param == field and f"does not support '{field}'" in e.value.message
    assert not sim.requests
