"""The official `openai` SDK against a running gateway, through the provider simulator."""

from __future__ import annotations

import json

import httpx2 as httpx
import openai
import pytest

from gatewayz.simulators import Fault
from tests.e2e.harness import UPSTREAM_KEY, WEATHER_TOOLS, Gateway

MSG = [{"role": "user", "content": "Say hello"}]


# ---------------------------------------------------------------- CM-10.1: response shape
def test_cm_10_1_1_openai_response_format_has_choices(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="test-model", messages=MSG)
    assert len(r.choices) == 1
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content.startswith("Hello from the Gatewayz simulator")
    assert r.choices[0].finish_reason == "stop"


def test_cm_10_1_2_openai_response_format_has_usage(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="test-model", messages=MSG)
    assert r.usage is not None
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_cm_10_1_3_openai_response_format_has_id(client: openai.OpenAI) -> None:
    a = client.chat.completions.create(model="test-model", messages=MSG)
    b = client.chat.completions.create(model="test-model", messages=MSG)
    assert a.id.startswith("chatcmpl-") and b.id.startswith("chatcmpl-")
    assert a.id != b.id
    assert a.object == "chat.completion" and a.created > 0


def test_cm_10_1_4_openai_response_format_has_model(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="openai/gpt-4o", messages=MSG)
    assert r.model == "openai/gpt-4o"


def test_cm_10_1_5_openai_streaming_sse_format(gateway: Gateway) -> None:
    events = _raw_stream(gateway, {"model": "test-model", "messages": MSG, "stream": True})
    assert events, "no events"
    for ev in events:
        assert ev.startswith("data: ") and ev.endswith("\n\n"), ev
    chunks = [json.loads(ev[6:]) for ev in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks).startswith(
        "Hello from the Gatewayz simulator"
    )


def test_cm_10_1_6_openai_streaming_ends_with_done(gateway: Gateway) -> None:
    events = _raw_stream(gateway, {"model": "test-model", "messages": MSG, "stream": True})
    assert events[-1] == "data: [DONE]\n\n"
    assert sum(ev == "data: [DONE]\n\n" for ev in events) == 1


def test_cm_10_1_7_openai_json_mode_returns_valid_json(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="test-model", messages=MSG, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(r.choices[0].message.content), dict)
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    r = client.chat.completions.create(
        model="test-model",
        messages=MSG,
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
    )
    value = json.loads(r.choices[0].message.content)
    assert isinstance(value["name"], str) and isinstance(value["age"], int)


def test_cm_10_1_8_openai_tool_calling_response_format(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="test-model", messages=MSG, tools=WEATHER_TOOLS, tool_choice="required"
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]  # parallel
    args = json.loads(calls[0].function.arguments)
    assert set(args) == {"city", "days"}
    assert all(c.id and c.type == "function" for c in calls)


def test_cm_10_1_9_openai_logprobs_included_when_requested(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="test-model", messages=MSG, logprobs=True, top_logprobs=2
    )
    content = r.choices[0].logprobs.content
    assert content and all(t.logprob <= 0 for t in content)
    assert len(content[0].top_logprobs) == 2
    r = client.chat.completions.create(model="test-model", messages=MSG)
    assert r.choices[0].logprobs is None


# ---------------------------------------------------------------- streaming, tools, params
async def test_streaming_with_usage_via_sdk(aclient: openai.AsyncOpenAI) -> None:
    stream = await aclient.chat.completions.create(
        model="test-model", messages=MSG, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1] if c.choices)
    assert text.startswith("Hello from the Gatewayz simulator")
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_streaming_without_include_usage_sends_no_usage(aclient: openai.AsyncOpenAI) -> None:
    stream = await aclient.chat.completions.create(model="test-model", messages=MSG, stream=True)
    chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


