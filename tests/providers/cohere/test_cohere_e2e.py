"""The official `openai` SDK against a running gateway whose Cohere provider points at the
simulator's Cohere v2 format (model `cohere/command-a-03-2025` → native `command-a-03-2025`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx2 as httpx
import openai
import pytest

from gatewayz.providers.cohere import Adapter
from gatewayz.providers.provider import Provider
from gatewayz.providers.transport import HttpPool
from gatewayz.simulators import DEFAULT_MODELS, Fault, Simulator
from gatewayz.simulators.content import ECHO_PREFIX, TOOL_RESULT_PREFIX
from tests.e2e.harness import WEATHER_TOOLS, Gateway, gateway_settings, set_price, start_gateway

KEY = "co-test-key"
MODEL = "cohere/command-a-03-2025"
MSG = [{"role": "user", "content": "Say hello"}]
TOOLS = WEATHER_TOOLS


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {"cohere": {"base_url": f"http://127.0.0.1:{sim.port}/cohere", "api_key": KEY}}
    g = start_gateway(
        gateway_settings(
            tmp_path_factory.mktemp("gw"), sim, provider_env=env, upstream_429_retries=0
        ),
        sim,
    )
    # A test-only name the simulator answers with tool calls: Cohere's synced list does not
    # have it, so it is served only with a price of its own.
    set_price(g, "cohere/command-a-tools", "cohere", prompt="2.5", completion="10")
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def _clean(sim: Simulator) -> None:
    sim.clear()


@pytest.fixture
def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


def _upstream(sim: Simulator) -> dict:
    chats = [r for r in sim.requests if r.path == "/cohere/v2/chat"]
    assert len(chats) == 1
    assert chats[0].headers["authorization"] == f"Bearer {KEY}"
    return chats[0].json


def test_plain_completion_with_usage(client: openai.OpenAI, sim: Simulator) -> None:
    r = client.chat.completions.create(model=MODEL, messages=MSG, max_tokens=100, temperature=0.2)
    assert r.model == MODEL
    assert r.choices[0].message.content == ECHO_PREFIX + "Say hello"
    assert r.choices[0].finish_reason == "stop"
    # billed_units (3), not `tokens` (3 + the simulator's TEMPLATE_TOKENS)
    assert r.usage is not None and r.usage.prompt_tokens == 3
    assert r.usage.completion_tokens == len((ECHO_PREFIX + "Say hello").split())
    body = _upstream(sim)
    assert body["model"] == "command-a-03-2025" and body["stream"] is False
    assert body["messages"] == MSG and body["max_tokens"] == 100 and body["temperature"] == 0.2


def test_max_tokens_finish_is_length(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=MODEL, messages=MSG, max_tokens=2)
    assert r.choices[0].message.content == "Hello from "
    assert r.choices[0].finish_reason == "length"


def test_streaming_with_usage(client: openai.OpenAI, sim: Simulator) -> None:
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
    assert usage is not None and not chunks[-1].choices
    assert (usage.prompt_tokens, usage.completion_tokens) == (3, len(text.split()))
    assert "estimated" not in (usage.model_extra or {})
    assert _upstream(sim)["stream"] is True


def test_parallel_tool_calls(client: openai.OpenAI, sim: Simulator) -> None:
    r = client.chat.completions.create(
        model="cohere/command-a-tools",
        messages=[{"role": "user", "content": "Paris?"}],
        tools=TOOLS,
    )
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    assert msg.tool_calls is not None
    assert [tc.function.name for tc in msg.tool_calls] == ["get_weather", "get_time"]
    args = json.loads(msg.tool_calls[0].function.arguments)
    assert isinstance(args["city"], str) and isinstance(args["days"], int)
    assert all(tc.id.startswith("call_") for tc in msg.tool_calls)
    # Cohere's tool_plan comes back as reasoning
    assert (msg.model_extra or {})[
        "reasoning_content"
    ] == "I will call get_weather, get_time to answer this."
    body = _upstream(sim)
    assert body["model"] == "command-a-tools"
    assert body["tools"][0]["function"]["name"] == "get_weather" and "tool_choice" not in body


def test_tool_choice_required_streamed(client: openai.OpenAI, sim: Simulator) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=MSG, tools=TOOLS, tool_choice="required", stream=True
    )
    calls: dict[int, dict] = {}
    reasoning, finish = "", None
    for c in stream:
        if not c.choices:
            continue
        d = c.choices[0].delta
        reasoning += (d.model_extra or {}).get("reasoning_content") or ""
        for tc in d.tool_calls or ():
            slot = calls.setdefault(tc.index, {"id": None, "name": None, "args": ""})
            if tc.id:
                slot["id"], slot["name"] = tc.id, tc.function.name
            slot["args"] += tc.function.arguments or ""
        finish = c.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[1]["args"]).keys() == {"tz"}
    assert reasoning == "I will call get_weather, get_time to answer this."
    assert _upstream(sim)["tool_choice"] == "REQUIRED"


def test_tool_round_trip(client: openai.OpenAI, sim: Simulator) -> None:
    messages = [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris","days":1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "22C and sunny"},
    ]
    r = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert r.choices[0].message.content == TOOL_RESULT_PREFIX + "22C and sunny"
    assert r.choices[0].finish_reason == "stop"
    sent = _upstream(sim)["messages"]
    assert sent[0] == {"role": "system", "content": "Use tools."}
    assert sent[2]["tool_calls"][0] == messages[2]["tool_calls"][0]
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": "22C and sunny"}


def test_image_input(client: openai.OpenAI, sim: Simulator) -> None:
    url = "data:image/png;base64,iVBORw0KGgo="
    content = [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
    ]
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    assert r.choices[0].message.content == ECHO_PREFIX + "Describe"
    assert _upstream(sim)["messages"][0]["content"] == [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
    ]


def test_json_schema_response_format(client: openai.OpenAI, sim: Simulator) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    r = client.chat.completions.create(
        model=MODEL,
        messages=MSG,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    assert isinstance(json.loads(r.choices[0].message.content)["n"], int)
    assert _upstream(sim)["response_format"] == {"type": "json_object", "json_schema": schema}


@pytest.mark.parametrize(
    ("upstream_status", "sdk_error", "status"),
    [
        (400, openai.BadRequestError, 400),
        (401, openai.APIStatusError, 502),
        (429, openai.RateLimitError, 429),
        (500, openai.APIStatusError, 502),
        (503, openai.InternalServerError, 503),
    ],
)
def test_upstream_error_status_is_mapped(
    client: openai.OpenAI, sim: Simulator, upstream_status: int, sdk_error: type, status: int
) -> None:
    sim.fault(Fault(status=upstream_status, retry_after="5"))
    with pytest.raises(sdk_error) as e:
        client.chat.completions.create(model=MODEL, messages=MSG)
    assert e.value.status_code == status
    assert f"HTTP {upstream_status}" in e.value.response.json()["error"]["message"]
    if status == 429:
        assert e.value.response.headers["retry-after"] == "5"


def test_cohere_error_message_passes_through(client: openai.OpenAI, sim: Simulator) -> None:
    sim.fault(Fault(status=400, body={"id": "e1", "message": "invalid request: p must be < 1"}))
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=MSG)
    assert e.value.response.json()["error"]["message"] == "invalid request: p must be < 1"


def test_error_before_first_byte_of_stream(client: openai.OpenAI, sim: Simulator) -> None:
    sim.fault(Fault(status=503))
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model=MODEL, messages=MSG, stream=True)
    assert e.value.status_code == 503


@pytest.mark.parametrize("fault", [Fault(drop_after_chunks=3), Fault(malformed=True)])
def test_broken_stream_ends_with_error_event(gw: Gateway, sim: Simulator, fault: Fault) -> None:
    sim.fault(fault)
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


def test_malformed_body_is_502(client: openai.OpenAI, sim: Simulator) -> None:
    sim.fault(Fault(malformed=True))
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=MODEL, messages=MSG)
    assert e.value.status_code == 502


def test_omitted_usage_is_estimated(client: openai.OpenAI, sim: Simulator) -> None:
    sim.fault(Fault(omit_usage=True))
    r = client.chat.completions.create(model=MODEL, messages=MSG)
    assert r.usage is not None and (r.usage.model_extra or {}).get("estimated") is True


def test_list_models(sim: Simulator) -> None:
    async def run() -> list[str]:
        base = f"http://127.0.0.1:{sim.port}/cohere"
        pool = HttpPool(base)
        provider = Provider("cohere", "Cohere", "cohere", base, api_key=KEY)
        try:
            return await Adapter(provider, pool).list_models()
        finally:
            await pool.close()

    assert asyncio.run(run()) == [m.split("/")[1] for m in DEFAULT_MODELS]
    listed = [r for r in sim.requests if r.path == "/cohere/v1/models"]
    assert len(listed) == 1 and listed[0].headers["authorization"] == f"Bearer {KEY}"


def test_n_choices_are_n_requests_merged(client: openai.OpenAI, sim: Simulator) -> None:
    """Cohere answers one choice: n are n requests in parallel (canonical/fidelity.py)."""
    r = client.chat.completions.create(model=MODEL, messages=MSG, n=2)
    assert [c.index for c in r.choices] == [0, 1]
    assert r.choices[0].message.content == r.choices[1].message.content
    chats = [q.json for q in sim.requests if q.path == "/cohere/v2/chat"]
    assert len(chats) == 2 and all("n" not in c for c in chats)
