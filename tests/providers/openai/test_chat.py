"""The OpenAI chat response codec, both directions: a provider's response and stream chunks
parsed into canonical ones, canonical ones rendered for our callers, and error bodies."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gatewayz.canonical.types import (
    ChatResponse,
    Choice,
    ChoiceDelta,
    Message,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gatewayz.errors import UpstreamUnavailable
from gatewayz.providers.openai import chat as oc


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