async def test_streamed_parallel_tool_calls_reassemble(aclient: openai.AsyncOpenAI) -> None:
    stream = await aclient.chat.completions.create(
        model="test-model", messages=MSG, tools=WEATHER_TOOLS, tool_choice="required", stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    deltas = 0
    finish = None
    async for chunk in stream:
        for ch in chunk.choices:
            finish = ch.finish_reason or finish
            for tc in ch.delta.tool_calls or []:
                deltas += 1
                entry = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                entry["id"] += tc.id or ""
                entry["name"] += (tc.function and tc.function.name) or ""
                entry["args"] += (tc.function and tc.function.arguments) or ""
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert deltas > len(calls), "arguments should arrive split across several deltas"
    for entry in calls.values():
        assert entry["id"].startswith("call_")
        json.loads(entry["args"])


def test_tool_round_trip_messages_are_forwarded(client: openai.OpenAI, gateway: Gateway) -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo","days":1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    r = client.chat.completions.create(model="test-model", messages=messages, tools=WEATHER_TOOLS)
    assert "sunny" in r.choices[0].message.content
    sent = gateway.upstream.requests[-1].json
    assert sent["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert sent["messages"][2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_1"}


def test_parameters_are_forwarded_upstream(client: openai.OpenAI, gateway: Gateway) -> None:
    r = client.chat.completions.create(
        model="test-model",
        messages=MSG,
        n=2,
        stop=["Gatewayz"],
        seed=7,
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=50,
        user="u-1",
    )
    assert [c.index for c in r.choices] == [0, 1]
    assert all("Gatewayz" not in (c.message.content or "") for c in r.choices)
    sent = gateway.upstream.requests[-1].json
    assert sent["model"] == "test-model"
    for k, v in {"n": 2, "stop": ["Gatewayz"], "seed": 7, "temperature": 0.2, "top_p": 0.9}.items():
        assert sent[k] == v
    assert sent["max_tokens"] == 50 and sent["user"] == "u-1"


def test_max_tokens_truncates_with_length(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="test-model", messages=MSG, max_tokens=3)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3


def test_provider_key_and_native_id_sent_upstream(client: openai.OpenAI, gateway: Gateway) -> None:
    r = client.chat.completions.create(model="openai/gpt-4o-mini", messages=MSG, max_tokens=4)
    assert r.model == "openai/gpt-4o-mini"
    seen = gateway.upstream.requests[-1]
    assert seen.json["model"] == "gpt-4o-mini"
    assert seen.json["max_completion_tokens"] == 4 and "max_tokens" not in seen.json
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_simulated_provider_answers_with_zero_keys(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="simulated/echo", messages=MSG)
    assert "Say hello" in r.choices[0].message.content
    again = client.chat.completions.create(model="simulated/echo", messages=MSG)
    assert again.choices[0].message.content == r.choices[0].message.content  # deterministic


def test_response_headers(gateway: Gateway) -> None:
    r = httpx.post(
        gateway.base_url + "/chat/completions",
        headers={"Authorization": f"Bearer {gateway.api_key}", "X-Request-ID": "my-req-1"},
        json={"model": "test-model", "messages": MSG},
    )
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "my-req-1"
    assert float(r.headers["x-gatewayz-overhead-ms"]) >= 0
    assert r.headers["x-gatewayz-provider"] == "vllm"
    generated = httpx.get(gateway.root + "/health").headers["x-request-id"]
    assert len(generated) == 32


# ---------------------------------------------------------------- models
def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "simulated/echo" in ids and "test-model" in ids
    m = client.models.retrieve("simulated/echo")
    assert m.id == "simulated/echo" and m.owned_by == "gatewayz-simulated"
    assert m.model_extra["simulated"] is True
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope/nothing")


# ---------------------------------------------------------------- errors
def test_bad_key_is_401_in_openai_shape(gateway: Gateway) -> None:
    bad = openai.OpenAI(base_url=gateway.base_url, api_key="gw_test_" + "x" * 43, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model="test-model", messages=MSG)
    assert e.value.status_code == 401
    assert e.value.body["type"] == "authentication_error"
    r = httpx.post(gateway.base_url + "/chat/completions", json={"model": "m", "messages": MSG})
    assert r.status_code == 401 and "error" in r.json()
    r = httpx.get(gateway.base_url + "/models", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[]", None),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "test-model"}', "messages"),
        (b'{"model": "test-model", "messages": []}', "messages"),
        (b'{"model": "test-model", "messages": "hi"}', "messages"),
        (b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "m", "messages": [{"role": "wizard", "content": "x"}]}', "messages[0].role"),
        (b'{"model": "m", "messages": [{"role": "user", "content": 3}]}', "messages[0].content"),
        (
            b'{"model": "m", "messages": [{"role":"user","content":"x"}], "temperature": "hot"}',
            "temperature",
        ),
        (
            b'{"model": "m", "messages": [{"role":"user","content":"x"}], "temperature": 9}',
            "temperature",
        ),
        (b'{"model": "m", "messages": [{"role":"user","content":"x"}], "n": 0}', "n"),
        (b'{"model": "m", "messages": [{"role":"user","content":"x"}], "stream": "yes"}', "stream"),
        (
            b'{"model": "m", "messages": [{"role":"user","content":"x"}], "tools": [{}]}',
            "tools[0].type",
        ),
        (b'{"model": "m", "messages": [{"role":"tool","content":"x"}]}', "messages.tool_call_id"),
    ],
)
def test_bad_input_is_400_in_openai_shape(gateway: Gateway, body: bytes, param: str | None) -> None:
    r = httpx.post(
        gateway.base_url + "/chat/completions",
        headers={"Authorization": f"Bearer {gateway.api_key}", "Content-Type": "application/json"},
        content=body,
    )
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"]
    if param is not None:
        assert err["param"] == param


