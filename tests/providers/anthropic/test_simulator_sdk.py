"""The Anthropic simulator format, driven by the official `anthropic` SDK: it must speak the
real Messages wire format (non-streamed, the SDK's stream helper, tools, thinking, errors)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import orjson
import pytest

from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.content import ECHO_PREFIX, TOOL_RESULT_PREFIX
from gatewayz.simulators.formats.anthropic import models
from gatewayz.simulators.formats.anthropic.planning import THINKING_PREFIX
from gatewayz.simulators.protocol import Request

KEY = "sk-ant-sim"
MSG = [{"role": "user", "content": "Say hello"}]
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
    {
        "name": "get_time",
        "input_schema": {
            "type": "object",
            "properties": {"tz": {"type": "string"}},
            "required": ["tz"],
        },
    },
]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture
def client(sim: Simulator) -> anthropic.Anthropic:
    sim.clear()
    return anthropic.Anthropic(base_url=f"http://127.0.0.1:{sim.port}", api_key=KEY, max_retries=0)


def test_create_plain(client: anthropic.Anthropic) -> None:
    r = client.messages.create(model="claude-sim-1", max_tokens=100, messages=MSG)
    assert r.id.startswith("msg_") and r.type == "message" and r.role == "assistant"
    assert r.model == "claude-sim-1"
    assert [b.type for b in r.content] == ["text"]
    assert r.content[0].text == ECHO_PREFIX + "Say hello"  # type: ignore[union-attr]
    assert r.stop_reason == "end_turn" and r.stop_sequence is None
    assert r.usage.input_tokens > 0 and r.usage.output_tokens == 9
    assert r.usage.cache_read_input_tokens == 0


def test_stream_helper_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="claude-x", max_tokens=100, messages=MSG) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == ECHO_PREFIX + "Say hello"
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 9


def test_raw_stream_event_sequence(client: anthropic.Anthropic) -> None:
    events = list(
        client.messages.create(model="claude-x", max_tokens=100, messages=MSG, stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_parallel_tools_streamed_and_not(client: anthropic.Anthropic) -> None:
    r = client.messages.create(
        model="claude-x", max_tokens=100, messages=MSG, tools=TOOLS, tool_choice={"type": "any"}
    )
    assert r.stop_reason == "tool_use"
    uses = [b for b in r.content if b.type == "tool_use"]
    assert [u.name for u in uses] == ["get_weather", "get_time"]
    assert all(u.id.startswith("toolu_") for u in uses)
    assert isinstance(uses[0].input, dict) and isinstance(uses[0].input["city"], str)
    with client.messages.stream(
        model="claude-x", max_tokens=100, messages=MSG, tools=TOOLS, tool_choice={"type": "any"}
    ) as stream:
        final = stream.get_final_message()
    assert [(b.type, b.input) for b in final.content] == [(u.type, u.input) for u in uses]  # type: ignore[union-attr]


def test_tool_choice_variants(client: anthropic.Anthropic) -> None:
    one = client.messages.create(
        model="claude-x", max_tokens=100, messages=MSG, tools=TOOLS,
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
    )  # fmt: skip
    assert [b.name for b in one.content] == ["get_weather"]  # type: ignore[union-attr]
    named = client.messages.create(
        model="claude-x", max_tokens=100, messages=MSG, tools=TOOLS,
        tool_choice={"type": "tool", "name": "get_time"},
    )  # fmt: skip
    assert [b.name for b in named.content] == ["get_time"]  # type: ignore[union-attr]
    auto = client.messages.create(model="claude-x", max_tokens=100, messages=MSG, tools=TOOLS)
    assert auto.stop_reason == "end_turn"
    by_name = client.messages.create(
        model="claude-tools", max_tokens=100, messages=MSG, tools=TOOLS
    )
    assert by_name.stop_reason == "tool_use"


def test_tool_result_round_trip(client: anthropic.Anthropic) -> None:
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "noon"}
    messages: list[Any] = [
        *MSG,
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [result]},
    ]
    r = client.messages.create(model="claude-tools", max_tokens=100, messages=messages, tools=TOOLS)
    assert r.content[0].text == TOOL_RESULT_PREFIX + "noon"  # type: ignore[union-attr]


def test_thinking_block_with_signature(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="claude-x",
        max_tokens=2000,
        messages=MSG,
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        final = stream.get_final_message()  # fmt: skip
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == THINKING_PREFIX + "Say hello"  # type: ignore[union-attr]
    assert len(final.content[0].signature) > 20  # type: ignore[union-attr]
    with pytest.raises(anthropic.BadRequestError, match="budget_tokens"):
        client.messages.create(
            model="claude-x", max_tokens=1000, messages=MSG,
            thinking={"type": "enabled", "budget_tokens": 1024},
        )  # fmt: skip


def test_stop_sequences_and_max_tokens(client: anthropic.Anthropic) -> None:
    r = client.messages.create(
        model="claude-x", max_tokens=100, messages=MSG, stop_sequences=["simulator"]
    )
    assert (r.stop_reason, r.stop_sequence) == ("stop_sequence", "simulator")
    assert r.content[0].text == "Hello from the Gatewayz "  # type: ignore[union-attr]
    r = client.messages.create(model="claude-x", max_tokens=2, messages=MSG)
    assert r.stop_reason == "max_tokens" and r.content[0].text == "Hello from "  # type: ignore[union-attr]
    assert r.usage.output_tokens == 2


def test_count_tokens(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model="claude-x", messages=MSG)
    created = client.messages.create(model="claude-x", max_tokens=10, messages=MSG)
    assert counted.input_tokens == created.usage.input_tokens > 0
    with_tools = client.messages.count_tokens(model="claude-x", messages=MSG, tools=TOOLS)
    assert with_tools.input_tokens > counted.input_tokens


def test_auth_version_and_validation_errors(sim: Simulator, client: anthropic.Anthropic) -> None:
    bad = anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{sim.port}", api_key="nope", max_retries=0
    )
    with pytest.raises(anthropic.AuthenticationError) as info:
        bad.messages.create(model="claude-x", max_tokens=10, messages=MSG)
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    url = f"http://127.0.0.1:{sim.port}/v1/messages"
    body = {"model": "claude-x", "max_tokens": 10, "messages": MSG}
    r = httpx.post(url, json=body, headers={"x-api-key": KEY})
    assert r.status_code == 400
    assert r.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "anthropic-version: header is required",
        },
    }
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    r = httpx.post(url, json={"model": "claude-x", "messages": MSG}, headers=headers)
    assert r.status_code == 400
    assert r.json()["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }


def test_faults_in_anthropic_shape(sim: Simulator, client: anthropic.Anthropic) -> None:
    sim.fault(Fault(status=529))
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="claude-x", max_tokens=10, messages=MSG)
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    sim.fault(Fault(status=429, retry_after="7"))
    with pytest.raises(anthropic.RateLimitError) as rl:
        client.messages.create(model="claude-x", max_tokens=10, messages=MSG)
    assert rl.value.response.headers["retry-after"] == "7"
    sim.fault(Fault(drop_after_chunks=3))
    with (
        pytest.raises(httpx.HTTPError),
        client.messages.stream(model="claude-x", max_tokens=100, messages=MSG) as stream,
    ):
        stream.get_final_message()
    sim.fault(Fault(text="exact words", omit_usage=False))
    r = client.messages.create(model="claude-x", max_tokens=1, messages=MSG)
    assert r.content[0].text == "exact words"  # type: ignore[union-attr]
    sim.fault(Fault(empty_stream=True))
    with client.messages.stream(model="claude-x", max_tokens=10, messages=MSG) as stream:
        assert stream.get_final_message().content == []


def test_models_handler_anthropic_shape_and_pages(sim: Simulator) -> None:
    def get(query: str) -> dict[str, Any]:
        headers = {"anthropic-version": "2023-06-01", "x-api-key": KEY}
        req = Request("GET", "/v1/models", headers, b"", True, "1.1", query)
        reply = models(sim, req, None, None)  # type: ignore[arg-type]
        head, _, body = reply.head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        return orjson.loads(body)  # type: ignore[no-any-return]

    half = (len(sim.models) + 1) // 2  # two pages
    page = get(f"limit={half}")
    assert [m["id"] for m in page["data"]] == list(sim.models[:half])
    assert page["data"][0]["type"] == "model" and page["has_more"] is True
    rest = get(f"limit={half}&after_id={page['last_id']}")
    assert [m["id"] for m in rest["data"]] == list(sim.models[half:]) and rest["has_more"] is False
