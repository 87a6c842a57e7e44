"""The Cohere v2 codec: canonical request → body, body/stream → canonical, errors, models."""

from __future__ import annotations

import orjson
import pytest

from gatewayz.canonical.types import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolCall,
)
from gatewayz.errors import InvalidRequest, UpstreamError, UpstreamUnavailable
from gatewayz.providers.cohere import codec as cohere
from gatewayz.providers.cohere.listing import parse_page
from gatewayz.providers.cohere.stream import CohereStreamDecoder

TOOLS = [
    Tool("get_weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}}}),
    Tool("get_time", None, {"type": "object", "properties": {"tz": {"type": "string"}}}),
]


def _render(req: ChatRequest, stream: bool = False) -> dict:
    return orjson.loads(cohere.render_request(req, "command-a-03-2025", stream))


def test_render_maps_parameters() -> None:
    req = ChatRequest(
        model="cohere/command-a-03-2025",
        messages=[Message("developer", "be brief"), Message("user", "hi")],
        max_tokens=50,
        temperature=0.3,
        top_p=0.9,
        top_k=40,
        stop=["END"],
        seed=7,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"a": 1}}},
        thinking={"type": "enabled", "budget_tokens": 512},
    )
    body = _render(req, stream=True)
    assert body == {
        "model": "command-a-03-2025",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "stream": True,
        "max_tokens": 50,
        "temperature": 0.3,
        "p": 0.9,
        "k": 40,
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "stop_sequences": ["END"],
        "response_format": {"type": "json_object", "json_schema": {"a": 1}},
        "thinking": {"type": "enabled", "token_budget": 512},
    }


def test_render_tools_tool_choice_and_round_trip() -> None:
    messages = [
        Message("user", "weather?"),
        Message(
            "assistant",
            None,
            tool_calls=[ToolCall("c1", "get_weather", '{"city":"Paris"}')],
            reasoning="I will look it up.",
        ),
        Message("tool", "sunny", tool_call_id="c1"),
    ]
    body = _render(ChatRequest(model="m", messages=messages, tools=TOOLS, tool_choice="required"))
    assert body["tool_choice"] == "REQUIRED"
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "get_time"]
    assert body["tools"][0] == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    assert body["messages"][1] == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
        "tool_plan": "I will look it up.",
    }
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
    named = _render(
        ChatRequest(model="m", messages=messages, tools=TOOLS, tool_choice={"name": "get_time"})
    )
    assert named["tool_choice"] == "REQUIRED"
    assert [t["function"]["name"] for t in named["tools"]] == ["get_time"]
    none = _render(ChatRequest(model="m", messages=messages, tools=TOOLS, tool_choice="none"))
    assert none["tool_choice"] == "NONE"
    auto = _render(ChatRequest(model="m", messages=messages, tools=TOOLS, tool_choice="auto"))
    assert "tool_choice" not in auto


def test_render_images_and_text_documents() -> None:
    content = [
        TextPart("what is this?"),
        ImagePart("data:image/png;base64,AAAA", detail="low"),
        DocumentPart("text/plain", data="The sky is green.", title="notes"),
    ]
    body = _render(ChatRequest(model="m", messages=[Message("user", content)]))
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
    ]
    assert body["documents"] == [
        {"id": "doc_0", "data": {"text": "The sky is green.", "title": "notes"}}
    ]


@pytest.mark.parametrize(
    "req",
    [
        ChatRequest(model="m", messages=[Message("user", "x")], n=2),
        ChatRequest(
            model="m", messages=[Message("user", [DocumentPart("application/pdf", data="JVBER")])]
        ),
        ChatRequest(model="m", messages=[Message("system", [ImagePart("http://x/i.png")])]),
    ],
)
def test_render_rejects_what_cohere_cannot_take(req: ChatRequest) -> None:
    with pytest.raises(InvalidRequest):
        cohere.render_request(req, "m", False)


def test_parse_response_text_usage_and_finish() -> None:
    body = {
        "id": "abc",
        "finish_reason": "MAX_TOKENS",
        "message": {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm "},
                {"type": "text", "text": "Hello "},
                {"type": "text", "text": "there"},
            ],
        },
        "usage": {
            "billed_units": {"input_tokens": 5, "output_tokens": 2},
            "tokens": {"input_tokens": 13, "output_tokens": 2},
            "cached_tokens": 3,
        },
    }
    r = cohere.parse_response(orjson.dumps(body), "cohere")
    c = r.choices[0]
    assert c.message.content == "Hello there" and c.message.reasoning == "hmm "
    assert c.finish_reason == "length" and r.upstream_id == "abc"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.cached_tokens) == (5, 2, 3)


