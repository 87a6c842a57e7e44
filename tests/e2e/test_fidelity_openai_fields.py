"""The fidelity rule (canonical/fidelity.py) on the OpenAI dialect, with the official `openai`
SDK: schema-valid requests are taken (custom tools, allowed_tools, the legacy functions form,
whole-number floats, an empty tool_call_id) and reach each family carried, translated,
emulated (n, parallel_tool_calls) or refused by name; a refused field routes the request to a
provider that can take it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from gatewayz.simulators import Simulator
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway

CLAUDE = "anthropic/claude-sonnet-4-5"
OPENAI_COMPATIBLE = "test-model"
MSG: list[Any] = [{"role": "user", "content": "Say hello"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
CODE = {
    "type": "custom",
    "custom": {"name": "run_code", "description": "Runs Python", "format": {"type": "text"}},
}


def bodies(sim: Simulator, suffix: str) -> list[dict[str, Any]]:
    return [r.json for r in sim.requests if r.path.endswith(suffix)]


# ---------------------------------------------------------------- C: schema-valid requests
def test_custom_tools_and_their_tool_choice_reach_openai_compatible_providers(
    client: openai.OpenAI, upstream: Simulator
) -> None:
    choice: Any = {"type": "custom", "custom": {"name": "run_code"}}
    client.chat.completions.create(
        model=OPENAI_COMPATIBLE, messages=MSG, tools=[CODE, WEATHER], tool_choice=choice
    )
    (body,) = bodies(upstream, "/chat/completions")
    assert body["tools"] == [CODE, WEATHER] and body["tool_choice"] == choice


def test_custom_tools_are_refused_by_name_where_they_cannot_go(
    client: openai.OpenAI, upstream: Simulator
) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=CLAUDE, messages=MSG, tools=[CODE])
    assert e.value.param == "tools" and "custom tools" in e.value.message
    assert not upstream.requests


def test_allowed_tools_carried_to_openai_compatible_and_translated_for_anthropic(
    client: openai.OpenAI, upstream: Simulator
) -> None:
    allowed: Any = {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [{"type": "function", "function": {"name": "get_time"}}],
        },
    }
    client.chat.completions.create(
        model=OPENAI_COMPATIBLE, messages=MSG, tools=[WEATHER, TIME], tool_choice=allowed
    )
    assert bodies(upstream, "/chat/completions")[0]["tool_choice"] == allowed
    r = client.chat.completions.create(
        model=CLAUDE, messages=MSG, tools=[WEATHER, TIME], tool_choice=allowed
    )
    sent = bodies(upstream, "/v1/messages")[0]
    assert [t["name"] for t in sent["tools"]] == ["get_time"]
    assert sent["tool_choice"] == {"type": "any"}
    assert [c.function.name for c in r.choices[0].message.tool_calls or []] == ["get_time"]


def test_whole_number_floats_are_integers(client: openai.OpenAI, upstream: Simulator) -> None:
    r = client.chat.completions.create(
        model=OPENAI_COMPATIBLE,
        messages=MSG,
        extra_body={"seed": 1.0, "max_tokens": 100.0, "n": 1.0, "top_logprobs": 2.0},
        logprobs=True,
    )
    assert r.choices[0].message.content
    (body,) = bodies(upstream, "/chat/completions")
    assert body["seed"] == 1 and isinstance(body["seed"], int)
    assert body["max_tokens"] == 100 and body["top_logprobs"] == 2 and "n" not in body


def test_an_empty_tool_call_id_is_a_tool_call_id(
    client: openai.OpenAI, upstream: Simulator
) -> None:
    history: list[Any] = [
        *MSG,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "", "content": "noon"},
    ]
    client.chat.completions.create(model=OPENAI_COMPATIBLE, messages=history, tools=[TIME])
    assert bodies(upstream, "/chat/completions")[0]["messages"][2] == {
        "role": "tool",
        "content": "noon",
        "tool_call_id": "",
    }


LEGACY_HISTORY: list[Any] = [
    *MSG,
    {
        "role": "assistant",
        "content": None,
        "function_call": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
    },
    {"role": "function", "name": "get_weather", "content": "sunny"},
]
FUNCTIONS: list[Any] = [WEATHER["function"], TIME["function"]]


def test_legacy_functions_map_to_tools_and_the_answer_to_function_call(
    client: openai.OpenAI, upstream: Simulator
) -> None:
    r = client.chat.completions.create(
        model=CLAUDE,
        messages=MSG,
        functions=FUNCTIONS,
        function_call={"name": "get_weather"},
    )
    choice = r.choices[0]
    assert choice.finish_reason == "function_call" and not choice.message.tool_calls
    assert choice.message.function_call is not None
    assert choice.message.function_call.name == "get_weather"
    assert json.loads(choice.message.function_call.arguments)
    sent = bodies(upstream, "/v1/messages")[0]
    assert [t["name"] for t in sent["tools"]] == ["get_weather", "get_time"]
    assert sent["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
        "disable_parallel_tool_use": True,
    }


def test_legacy_function_messages_are_tool_results(
    client: openai.OpenAI, upstream: Simulator
) -> None:
    r = client.chat.completions.create(model=CLAUDE, messages=LEGACY_HISTORY, functions=FUNCTIONS)
    assert r.choices[0].message.content == "Tool result received: sunny"
    sent = bodies(upstream, "/v1/messages")[0]["messages"]
    call_id = sent[1]["content"][0]["id"]
    assert sent[1]["content"][0] == {
        "type": "tool_use",
        "id": call_id,
        "name": "get_weather",
        "input": {"city": "Oslo"},
    }
    assert sent[2]["content"] == [
        {"type": "tool_result", "tool_use_id": call_id, "content": "sunny"}
    ]
    client.chat.completions.create(
        model=OPENAI_COMPATIBLE, messages=LEGACY_HISTORY, functions=FUNCTIONS
    )
    oa = bodies(upstream, "/chat/completions")[0]["messages"]
    assert oa[1]["tool_calls"][0]["id"] == oa[2]["tool_call_id"] and oa[2]["role"] == "tool"


def test_legacy_function_call_streams_as_function_call_deltas(client: openai.OpenAI) -> None:
    name, args, finish = "", "", None
    for chunk in client.chat.completions.create(
        model=CLAUDE,
        messages=MSG,
        functions=FUNCTIONS,
        function_call={"name": "get_time"},
        stream=True,
    ):
        for c in chunk.choices:
            assert not c.delta.tool_calls
            if c.delta.function_call:
                name += c.delta.function_call.name or ""
                args += c.delta.function_call.arguments or ""
            finish = c.finish_reason or finish
    assert name == "get_time" and json.loads(args) == {} and finish == "function_call"


# ---------------------------------------------------------------- B: emulated and refused
def test_n_choices_from_anthropic_are_n_requests_each_billed(
    client: openai.OpenAI, upstream: Simulator
) -> None:
    one = client.chat.completions.with_raw_response.create(model=CLAUDE, messages=MSG)
    upstream.clear()
    two = client.chat.completions.with_raw_response.create(model=CLAUDE, messages=MSG, n=2)
    single, double = one.parse(), two.parse()
    assert [c.index for c in double.choices] == [0, 1]
    assert all(c.message.content == single.choices[0].message.content for c in double.choices)
    assert len(bodies(upstream, "/v1/messages")) == 2
    assert all("n" not in b for b in bodies(upstream, "/v1/messages"))
    assert single.usage is not None and double.usage is not None
    assert double.usage.prompt_tokens == 2 * single.usage.prompt_tokens
    assert double.usage.completion_tokens == 2 * single.usage.completion_tokens
    cost_one = float(one.headers["x-gatewayz-cost"])
    assert float(two.headers["x-gatewayz-cost"]) == pytest.approx(2 * cost_one)


def test_n_choices_stream_from_anthropic(client: openai.OpenAI, upstream: Simulator) -> None:
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    usage = None
    for chunk in client.chat.completions.create(
        model=CLAUDE, messages=MSG, n=2, stream=True, stream_options={"include_usage": True}
    ):
        usage = chunk.usage or usage
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + (c.delta.content or "")
            if c.finish_reason:
                finishes[c.index] = c.finish_reason
    assert set(texts) == {0, 1} and texts[0] == texts[1] and texts[0]
    assert finishes == {0: "stop", 1: "stop"}
    assert usage is not None and usage.completion_tokens == 2 * 9
    assert len(bodies(upstream, "/v1/messages")) == 2


def test_the_hold_covers_n_whole_requests(client: openai.OpenAI, gateway: Gateway) -> None:
    meter = gateway.services.meter
    held: list[int] = []
    original = meter.open_amount

    async def spy(principal: Any, model: str, worst: int, *args: Any) -> Any:
        held.append(worst)
        return await original(principal, model, worst, *args)

    meter.open_amount = spy  # type: ignore[method-assign]
    try:
        client.chat.completions.create(model=CLAUDE, messages=MSG, max_tokens=100)
        client.chat.completions.create(model=CLAUDE, messages=MSG, max_tokens=100, n=3)
    finally:
        del meter.open_amount
    assert held[1] == pytest.approx(3 * held[0], abs=3)  # three prompts, three outputs


def test_logprobs_are_refused_by_name_by_anthropic(
    client: openai.OpenAI, upstream: Simulator
) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=CLAUDE, messages=MSG, logprobs=True)
    assert e.value.param == "logprobs" and "does not support 'logprobs'" in e.value.message
    assert e.value.code == "unsupported_by_provider"
    assert not upstream.requests


def test_parallel_tool_calls_false_keeps_one_call_where_the_family_cannot_say_it() -> None:
    """Gemini has no switch for parallel calls: the answer keeps its first (codec level: the
    same `emulation.send` the pipeline runs)."""
    import asyncio

    from gatewayz.canonical.types import ChatRequest, ChatResponse, Choice, Message, Tool, ToolCall
    from gatewayz.pipeline import emulation

    calls = [ToolCall("a", "f", "{}"), ToolCall("b", "g", "{}")]

    class Adapter:
        async def send(self, req: ChatRequest, native: str) -> ChatResponse:
            return ChatResponse([Choice(0, Message("assistant", None, tool_calls=calls), "x")])

    class Provider:
        family = "gemini"

    class Route:
        adapter, provider, native_id = Adapter(), Provider(), "m"

    req = ChatRequest("m", [Message("user", "q")], tools=[Tool("f"), Tool("g")])
    req.parallel_tool_calls = False
    resp = asyncio.run(emulation.send(Route(), req, 4))  # type: ignore[arg-type]
    assert [c.id for c in resp.choices[0].message.tool_calls or []] == ["a"]


# ---------------------------------------------------------------- routed
@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Simulator]]:
    """A gateway where one model is served by an Anthropic and an OpenAI-compatible provider."""
    sim = Simulator()
    sim.start_in_thread()
    data_dir: Path = tmp_path_factory.mktemp("gw-shared")
    env = {
        "anthropic": {"base_url": f"http://127.0.0.1:{sim.port}", "api_key": "k"},
        "vllm": {"base_url": sim.base_url, "models": "claude-sonnet-4-5"},
    }
    gw = start_gateway(gateway_settings(data_dir, sim, provider_env=env), sim)
    for model in ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"):
        set_price(gw, model, "vllm", prompt="3", completion="15")
    yield gw, sim
    gw.stop()
    sim.stop_thread()


def test_a_field_one_family_refuses_routes_to_another(
    shared: tuple[Gateway, Simulator],
) -> None:
    gw, sim = shared
    sim.clear()
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    order = {"provider": {"order": ["anthropic", "vllm"]}}
    plain = client.chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5", messages=MSG, extra_body=order
    )
    assert plain.headers["x-gatewayz-provider"] == "anthropic"
    r = client.chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5", messages=MSG, logprobs=True, extra_body=order
    )
    assert r.headers["x-gatewayz-provider"] == "vllm"
    assert r.parse().choices[0].logprobs is not None


def test_the_end_user_is_recorded_where_the_family_has_no_field_for_it(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    """Claude Code and others send `metadata.user_id` on every request: a family without an
    end-user field (Gemini, Bedrock, Cohere, fal) is not refused for it; the access log keeps
    it (here through an OpenAI-compatible provider, which also receives it as `user`)."""
    import time

    import anthropic

    claude = anthropic.Anthropic(base_url=gateway.root, api_key=gateway.api_key, max_retries=0)
    with caplog.at_level("INFO", logger="gatewayz.access"):
        raw = claude.messages.with_raw_response.create(
            model=OPENAI_COMPATIBLE,
            max_tokens=20,
            messages=MSG,
            metadata={"user_id": "user-42"},
        )
        rid = raw.headers["request-id"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            lines = [
                r
                for r in caplog.records
                if r.name == "gatewayz.access" and r.fields["request_id"] == rid  # type: ignore[attr-defined]
            ]
            if lines:
                break
            time.sleep(0.01)
    assert lines[0].fields["end_user"] == "user-42"  # type: ignore[attr-defined]
