"""CM-10.3 end to end: the official `openai` SDK → the gateway → the Anthropic family → the
Anthropic simulator (model "anthropic/claude-sonnet-4-5", native "claude-sonnet-4-5")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest

from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.content import ECHO_PREFIX, TOOL_RESULT_PREFIX
from gatewayz.simulators.formats.anthropic.planning import THINKING_PREFIX
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway

KEY = "sk-ant-upstream"
MODEL = "anthropic/claude-sonnet-4-5"
MSG: list[Any] = [{"role": "user", "content": "Say hello"}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
        },
    },
]
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDw"
    + "ADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir: Path = tmp_path_factory.mktemp("gw-anthropic")
    env = {"anthropic": {"base_url": f"http://127.0.0.1:{sim.port}", "api_key": KEY}}
    g = start_gateway(
        gateway_settings(data_dir, sim, provider_env=env, upstream_429_retries=0), sim
    )
    set_price(g, "anthropic/claude-sonnet-4-5-tools", "anthropic", prompt="3", completion="15")
    yield g
    g.stop()


@pytest.fixture
def client(gw: Gateway, sim: Simulator) -> openai.OpenAI:
    sim.clear()
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


def upstream_bodies(sim: Simulator) -> list[dict[str, Any]]:
    return [r.json for r in sim.requests if r.path == "/v1/messages"]


def test_cm_10_3_1_plain_completion(client: openai.OpenAI, sim: Simulator) -> None:
    r = client.chat.completions.create(model=MODEL, messages=MSG, max_tokens=50)
    assert r.choices[0].message.content == ECHO_PREFIX + "Say hello"
    assert r.choices[0].finish_reason == "stop"
    assert r.model == MODEL
    assert r.usage is not None and r.usage.prompt_tokens > 0 and r.usage.completion_tokens == 9
    (req,) = [r for r in sim.requests if r.path == "/v1/messages"]
    assert req.headers["x-api-key"] == KEY and req.headers["anthropic-version"] == "2023-06-01"
    assert req.json == {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": MSG}


def test_cm_10_3_2_anthropic_fields_not_leaked(client: openai.OpenAI) -> None:
    r = client.chat.completions.with_raw_response.create(model=MODEL, messages=MSG)
    body = json.loads(r.text)
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    text = r.text
    for leaked in ("stop_reason", "end_turn", "input_tokens", "content_block", "msg_", "toolu_"):
        assert leaked not in text, leaked
    assert set(body["choices"][0]["message"]) <= {"role", "content", "refusal", "tool_calls"}


def test_cm_10_3_1_streaming_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=MSG, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ECHO_PREFIX + "Say hello"
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 9 and usage.prompt_tokens > 0
    assert "stop_reason" not in chunks[-1].model_dump_json()


def test_cm_10_3_1_tools_parallel(client: openai.OpenAI, sim: Simulator) -> None:
    r = client.chat.completions.create(
        model=MODEL, messages=MSG, tools=TOOLS, tool_choice="required"
    )
    calls = r.choices[0].message.tool_calls or []
    assert r.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert isinstance(json.loads(calls[0].function.arguments)["city"], str)
    sent = upstream_bodies(sim)[0]
    assert sent["tool_choice"] == {"type": "any"}
    assert sent["tools"][0] == {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": TOOLS[0]["function"]["parameters"],
    }
    one = client.chat.completions.create(
        model=MODEL, messages=MSG, tools=TOOLS, tool_choice="required", parallel_tool_calls=False
    )
    assert len(one.choices[0].message.tool_calls or []) == 1


def test_cm_10_3_1_streamed_parallel_tool_calls_reassemble(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(
        model="anthropic/claude-sonnet-4-5-tools", messages=MSG, tools=TOOLS
    )
    expected = [
        (c.function.name, c.function.arguments) for c in plain.choices[0].message.tool_calls or []
    ]
    assert len(expected) == 2
    calls: dict[int, dict[str, str]] = {}
    for chunk in client.chat.completions.create(
        model="anthropic/claude-sonnet-4-5-tools", messages=MSG, tools=TOOLS, stream=True
    ):
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
            slot["id"] += tc.id or ""
            if tc.function:
                slot["name"] += tc.function.name or ""
                slot["args"] += tc.function.arguments or ""
    assert [(c["name"], c["args"]) for _, c in sorted(calls.items())] == expected
    assert all(c["id"].startswith("toolu_") for c in calls.values())


def test_cm_10_3_1_tool_round_trip_merges_tool_messages(
    client: openai.OpenAI, sim: Simulator
) -> None:
    history: list[Any] = [
        {"role": "system", "content": "Be brief"},
        *MSG,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "toolu_a", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
                {"id": "toolu_b", "type": "function",
                 "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_b", "content": "noon"},
    ]  # fmt: skip
    r = client.chat.completions.create(model=MODEL, messages=history, tools=TOOLS)
    assert r.choices[0].message.content == TOOL_RESULT_PREFIX + "noon"
    sent = upstream_bodies(sim)[0]
    assert sent["system"] == [{"type": "text", "text": "Be brief"}]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
    ]
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_b", "content": "noon"},
    ]


def test_cm_10_3_1_image_input(client: openai.OpenAI, sim: Simulator) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    assert r.choices[0].message.content == ECHO_PREFIX + "What is this?"
    assert upstream_bodies(sim)[0]["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_cm_10_3_1_thinking_becomes_reasoning_content(
    client: openai.OpenAI, sim: Simulator
) -> None:
    r = client.chat.completions.create(
        model=MODEL, messages=MSG, max_tokens=3000,
        extra_body={"thinking": {"type": "enabled", "budget_tokens": 1024}},
    )  # fmt: skip
    msg = r.choices[0].message
    assert msg.model_extra is not None
    assert msg.model_extra["reasoning_content"] == THINKING_PREFIX + "Say hello"
    assert msg.content == ECHO_PREFIX + "Say hello"
    stream = client.chat.completions.create(
        model=MODEL, messages=MSG, stream=True, reasoning_effort="low"
    )
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for c in stream
        if c.choices
    )
    assert reasoning == THINKING_PREFIX + "Say hello"
    assert upstream_bodies(sim)[1]["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_cm_10_3_1_stop_sequence_and_length(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=MODEL, messages=MSG, stop=["simulator"])
    assert r.choices[0].message.content == "Hello from the Gatewayz "
    assert r.choices[0].finish_reason == "stop"
    r = client.chat.completions.create(model=MODEL, messages=MSG, max_tokens=2)
    assert r.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault(status=529), 502),
        (Fault(status=429, retry_after="3"), 429),
        (Fault(status=401), 502),
        (Fault(malformed=True), 502),
    ],
)
def test_cm_10_3_1_upstream_errors_are_mapped(
    client: openai.OpenAI, sim: Simulator, fault: Fault, status: int
) -> None:
    sim.fault(fault)
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=MODEL, messages=MSG)
    assert e.value.status_code == status
    if fault.retry_after:
        assert e.value.response.headers["retry-after"] == "3"


def test_upstream_400_message_passes_through(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=MODEL, messages=MSG, max_tokens=1000,
            extra_body={"thinking": {"type": "enabled", "budget_tokens": 1024}},
        )  # fmt: skip
    assert "budget_tokens" in str(e.value)


def test_cm_10_3_1_mid_stream_drop_ends_with_error_event(gw: Gateway, sim: Simulator) -> None:
    sim.clear()
    sim.fault(Fault(drop_after_chunks=4))
    with httpx.stream(
        "POST",
        gw.base_url + "/chat/completions",
        headers={"Authorization": f"Bearer {gw.api_key}"},
        json={"model": MODEL, "messages": MSG, "stream": True},
    ) as r:
        assert r.status_code == 200
        events = [e for e in r.read().decode().split("\n\n") if e]
    assert events[-1] != "data: [DONE]"
    assert json.loads(events[-1][6:])["error"]["code"] == "upstream_unavailable"