def test_parse_response_tool_calls_and_plan() -> None:
    body = {
        "id": "x",
        "finish_reason": "TOOL_CALL",
        "message": {
            "role": "assistant",
            "tool_plan": "I will call get_weather.",
            "tool_calls": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        "usage": {"tokens": {"input_tokens": 9, "output_tokens": 4}},
    }
    r = cohere.parse_response(orjson.dumps(body), "cohere")
    m = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    assert m.content is None and m.reasoning == "I will call get_weather."
    assert m.tool_calls is not None and (m.tool_calls[0].id, m.tool_calls[0].name) == (
        "t1",
        "get_weather",
    )
    assert r.usage is not None and r.usage.prompt_tokens == 9  # falls back to `tokens`


def test_parse_response_failures() -> None:
    with pytest.raises(UpstreamUnavailable):
        cohere.parse_response(b'{"id": "x", "message": ', "cohere")
    with pytest.raises(UpstreamError, match="ERROR"):
        cohere.parse_response(b'{"id": "x", "finish_reason": "ERROR", "message": {}}', "cohere")


def test_error_message_and_models() -> None:
    assert (
        cohere.error_message(b'{"id": "1", "message": "invalid api token"}') == "invalid api token"
    )
    assert cohere.error_message(b"gateway down") == "gateway down"
    entries, token = parse_page(
        {
            "models": [{"name": "command-a-03-2025"}, {"name": "embed-v4.0"}],
            "next_page_token": "p2",
        }
    )
    names = [e.native_id for e in entries]
    assert names == ["command-a-03-2025", "embed-v4.0"] and token == "p2"


def _sse(kind: str, data: dict) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


STREAM = b"".join(
    [
        _sse("message-start", {"id": "s1", "delta": {"message": {"role": "assistant"}}}),
        _sse("tool-plan-delta", {"delta": {"message": {"tool_plan": "Plan."}}}),
        _sse(
            "tool-call-start",
            {
                "index": 0,
                "delta": {
                    "message": {
                        "tool_calls": {
                            "id": "t1",
                            "type": "function",
                            "function": {"name": "a", "arguments": ""},
                        }
                    }
                },
            },
        ),
        _sse(
            "tool-call-delta",
            {
                "index": 0,
                "delta": {"message": {"tool_calls": {"function": {"arguments": '{"x":'}}}},
            },
        ),
        _sse(
            "tool-call-delta",
            {"index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "1}"}}}}},
        ),
        _sse("tool-call-end", {"index": 0}),
        _sse(
            "tool-call-start",
            {
                "index": 1,
                "delta": {"message": {"tool_calls": {"id": "t2", "function": {"name": "b"}}}},
            },
        ),
        _sse("tool-call-end", {"index": 1}),
        _sse(
            "message-end",
            {
                "delta": {
                    "finish_reason": "TOOL_CALL",
                    "usage": {"billed_units": {"input_tokens": 4, "output_tokens": 6}},
                }
            },
        ),
    ]
)


def test_stream_decoder_tools_byte_by_byte() -> None:
    dec = CohereStreamDecoder("cohere")
    chunks = []
    for i in range(len(STREAM)):
        chunks += dec.feed(STREAM[i : i + 1])
    chunks += dec.finish()
    deltas = [d for c in chunks for d in c.choices]
    assert deltas[0].role == "assistant"
    assert "".join(d.reasoning or "" for d in deltas) == "Plan."
    calls = [tc for d in deltas for tc in d.tool_calls or ()]
    assert [(tc.index, tc.id, tc.name) for tc in calls if tc.id] == [(0, "t1", "a"), (1, "t2", "b")]
    assert "".join(tc.arguments or "" for tc in calls if tc.index == 0) == '{"x":1}'
    assert deltas[-1].finish_reason == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


def test_stream_decoder_text_thinking_and_errors() -> None:
    dec = CohereStreamDecoder("cohere")
    data = _sse("content-delta", {"index": 0, "delta": {"message": {"content": {"thinking": "t"}}}})
    data += _sse("content-delta", {"index": 1, "delta": {"message": {"content": {"text": "Hi"}}}})
    out = dec.feed(data)
    assert [(c.choices[0].reasoning, c.choices[0].content) for c in out] == [
        ("t", None),
        (None, "Hi"),
    ]
    with pytest.raises(UpstreamUnavailable, match="before message-end"):
        dec.finish()
    with pytest.raises(UpstreamError, match="overloaded"):
        CohereStreamDecoder("cohere").feed(
            _sse("message-end", {"delta": {"finish_reason": "ERROR", "error": "overloaded"}})
        )
    with pytest.raises(UpstreamUnavailable, match="malformed"):
        CohereStreamDecoder("cohere").feed(b"event: content-delta\ndata: {nope\n\n")
