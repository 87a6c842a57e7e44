"""The official `anthropic` SDK against a running gateway: `/v1/messages` reaching both an
OpenAI-compatible provider and the native Anthropic provider through the simulators."""

from __future__ import annotations

import json

import anthropic
import httpx2 as httpx
import openai
import pytest

from gatewayz.simulators import Fault
from tests.e2e.harness import Gateway

# One model per provider family: OpenAI-compatible (vllm) and Anthropic-native.
MODELS = ["test-model", "anthropic/claude-sonnet-4-5"]
MSG = [{"role": "user", "content": "Say hello"}]
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
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


@pytest.fixture
def claude(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.root, api_key=gateway.api_key, max_retries=0)


@pytest.mark.parametrize("model", MODELS)
def test_cm_10_2_1_anthropic_response_format_has_content(
    claude: anthropic.Anthropic, model: str
) -> None:
    m = claude.messages.create(model=model, max_tokens=100, messages=MSG)
    assert m.type == "message" and m.role == "assistant" and m.id.startswith("msg_")
    assert m.model == model
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text.startswith("Hello from the Gatewayz simulator")
    assert m.stop_reason == "end_turn"


@pytest.mark.parametrize("model", MODELS)
def test_cm_10_2_2_anthropic_response_format_has_usage(
    claude: anthropic.Anthropic, model: str
) -> None:
    m = claude.messages.create(model=model, max_tokens=100, messages=MSG)
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_cm_10_2_3_anthropic_streaming_event_format(gateway: Gateway, model: str) -> None:
    with httpx.stream(
        "POST",
        gateway.root + "/v1/messages",
        headers={"x-api-key": gateway.api_key, "anthropic-version": "2023-06-01"},
        json={"model": model, "max_tokens": 100, "messages": MSG, "stream": True},
    ) as r:
        assert r.status_code == 200
        raw = r.read().decode()
    events = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"]
        events.append(lines["event"])
    assert events[0] == "message_start"
    assert events[-2:] == ["message_delta", "message_stop"]
    body = [e for e in events if e != "ping"]
    assert body[1] == "content_block_start" and body[-3] == "content_block_stop"
    assert set(body[2:-3]) == {"content_block_delta"}


@pytest.mark.parametrize("model", MODELS)
def test_stream_helper_accumulates_the_final_message(
    claude: anthropic.Anthropic, model: str
) -> None:
    with claude.messages.stream(model=model, max_tokens=100, messages=MSG) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("Hello from the Gatewayz simulator")
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_parallel_tool_use(claude: anthropic.Anthropic, model: str, stream: bool) -> None:
    kwargs = {"model": model, "max_tokens": 200, "messages": MSG, "tools": TOOLS}
    kwargs["tool_choice"] = {"type": "any"}
    if stream:
        with claude.messages.stream(**kwargs) as s:
            m = s.get_final_message()
    else:
        m = claude.messages.create(**kwargs)
    assert m.stop_reason == "tool_use"
    uses = [b for b in m.content if b.type == "tool_use"]
    assert [u.name for u in uses] == ["get_weather", "get_time"]
    assert set(uses[0].input) == {"city", "days"} and uses[0].id
    assert not [b for b in m.content if b.type == "text" and not b.text]  # no empty text blocks


@pytest.mark.parametrize("model", MODELS)
def test_tool_result_turn(claude: anthropic.Anthropic, gateway: Gateway, model: str) -> None:
    messages = [
        {"role": "user", "content": "weather and time?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Oslo", "days": 1},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {"tz": "CET"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "noon"}],
                },
            ],
        },
    ]
    m = claude.messages.create(model=model, max_tokens=100, messages=messages, tools=TOOLS)
    assert m.stop_reason == "end_turn" and m.content[0].type == "text"
    sent = gateway.upstream.requests[-1].json
    if model == "test-model":  # OpenAI-compatible upstream: two `tool` messages
        roles = [msg["role"] for msg in sent["messages"]]
        assert roles == ["user", "assistant", "tool", "tool"]
        assert [tc["id"] for tc in sent["messages"][1]["tool_calls"]] == ["toolu_1", "toolu_2"]
    else:  # Anthropic upstream: the tool results stay one user turn
        assert [msg["role"] for msg in sent["messages"]] == ["user", "assistant", "user"]
        assert [b["type"] for b in sent["messages"][2]["content"]] == ["tool_result"] * 2


