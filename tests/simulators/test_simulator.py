"""The simulator, driven by the official OpenAI SDK: response shapes, streaming, tools,
structured output, logprobs, sampling limits."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest

HI = [{"role": "user", "content": "hi there"}]
ECHO = "Hello from the Gatewayz simulator. You said: hi there"
ECHO_PIECES = [
    "Hello ",
    "from ",
    "the ",
    "Gatewayz ",
    "simulator. ",
    "You ",
    "said: ",
    "hi ",
    "there",
]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 3, "maximum": 7},
            },
            "required": ["city", "unit"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}


async def test_plain_response_shape(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="simulated/echo", messages=HI
    )
    assert raw.headers["content-type"] == "application/json"
    body = json.loads(raw.text)
    assert body["id"].startswith("chatcmpl-") and len(body["id"]) > 12
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "simulated/echo"
    assert body["system_fingerprint"] == "fp_sim"
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"] is None
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == ECHO
    assert choice["message"]["refusal"] is None
    assert "tool_calls" not in choice["message"]
    assert body["usage"] == {
        "prompt_tokens": 2,  # ceil(len("hi there") / 4)
        "completion_tokens": len(ECHO_PIECES),
        "total_tokens": 2 + len(ECHO_PIECES),
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    parsed = raw.parse()
    assert parsed.choices[0].message.content == ECHO
    assert abs(body["created"] - time.time()) < 60


async def test_repeated_request_gets_fresh_id(client: openai.AsyncOpenAI) -> None:
    ids = set()
    for _ in range(3):
        resp = await client.chat.completions.create(model="simulated/echo", messages=HI)
        assert resp.choices[0].message.content == ECHO
        assert resp.id.startswith("chatcmpl-") and "SSSS" not in resp.id
        ids.add(resp.id)
    assert len(ids) == 3
    for _ in range(2):
        stream = await client.chat.completions.create(
            model="simulated/echo", messages=HI, stream=True
        )
        chunks = [c async for c in stream]
        assert len({c.id for c in chunks}) == 1 and chunks[0].id not in ids
        assert all(abs(c.created - time.time()) < 60 for c in chunks)
        ids.add(chunks[0].id)
    assert len(ids) == 5


async def test_deterministic_and_text_parts(client: openai.AsyncOpenAI) -> None:
    parts = [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]
    a = await client.chat.completions.create(
        model="acme/unknown", messages=[{"role": "user", "content": parts}]
    )
    b = await client.chat.completions.create(model="simulated/echo", messages=HI, seed=7)
    assert a.choices[0].message.content == b.choices[0].message.content == ECHO
    assert a.id != b.id
    long = await client.chat.completions.create(
        model="simulated/echo", messages=[{"role": "user", "content": "x" * 500}]
    )
    assert long.choices[0].message.content == ECHO[: -len("hi there")] + "x" * 200
    assert long.usage is not None and long.usage.prompt_tokens == 125


async def test_lorem_is_fixed_paragraph(client: openai.AsyncOpenAI) -> None:
    a = await client.chat.completions.create(model="simulated/lorem", messages=HI)
    b = await client.chat.completions.create(
        model="simulated/lorem", messages=[{"role": "user", "content": "other"}]
    )
    text = a.choices[0].message.content
    assert text is not None and text.startswith("Lorem ipsum dolor sit amet")
    assert text == b.choices[0].message.content
    assert 50 <= len(text.split()) <= 80
    assert a.usage is not None and a.usage.completion_tokens == len(text.split())


async def test_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="simulated/echo", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    assert raw.headers["content-type"] == "text/event-stream"
    assert raw.headers["transfer-encoding"] == "chunked"
    chunks = [c async for c in raw.parse()]
    assert len({c.id for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    pieces = [c.choices[0].delta.content for c in chunks[1:-2]]
    assert pieces == ECHO_PIECES
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (2, len(ECHO_PIECES))
    assert last.usage.total_tokens == 2 + len(ECHO_PIECES)


async def test_stream_without_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="simulated/echo", messages=HI, stream=True)
    chunks = [c async for c in stream]
    assert all(c.usage is None and len(c.choices) == 1 for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ECHO
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_tools_parallel_calls(client: openai.AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(
        model="simulated/tools", messages=HI, tools=[WEATHER, TIME]
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert all(c.id.startswith("call_") and c.type == "function" for c in calls)
    assert len({c.id for c in calls}) == 2
    args = json.loads(calls[0].function.arguments)
    assert args["unit"] == "celsius"
    assert isinstance(args["city"], str)
    assert 3 <= args["days"] <= 7 and isinstance(args["days"], int)
    assert json.loads(calls[1].function.arguments) == {"tz": "example tz"}
    again = await client.chat.completions.create(
        model="simulated/tools", messages=HI, tools=[WEATHER, TIME]
    )
    assert again.choices[0].message.tool_calls == calls  # ids and arguments are deterministic


@pytest.mark.parametrize(
    ("model", "extra", "expected"),
    [
        ("simulated/tools", {"parallel_tool_calls": False}, ["get_weather"]),
        ("simulated/tools", {"tools": [TIME]}, ["get_time"]),
        (
            "simulated/echo",
            {"tool_choice": {"type": "function", "function": {"name": "get_time"}}},
            ["get_time"],
        ),
        ("simulated/echo", {"tool_choice": "required"}, ["get_weather", "get_time"]),
        ("simulated/echo", {}, None),
        ("simulated/tools", {"tool_choice": "none"}, None),
    ],
)
async def test_tool_choice_rules(
    client: openai.AsyncOpenAI, model: str, extra: dict[str, Any], expected: list[str] | None
) -> None:
    kwargs: dict[str, Any] = {"tools": [WEATHER, TIME], **extra}
    resp = await client.chat.completions.create(model=model, messages=HI, **kwargs)
    calls = resp.choices[0].message.tool_calls
    if expected is None:
        assert calls is None
        assert resp.choices[0].message.content == ECHO
    else:
        assert calls is not None and [c.function.name for c in calls] == expected


async def test_tools_streamed_reassemble(client: openai.AsyncOpenAI) -> None:
    plain = await client.chat.completions.create(
        model="simulated/tools", messages=HI, tools=[WEATHER, TIME]
    )
    stream = await client.chat.completions.create(
        model="simulated/tools", messages=HI, tools=[WEATHER, TIME], stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    arg_deltas = 0
    finish = None
    async for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for tc in choice.delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            if tc.id:
                slot["id"] = tc.id
            if tc.function and tc.function.name:
                slot["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                slot["arguments"] += tc.function.arguments
                arg_deltas += 1
                assert len(tc.function.arguments) <= 8
    assert finish == "tool_calls"
    expected = plain.choices[0].message.tool_calls
    assert expected is not None and len(calls) == 2
    for i, call in enumerate(expected):
        assert calls[i]["id"] == call.id
        assert calls[i]["name"] == call.function.name
        assert json.loads(calls[i]["arguments"]) == json.loads(call.function.arguments)
    assert arg_deltas > 2


async def test_tool_round_trip_answers_with_text(client: openai.AsyncOpenAI) -> None:
    first = await client.chat.completions.create(
        model="simulated/tools", messages=HI, tools=[WEATHER], parallel_tool_calls=False
    )
    call = first.choices[0].message.tool_calls
    assert call is not None
    messages: list[Any] = [
        *HI,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call[0].id, "content": "sunny, 21C " + "z" * 200},
    ]
    second = await client.chat.completions.create(
        model="simulated/tools", messages=messages, tools=[WEATHER]
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Tool result received: sunny, 21C " + "z" * 89


async def test_json_object(client: openai.AsyncOpenAI) -> None:
    for model, fmt in (("simulated/echo", {"type": "json_object"}), ("simulated/json", None)):
        kwargs: dict[str, Any] = {"response_format": fmt} if fmt else {}
        resp = await client.chat.completions.create(model=model, messages=HI, **kwargs)
        content = resp.choices[0].message.content
        assert content is not None
        data = json.loads(content)
        assert data["model"] == model
        assert data["message"] == ECHO


async def test_json_schema(client: openai.AsyncOpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "minimum": 18},
            "score": {"type": "number"},
            "active": {"type": "boolean"},
            "role": {"type": "string", "enum": ["admin", "user"]},
            "nickname": {"type": ["string", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "address": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                "required": ["city", "zip"],
                "additionalProperties": False,
            },
            "nothing": {"type": "null"},
        },
        "required": ["name", "age", "score", "active", "role", "tags", "address", "nothing"],
        "additionalProperties": False,
    }
    resp = await client.chat.completions.create(
        model="simulated/echo",
        messages=HI,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema, "strict": True},
        },
    )
    content = resp.choices[0].message.content
    assert content is not None and ": " not in content  # compact JSON
    data = json.loads(content)
    assert set(schema["required"]) <= set(data)
    assert isinstance(data["name"], str)
    assert isinstance(data["age"], int) and data["age"] >= 18
    assert isinstance(data["score"], float)
    assert data["active"] is True
    assert data["role"] == "admin"
    assert isinstance(data["nickname"], str)
    assert len(data["tags"]) == 2 and all(isinstance(t, str) for t in data["tags"])
    assert set(data["address"]) == {"city", "zip"}
    assert data["nothing"] is None


async def test_logprobs(client: openai.AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(
        model="simulated/echo", messages=HI, logprobs=True, top_logprobs=3
    )
    lp = resp.choices[0].logprobs
    assert lp is not None and lp.content is not None and lp.refusal is None
    assert [t.token for t in lp.content] == ECHO_PIECES
    for i, entry in enumerate(lp.content):
        assert entry.logprob == pytest.approx(-0.01 * (i + 1))
        assert entry.bytes == list(entry.token.encode())
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].token == entry.token
        assert entry.top_logprobs[1].logprob < entry.top_logprobs[0].logprob
    stream = await client.chat.completions.create(
        model="simulated/echo", messages=HI, logprobs=True, stream=True
    )
    streamed = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            assert chunk.choices[0].logprobs is not None
            assert chunk.choices[0].logprobs.content is not None
            streamed.extend(chunk.choices[0].logprobs.content)
    assert [t.token for t in streamed] == ECHO_PIECES
    assert streamed[-1].logprob == pytest.approx(-0.01 * len(ECHO_PIECES))
    assert streamed[0].top_logprobs == []


async def test_n_choices(client: openai.AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(model="simulated/echo", messages=HI, n=2)
    assert [c.index for c in resp.choices] == [0, 1]
    assert [c.message.content for c in resp.choices] == [ECHO, ECHO]
    assert resp.usage is not None and resp.usage.completion_tokens == 2 * len(ECHO_PIECES)
    stream = await client.chat.completions.create(
        model="simulated/echo", messages=HI, n=2, stream=True
    )
    texts = ["", ""]
    async for chunk in stream:
        for c in chunk.choices:
            texts[c.index] += c.delta.content or ""
    assert texts == [ECHO, ECHO]


async def test_max_tokens_and_stop(client: openai.AsyncOpenAI) -> None:
    short = await client.chat.completions.create(model="simulated/echo", messages=HI, max_tokens=3)
    assert short.choices[0].finish_reason == "length"
    assert short.choices[0].message.content == "Hello from the "
    assert short.usage is not None and short.usage.completion_tokens == 3
    newer = await client.chat.completions.create(
        model="simulated/echo", messages=HI, max_completion_tokens=2, stream=True
    )
    chunks = [c async for c in newer]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from "
    assert chunks[-1].choices[0].finish_reason == "length"
    stopped = await client.chat.completions.create(
        model="simulated/echo", messages=HI, stop=["said", "simulator"]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == "Hello from the Gatewayz "
    roomy = await client.chat.completions.create(
        model="simulated/echo", messages=HI, max_tokens=len(ECHO_PIECES), stop="zzz"
    )
    assert roomy.choices[0].finish_reason == "stop"
    assert roomy.choices[0].message.content == ECHO


async def test_validation_errors(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as missing:
        await client.chat.completions.create(model="simulated/echo", messages=[])
    assert missing.value.status_code == 400
    err = missing.value.body
    assert isinstance(err, dict)
    assert err["type"] == "invalid_request_error" and err["param"] == "messages"
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="simulated/echo", messages=HI, n=9)
