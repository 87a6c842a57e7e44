"""OpenAI custom tools and the legacy function form in the family's codec (answers in, the
dialect's answers out) and through the response cache."""

from __future__ import annotations

import orjson

from gatewayz.cache.response_codec import StreamRecorder, decode, encode, replay
from gatewayz.canonical.types import ChatResponse, Choice, Message, ToolCall
from gatewayz.providers.openai import chat


def test_a_custom_tool_call_is_parsed_and_rendered_back() -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "custom",
                            "custom": {"name": "run", "input": "1+1"},
                        }
                    ],
                },
            }
        ]
    }
    resp = chat.parse_response(orjson.dumps(body), "p")
    (call,) = resp.choices[0].message.tool_calls or []
    assert (call.kind, call.name, call.arguments) == ("custom", "run", "1+1")
    out = orjson.loads(chat.render_response(resp, "id", 1, "m"))
    assert out["choices"][0]["message"]["tool_calls"] == body["choices"][0]["message"]["tool_calls"]


def test_custom_tool_call_deltas_stream_in_and_out() -> None:
    first = {"index": 0, "id": "call_1", "type": "custom", "custom": {"name": "run", "input": ""}}
    piece = {"index": 0, "type": "custom", "custom": {"input": "1+1"}}
    chunks = [
        chat.parse_chunk({"choices": [{"index": 0, "delta": {"tool_calls": [d]}}]})
        for d in (first, piece)
    ]
    assert [c.choices[0].tool_calls[0].kind for c in chunks] == ["custom", "custom"]  # type: ignore[index]
    out = orjson.loads(chat.render_chunk(chunks[1], "id", 1, "m", False)[6:])
    assert out["choices"][0]["delta"]["tool_calls"] == [{"index": 0, "custom": {"input": "1+1"}}]
    recorder = StreamRecorder()
    for c in chunks:
        recorder.add(c)
    (call,) = recorder.response(None).choices[0].message.tool_calls or []
    assert (call.kind, call.arguments) == ("custom", "1+1")


def test_the_response_cache_keeps_a_calls_kind() -> None:
    call = ToolCall("c", "run", "print(1)", kind="custom")
    resp = ChatResponse([Choice(0, Message("assistant", None, tool_calls=[call]), "tool_calls")])
    back = decode(encode(resp, "p", "m")).response
    assert back.choices[0].message.tool_calls == [call]
    replayed = [d for ch in replay(resp) for d in ch.choices if d.tool_calls]
    assert replayed[0].tool_calls[0].kind == "custom"  # type: ignore[index]


def test_legacy_requests_are_answered_with_function_call() -> None:
    calls = [ToolCall("a", "f", '{"x":1}'), ToolCall("b", "g", "{}")]
    resp = ChatResponse([Choice(0, Message("assistant", None, tool_calls=calls), "tool_calls")])
    msg = orjson.loads(chat.render_response(resp, "id", 1, "m", legacy=True))["choices"][0]
    assert msg["finish_reason"] == "function_call"
    assert msg["message"]["function_call"] == {"name": "f", "arguments": '{"x":1}'}
    assert "tool_calls" not in msg["message"]
