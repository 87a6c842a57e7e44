"""The OpenAI chat wire codec (both directions) and the incremental SSE decoder."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gatewayz.canonical.types import (
    ChatResponse,
    Choice,
    ChoiceDelta,
    ImagePart,
    Message,
    StreamChunk,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gatewayz.errors import InvalidRequest, UpstreamUnavailable
from gatewayz.providers.openai import chat as oc
from gatewayz.providers.openai import request as oreq
from gatewayz.providers.sse import SSEDecoder

MSG = [{"role": "user", "content": "hi"}]


def _req(**kw: Any) -> bytes:
    return orjson.dumps({"model": "openai/gpt-4o", "messages": MSG, **kw})


# ================================================================ SSE decoder
SSE_STREAM = (
    b": keep-alive comment\r\n"
    b"\r\n"
    b'data: {"a":1}\r\n'
    b"\r\n"
    b"event: message\r\n"
    b"id: 7\r\n"
    b"data: line one\r\n"
    b"data:line two\r\n"
    b": a comment inside an event\r\n"
    b"\r\n"
    b"data: [DONE]\r\n"
    b"\r\n"
)
SSE_EVENTS = [(None, b'{"a":1}'), (b"message", b"line one\nline two"), (None, b"[DONE]")]


def _feed_all(parts: list[bytes]) -> list[tuple[bytes | None, bytes]]:
    d = SSEDecoder()
    out = []
    for p in parts:
        out += d.feed(p)
    return out


def test_sse_whole_stream() -> None:
    d = SSEDecoder()
    assert d.feed(SSE_STREAM) == SSE_EVENTS
    assert d.pending == b""


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_sse_split_at_every_byte_boundary(eol: bytes) -> None:
    stream = SSE_STREAM.replace(b"\r\n", eol)
    for i in range(len(stream) + 1):
        assert _feed_all([stream[:i], stream[i:]]) == SSE_EVENTS, (eol, i, stream[:i])


def test_sse_one_byte_at_a_time() -> None:
    parts = [SSE_STREAM[i : i + 1] for i in range(len(SSE_STREAM))]
    assert _feed_all(parts) == SSE_EVENTS


def test_sse_crlf_split_across_feeds_with_empty_feeds_between() -> None:
    parts = [b"event: e\r", b"", b"\ndata: a\r", b"", b"\ndata: b\r\n\r", b"", b"\n"]
    assert _feed_all(parts) == [(b"e", b"a\nb")]
    # lone CRs are line endings too, and a later LF after a blank line is its own line ending
    assert _feed_all([b"data: x\r\r", b"\ndata: y\n\n"]) == [(None, b"x"), (None, b"y")]


def test_sse_events_only_when_complete() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: par") == []
    assert d.feed(b"tial\n") == []
    assert d.pending == b"data: partial\n"
    assert d.feed(b"\ndata: next") == [(None, b"partial")]
    assert d.pending == b"data: next"


def test_sse_comment_only_and_empty_blocks_skipped() -> None:
    d = SSEDecoder()
    assert d.feed(b": ping\n\n\n\n: pong\n\nevent: x\n\n") == []
    assert d.feed(b"data:\n\n") == [(None, b"")]


def test_sse_data_prefix_space_handling() -> None:
    d = SSEDecoder()
    assert d.feed(b"data:  two spaces\n\ndata:none\n\n") == [
        (None, b" two spaces"),
        (None, b"none"),
    ]


# ================================================================ parse_request
def test_parse_minimal_request() -> None:
    req = oreq.parse_request(_req())
    assert req.model == "openai/gpt-4o"
    assert req.messages == [Message(role="user", content="hi")]
    assert (req.stream, req.include_usage, req.n, req.max_tokens) == (False, False, 1, None)
    assert req.tools is None and req.tool_choice is None and req.stop is None
    assert req.extra == {}


def test_parse_tools_and_named_tool_choice() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "noop"}},
    ]
    req = oreq.parse_request(
        _req(
            tools=tools,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            parallel_tool_calls=False,
        )
    )
    assert req.tools == [
        Tool(
            "get_weather",
            "Weather for a city",
            {"type": "object", "properties": {"city": {"type": "string"}}},
            True,
        ),
        Tool("noop"),
    ]
    assert req.tool_choice == {"name": "get_weather"}
    assert req.parallel_tool_calls is False
    assert oreq.parse_request(_req(tools=tools, tool_choice="required")).tool_choice == "required"
    assert oreq.parse_request(_req(tool_choice="none")).tool_choice == "none"
    assert oreq.parse_request(_req(tool_choice="auto")).tool_choice == "auto"


def test_tool_choice_requires_tools() -> None:
    with pytest.raises(InvalidRequest) as e:
        oreq.parse_request(_req(tool_choice="required"))
    assert e.value.param == "tool_choice"
    with pytest.raises(InvalidRequest):
        oreq.parse_request(_req(tool_choice={"type": "function", "function": {"name": "f"}}))


def test_parse_response_format_json_schema_keeps_schema_key() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    rf = {"type": "json_schema", "json_schema": {"name": "thing", "schema": schema, "strict": True}}
    req = oreq.parse_request(_req(response_format=rf))
    assert req.response_format == rf
    assert oreq.parse_request(_req(response_format={"type": "json_object"})).response_format == {
        "type": "json_object"
    }
    with pytest.raises(InvalidRequest) as e:
        oreq.parse_request(_req(response_format={"type": "json_schema"}))
    assert e.value.param == "response_format.json_schema"


def test_parse_stop_and_token_limits() -> None:
    assert oreq.parse_request(_req(stop="END")).stop == ["END"]
    assert oreq.parse_request(_req(stop=["a", "b"])).stop == ["a", "b"]
    assert oreq.parse_request(_req(stop=[])).stop is None
    assert oreq.parse_request(_req(max_tokens=10)).max_tokens == 10
    assert oreq.parse_request(_req(max_completion_tokens=50)).max_tokens == 50
    both = oreq.parse_request(_req(max_tokens=10, max_completion_tokens=50))
    assert both.max_tokens == 50


def test_parse_keeps_unknown_params_in_extra() -> None:
    req = oreq.parse_request(
        _req(
            stream=True,
            stream_options={"include_usage": True},
            prediction={"type": "content", "content": "x"},
            top_k=40,
            provider={"order": ["groq"]},
        )
    )
    assert req.extra == {
        "prediction": {"type": "content", "content": "x"},
        "top_k": 40,
        "provider": {"order": ["groq"]},
    }
    assert req.stream and req.include_usage


def test_parse_image_and_text_parts() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://x.test/cat.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    req = oreq.parse_request(_req(messages=[{"role": "user", "content": content}]))
    assert req.messages[0].content == [
        TextPart("What is this?"),
        ImagePart("https://x.test/cat.png", "low"),
        ImagePart("data:image/png;base64,AAAA", None),
    ]


def test_parse_tool_role_requires_tool_call_id() -> None:
    with pytest.raises(InvalidRequest) as e:
        oreq.parse_request(_req(messages=[{"role": "tool", "content": "42"}]))
    assert "tool_call_id" in e.value.message
    req = oreq.parse_request(
        _req(
            messages=[
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "content": "42", "tool_call_id": "c1"},
            ]
        )
    )
    assert req.messages[0].tool_calls == [ToolCall("c1", "f", "{}")]
    assert req.messages[1].tool_call_id == "c1"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (orjson.dumps({"messages": MSG}), "model"),
        (orjson.dumps({"model": "m", "messages": []}), "messages"),
        (_req(temperature="0.5"), "temperature"),
        (_req(temperature=3), "temperature"),
        (_req(n=0), "n"),
        (_req(top_logprobs=2), "top_logprobs"),
        (_req(messages=[{"role": "robot", "content": "x"}]), "messages[0].role"),
    ],
)
def test_parse_rejects_invalid_requests(body: bytes, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as e:
        oreq.parse_request(body)
    assert e.value.status == 400
    assert e.value.param == param


# ================================================================ render_request
FULL_REQUEST: dict[str, Any] = {
    "model": "openai/gpt-4o",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "name": "alice",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x.test/cat.png", "detail": "high"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
    ],
    "max_tokens": 100,
    "temperature": 0.2,
    "top_p": 0.9,
    "n": 2,
    "stop": ["END"],
    "seed": 7,
    "presence_penalty": 0.1,
    "frequency_penalty": 0.2,
    "logit_bias": {"50256": -100.0},
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": True,
            },
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
    },
    "logprobs": True,
    "top_logprobs": 3,
    "user": "u-1",
    "metadata": {"k": "v"},
    "reasoning_effort": "low",
    "custom_param": {"a": [1, 2]},
}


def test_render_request_round_trip_is_what_openai_expects() -> None:
    req = oreq.parse_request(orjson.dumps(FULL_REQUEST))
    upstream = orjson.loads(oreq.render_request(req, "gpt-4o"))
    expected = copy.deepcopy(FULL_REQUEST)
    expected["model"] = "gpt-4o"
    assert upstream == expected


def test_render_request_minimal_omits_defaults() -> None:
    req = oreq.parse_request(_req(stream=False, n=1, logprobs=False))
    assert orjson.loads(oreq.render_request(req, "gpt-4o")) == {"model": "gpt-4o", "messages": MSG}


def test_render_request_max_tokens_param_per_provider() -> None:
    req = oreq.parse_request(_req(max_completion_tokens=64, max_tokens=8))
    assert orjson.loads(oreq.render_request(req, "m"))["max_tokens"] == 64
    openai_style = orjson.loads(
        oreq.render_request(req, "m", max_tokens_param="max_completion_tokens")
    )
    assert openai_style["max_completion_tokens"] == 64 and "max_tokens" not in openai_style


def test_render_stream_request_asks_for_usage() -> None:
    req = oreq.parse_request(_req(stream=True))
    body = orjson.loads(oreq.render_request(req, "gpt-4o"))
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    # the client's own choice does not change what we ask upstream
    req = oreq.parse_request(_req(stream=True, stream_options={"include_usage": False}))
    assert orjson.loads(oreq.render_request(req, "m"))["stream_options"] == {"include_usage": True}
    assert req.include_usage is False
    # providers that do not accept stream_options
    body = orjson.loads(oreq.render_request(req, "m", stream_usage=False))
    assert body["stream"] is True and "stream_options" not in body
    # non-streams never carry stream_options
    plain = orjson.loads(oreq.render_request(oreq.parse_request(_req()), "m"))
    assert "stream" not in plain and "stream_options" not in plain


def test_render_request_known_fields_win_over_extra() -> None:
    req = oreq.parse_request(_req(temperature=0.5))
    req.extra["temperature"] = 1.9  # an `extra` entry never overrides a canonical field
    req.extra["top_k"] = 5
    body = orjson.loads(oreq.render_request(req, "m"))
    assert body["temperature"] == 0.5 and body["top_k"] == 5


# ================================================================ parse_response / parse_chunk
def test_parse_response_full() -> None:
    body = orjson.dumps(
        {
            "id": "chatcmpl-up",
            "object": "chat.completion",
            "model": "deepseek-reasoner",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "reasoning_content": "thinking...",
                        "tool_calls": [
                            {
                                "id": "call_9",
                                "type": "function",
                                "function": {"name": "lookup", "arguments": '{"q":"x"}'},
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": 30,
                "total_tokens": 42,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 20},
            },
        }
    )
    resp = oc.parse_response(body, "deepseek")
    assert resp.upstream_id == "chatcmpl-up" and resp.upstream_model == "deepseek-reasoner"
    assert resp.choices == [
        Choice(
            index=0,
            message=Message(
                role="assistant",
                content=None,
                tool_calls=[ToolCall("call_9", "lookup", '{"q":"x"}')],
                reasoning="thinking...",
            ),
            finish_reason="tool_calls",
        )
    ]
    assert resp.usage == Usage(12, 30, cached_tokens=4, reasoning_tokens=20)


def test_parse_response_missing_usage_and_reasoning_alias() -> None:
    body = orjson.dumps(
        {
            "choices": [
                {"message": {"content": "hi", "reasoning": "r"}, "finish_reason": "stop"},
                {"message": {"content": "yo"}, "finish_reason": "length"},
            ]
        }
    )
    resp = oc.parse_response(body, "p")
    assert resp.usage is None
    assert [c.index for c in resp.choices] == [0, 1]
    assert resp.choices[0].message.reasoning == "r"
    assert resp.choices[1].message.content == "yo"
    assert oc.parse_response(orjson.dumps({"choices": [], "usage": None}), "p").usage is None


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"choices": 3}', b"[]"])
def test_parse_response_malformed(body: bytes) -> None:
    with pytest.raises(UpstreamUnavailable) as e:
        oc.parse_response(body, "groq")
    assert e.value.provider == "groq" and e.value.failover


def test_parse_chunk_content_reasoning_tool_calls() -> None:
    chunk = oc.parse_chunk(
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "role": "assistant",
                        "content": "He",
                        "reasoning_content": "hmm",
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "f", "arguments": ""},
                            },
                            {"index": 1, "function": {"arguments": '{"a"'}},
                        ],
                    },
                    "finish_reason": None,
                }
            ]
        }
    )
    assert chunk.usage is None
    assert chunk.choices == [
        ChoiceDelta(
            index=0,
            role="assistant",
            content="He",
            reasoning="hmm",
            tool_calls=[
                ToolCallDelta(0, "call_1", "f", ""),
                ToolCallDelta(1, None, None, '{"a"'),
            ],
        )
    ]


def test_parse_chunk_usage_only_and_null_usage() -> None:
    final = oc.parse_chunk(
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}
    )
    assert final.choices == [] and final.usage == Usage(5, 7)
    mid = oc.parse_chunk({"choices": [{"delta": {"content": "x"}}], "usage": None})
    assert mid.usage is None and mid.choices[0].content == "x"
    finish = oc.parse_chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    assert finish.choices == [ChoiceDelta(index=0, finish_reason="stop")]


# ================================================================ render_chunk / render_response
def _event(raw: bytes) -> dict[str, Any]:
    assert raw.startswith(b"data: ") and raw.endswith(b"\n\n")
    return orjson.loads(raw[6:-2])


def test_render_chunk_usage_key_only_when_include_usage() -> None:
    chunk = StreamChunk([ChoiceDelta(index=0, content="Hi")])
    with_usage = _event(oc.render_chunk(chunk, "chatcmpl-1", 1700000000, "openai/gpt-4o", True))
    assert "usage" in with_usage and with_usage["usage"] is None
    assert with_usage["choices"] == [
        {"index": 0, "delta": {"content": "Hi"}, "logprobs": None, "finish_reason": None}
    ]
    assert with_usage["object"] == "chat.completion.chunk"
    assert (with_usage["id"], with_usage["created"], with_usage["model"]) == (
        "chatcmpl-1",
        1700000000,
        "openai/gpt-4o",
    )
    without = _event(oc.render_chunk(chunk, "chatcmpl-1", 1, "m", False))
    assert "usage" not in without

    final = StreamChunk([], Usage(3, 4, cached_tokens=1))
    assert _event(oc.render_chunk(final, "c", 1, "m", True))["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 1},
        "completion_tokens_details": {"reasoning_tokens": 0},  # always present, as OpenAI's
    }


def test_render_chunk_tool_call_deltas() -> None:
    chunk = StreamChunk(
        [
            ChoiceDelta(
                index=0,
                role="assistant",
                reasoning="r",
                tool_calls=[
                    ToolCallDelta(0, "call_1", "f", ""),
                    ToolCallDelta(0, None, None, "{}"),
                ],
            )
        ]
    )
    delta = _event(oc.render_chunk(chunk, "c", 1, "m", False))["choices"][0]["delta"]
    assert delta == {
        "role": "assistant",
        "reasoning_content": "r",
        "tool_calls": [
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "f", "arguments": ""},
            },
            {"index": 0, "function": {"arguments": "{}"}},
        ],
    }


def test_render_response_shape() -> None:
    resp = ChatResponse(
        choices=[
            Choice(0, Message("assistant", "Hello", reasoning="because"), "stop"),
            Choice(
                1,
                Message("assistant", None, tool_calls=[ToolCall("call_1", "f", '{"a":1}')]),
                "tool_calls",
            ),
        ],
        usage=Usage(10, 5, reasoning_tokens=2, estimated=True),
    )
    out = orjson.loads(oc.render_response(resp, "chatcmpl-x", 1700000000, "openai/gpt-4o"))
    assert out == {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "openai/gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello",
                    "refusal": None,
                    "reasoning_content": "because",
                },
                "logprobs": None,
                "finish_reason": "stop",
            },
            {
                "index": 1,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a":1}'},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            },
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 2},
            "estimated": True,
        },
    }
    no_usage = orjson.loads(oc.render_response(ChatResponse([]), "c", 1, "m"))
    assert "usage" not in no_usage


LEAKY_RESPONSE = {
    "id": "chatcmpl-upstream-123",
    "object": "chat.completion",
    "created": 1,
    "model": "llama-3.3-70b-versatile",
    "system_fingerprint": "fp_abc123",
    "service_tier": "on_demand",
    "x_groq": {"id": "req_01abc"},
    "provider": "Groq",
    "prompt_logprobs": None,
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello!",
                "annotations": [],
                "audio": None,
                "function_call": None,
                "executed_tools": [],
            },
            "finish_reason": "stop",
            "stop_reason": None,
            "logprobs": None,
            "native_finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 9,
        "completion_tokens": 3,
        "total_tokens": 12,
        "queue_time": 0.01,
        "prompt_time": 0.002,
        "prompt_cache_hit_tokens": 0,
        "cost": 0.0001,
    },
}
LEAKED = (
    b"system_fingerprint",
    b"service_tier",
    b"x_groq",
    b"fp_abc123",
    b"on_demand",
    b"req_01abc",
    b"Groq",
    b"annotations",
    b"native_finish_reason",
    b"stop_reason",
    b"queue_time",
    b"prompt_cache_hit_tokens",
    b"cost",
    b"chatcmpl-upstream-123",
    b"llama-3.3-70b-versatile",
)


def test_cm_10_3_2_provider_specific_fields_stripped() -> None:
    resp = oc.parse_response(orjson.dumps(LEAKY_RESPONSE), "groq")
    raw = oc.render_response(resp, "chatcmpl-ours", 1700000000, "groq/llama-3.3-70b-versatile")
    for field in LEAKED:
        if field == b"llama-3.3-70b-versatile":
            continue  # part of the client's own model id here
        assert field not in raw, field
    out = orjson.loads(raw)
    assert set(out) == {"id", "object", "created", "model", "choices", "usage"}
    assert out["id"] == "chatcmpl-ours" and out["model"] == "groq/llama-3.3-70b-versatile"
    assert set(out["choices"][0]) == {"index", "message", "logprobs", "finish_reason"}
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hello!",
        "refusal": None,
    }
    assert out["usage"] == {
        "prompt_tokens": 9,
        "completion_tokens": 3,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }

    # the same for stream chunks
    upstream_chunk = {
        "id": "chatcmpl-upstream-123",
        "object": "chat.completion.chunk",
        "model": "llama-3.3-70b-versatile",
        "system_fingerprint": "fp_abc123",
        "service_tier": "on_demand",
        "x_groq": {"id": "req_01abc", "usage": {"queue_time": 0.01}},
        "choices": [
            {
                "index": 0,
                "delta": {"content": "Hi", "annotations": []},
                "finish_reason": None,
                "native_finish_reason": None,
            }
        ],
    }
    event = oc.render_chunk(
        oc.parse_chunk(upstream_chunk), "chatcmpl-ours", 1, "openai/gpt-4o", True
    )
    for field in LEAKED:
        assert field not in event, field
    parsed = _event(event)
    assert set(parsed) == {"id", "object", "created", "model", "choices", "usage"}
    assert parsed["choices"][0]["delta"] == {"content": "Hi"}


def test_upstream_error_message_shapes() -> None:
    assert oc.upstream_error_message(b'{"error": {"message": "bad key"}}') == "bad key"
    assert oc.upstream_error_message(b'{"detail": "nope"}') == "nope"
    assert oc.upstream_error_message(b'{"error": "plain"}') == "plain"
    assert oc.upstream_error_message(b"<html>502</html>") == "<html>502</html>"
    assert oc.upstream_error_message(b"") == "no details"


def test_other_dialects_extras_never_reach_openai_compatible_providers() -> None:
    req = oreq.parse_request(_req())
    req.extra = {"server_tools": [{"type": "web_search"}], "output_config": {"x": 1}}
    req.extra_dialect = "anthropic"
    body = orjson.loads(oreq.render_request(req, "m"))
    assert "server_tools" not in body and "output_config" not in body
    req.extra_dialect = "openai"
    assert orjson.loads(oreq.render_request(req, "m"))["output_config"] == {"x": 1}