@pytest.mark.parametrize("model", MODELS)
def test_stop_sequences_and_max_tokens(claude: anthropic.Anthropic, model: str) -> None:
    m = claude.messages.create(model=model, max_tokens=3, messages=MSG)
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 3
    m = claude.messages.create(
        model=model, max_tokens=100, messages=MSG, stop_sequences=["Gatewayz"]
    )
    assert "Gatewayz" not in m.content[0].text
    if model == "test-model":
        # OpenAI's format says only "stop", never which sequence ended the turn: the honest
        # translation is end_turn (guessing from the text would be wrong when it ends naturally).
        assert m.stop_reason == "end_turn" and m.stop_sequence is None
    else:
        assert m.stop_reason == "stop_sequence" and m.stop_sequence == "Gatewayz"


def test_system_and_params_forwarded_to_openai_compatible(
    claude: anthropic.Anthropic, gateway: Gateway
) -> None:
    claude.messages.create(
        model="test-model",
        max_tokens=50,
        system=[{"type": "text", "text": "Be brief."}],
        messages=MSG,
        # anthropic 2.x dropped these keywords; the wire format still carries them.
        extra_body={"temperature": 0.3, "top_p": 0.9},
        metadata={"user_id": "u-7"},
    )
    sent = gateway.upstream.requests[-1].json
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["temperature"] == 0.3 and sent["top_p"] == 0.9 and sent["max_tokens"] == 50
    assert sent["user"] == "u-7"


def test_bearer_auth_also_works(gateway: Gateway) -> None:
    r = httpx.post(
        gateway.root + "/v1/messages",
        headers={"Authorization": f"Bearer {gateway.api_key}"},
        json={"model": "test-model", "max_tokens": 10, "messages": MSG},
    )
    assert r.status_code == 200 and r.json()["type"] == "message"


def test_errors_are_anthropic_shaped(claude: anthropic.Anthropic, gateway: Gateway) -> None:
    bad = anthropic.Anthropic(base_url=gateway.root, api_key="gw_test_" + "x" * 43, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as e:
        bad.messages.create(model="test-model", max_tokens=10, messages=MSG)
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.NotFoundError) as e:
        claude.messages.create(model="nobody-serves-this", max_tokens=10, messages=MSG)
    assert e.value.body["error"]["type"] == "not_found_error"
    r = httpx.post(
        gateway.root + "/v1/messages",
        headers={"x-api-key": gateway.api_key},
        json={"model": "test-model", "messages": MSG},  # max_tokens is required
    )
    assert r.status_code == 400
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    gateway.upstream.fault(Fault(status=503))
    with pytest.raises(anthropic.APIStatusError) as e:
        claude.messages.create(model="test-model", max_tokens=10, messages=MSG)
    assert e.value.status_code == 503 and e.value.body["type"] == "error"


def test_mid_stream_failure_is_an_error_event(gateway: Gateway) -> None:
    gateway.upstream.fault(Fault(drop_after_chunks=3))
    with httpx.stream(
        "POST",
        gateway.root + "/v1/messages",
        headers={"x-api-key": gateway.api_key},
        json={"model": "test-model", "max_tokens": 100, "messages": MSG, "stream": True},
    ) as r:
        raw = r.read().decode()
    last = raw.strip().split("\n\n")[-1]
    assert last.startswith("event: error\n")
    assert json.loads(last.split("data: ", 1)[1])["error"]["type"] == "api_error"


def test_count_tokens(claude: anthropic.Anthropic) -> None:
    r = claude.messages.count_tokens(
        model="test-model", messages=[{"role": "user", "content": "x" * 400}]
    )
    assert r.input_tokens == 100
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.count_tokens(model="nobody-serves-this", messages=MSG)


def test_cm_10_3_1_response_normalized_regardless_of_provider(client: openai.OpenAI) -> None:
    """The same request answered by an OpenAI-compatible and an Anthropic provider gives
    responses of the same shape."""
    shapes = []
    for model in MODELS:
        r = client.chat.completions.create(model=model, messages=MSG, max_tokens=100)
        d = r.model_dump(exclude_none=True)
        shapes.append(
            (
                sorted(d),
                sorted(d["choices"][0]),
                sorted(d["choices"][0]["message"]),
                sorted(d["usage"]),
            )
        )
        assert r.choices[0].message.content.startswith("Hello from the Gatewayz simulator")
    assert shapes[0] == shapes[1]