def test_malformed_json_via_sdk_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="test-model", messages=[{"role": "user"}], temperature="x"
        )  # type: ignore[arg-type]
    assert e.value.status_code == 400


def test_huge_body_is_413(gateway: Gateway) -> None:
    limit = gateway.settings.max_body_bytes
    big = b'{"model":"test-model","messages":[{"role":"user","content":"' + b"a" * limit + b'"}]}'
    r = httpx.post(
        gateway.base_url + "/chat/completions",
        headers={"Authorization": f"Bearer {gateway.api_key}"},
        content=big,
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="nobody-serves-this", messages=MSG)
    assert e.value.body["code"] == "model_not_found"


def test_unknown_path_and_method_are_openai_shaped(gateway: Gateway) -> None:
    r = httpx.get(gateway.base_url + "/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = httpx.get(gateway.base_url + "/chat/completions")
    assert r.status_code == 405 and "error" in r.json()


@pytest.mark.parametrize(
    ("upstream_status", "sdk_error", "status"),
    [
        (400, openai.BadRequestError, 400),
        (401, openai.APIStatusError, 502),
        (404, openai.NotFoundError, 404),
        (429, openai.RateLimitError, 429),
        (500, openai.APIStatusError, 502),
        (503, openai.InternalServerError, 503),
    ],
)
def test_upstream_error_status_is_mapped(
    client: openai.OpenAI, gateway: Gateway, upstream_status: int, sdk_error: type, status: int
) -> None:
    gateway.upstream.fault(Fault(status=upstream_status, retry_after="7"))
    with pytest.raises(sdk_error) as e:
        client.chat.completions.create(model="test-model", messages=MSG)
    assert e.value.status_code == status
    assert "error" in e.value.response.json()
    if status == 429:
        assert e.value.response.headers["retry-after"] == "7"


def test_upstream_error_while_streaming_before_first_byte(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    gateway.upstream.fault(Fault(status=503))
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="test-model", messages=MSG, stream=True)
    assert e.value.status_code == 503


def test_upstream_drop_mid_stream_ends_with_error_event(gateway: Gateway) -> None:
    gateway.upstream.fault(Fault(drop_after_chunks=3))
    events = _raw_stream(gateway, {"model": "test-model", "messages": MSG, "stream": True})
    assert events[-1] != "data: [DONE]\n\n"
    last = json.loads(events[-1][6:])
    assert last["error"]["code"] == "upstream_unavailable"


def test_upstream_timeout_is_504(gateway: Gateway, client: openai.OpenAI) -> None:
    pool = gateway.services.registry.get("vllm").adapter.pool
    old, pool.read_timeout = pool.read_timeout, 0.2
    try:
        gateway.upstream.fault(Fault(delay_s=1.0))
        with pytest.raises(openai.APIStatusError) as e:
            client.chat.completions.create(model="test-model", messages=MSG)
        assert e.value.status_code == 504
    finally:
        pool.read_timeout = old


def test_malformed_upstream_body_is_502(gateway: Gateway, client: openai.OpenAI) -> None:
    gateway.upstream.fault(Fault(malformed=True))
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="test-model", messages=MSG)
    assert e.value.status_code == 502


# ---------------------------------------------------------------- helpers
def _raw_stream(gateway: Gateway, body: dict) -> list[str]:
    """The SSE events exactly as sent on the wire."""
    with httpx.stream(
        "POST",
        gateway.base_url + "/chat/completions",
        headers={"Authorization": f"Bearer {gateway.api_key}"},
        json=body,
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    return [part + "\n\n" for part in raw.split("\n\n") if part]
