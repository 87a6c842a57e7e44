"""The Gemini codec: canonical request → generateContent body, responses and stream chunks →
canonical, schema stripping, finish reasons, errors."""

from __future__ import annotations

import json

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
from gatewayz.providers.gemini import request as gemini
from gatewayz.providers.gemini import response as gemini_response
from gatewayz.providers.gemini.stream import GeminiStreamDecoder

WEATHER = Tool(
    "get_weather",
    "Weather for a city",
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "city": {"type": "string", "description": "City"},
            "days": {"type": ["integer", "null"]},
            "unit": {"enum": ["c", "f"]},
            "opts": {"type": "object", "properties": {}, "additionalProperties": True},
        },
        "required": ["city", "missing"],
    },
)


def body(req: ChatRequest, model: str = "gemini-2.5-flash") -> dict:
    return orjson.loads(gemini.render_request(req, model))


def test_messages_roles_system_and_merging() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message("system", "Be brief."),
            Message("developer", [TextPart("Use metric.")]),
            Message("user", "Hi"),
            Message("user", [TextPart("there")]),
            Message("assistant", "Hello!"),
            Message("user", "Weather?"),
        ],
    )
    b = body(req)
    assert b["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use metric."}]}
    assert b["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}, {"text": "there"}]},
        {"role": "model", "parts": [{"text": "Hello!"}]},
        {"role": "user", "parts": [{"text": "Weather?"}]},
    ]
    assert "generationConfig" not in b and "tools" not in b


def test_media_parts_inline_and_file_data() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message(
                "user",
                [
                    TextPart("Describe"),
                    ImagePart("data:image/png;base64,iVBORw0KGgo="),
                    ImagePart("https://example.com/cat.webp?x=1"),
                    DocumentPart("application/pdf", data="JVBERi0="),
                    DocumentPart("text/plain", data="plain words"),
                ],
            )
        ],
    )
    parts = body(req)["contents"][0]["parts"]
    assert parts == [
        {"text": "Describe"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?x=1"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"text": "plain words"},
    ]


def test_tool_round_trip_recovers_function_names_and_merges_results() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message("user", "Weather and time?"),
            Message(
                "assistant",
                None,
                tool_calls=[
                    ToolCall("call_a", "get_weather", '{"city": "Paris"}'),
                    ToolCall("call_b", "get_time", ""),
                ],
                reasoning_signature="c2lnbmF0dXJl",
            ),
            Message("tool", '{"temp": 21}', tool_call_id="call_a"),
            Message("tool", "boom", tool_call_id="call_b", is_error=True),
        ],
    )
    contents = body(req)["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "c2lnbmF0dXJl",
            },
            {"functionCall": {"name": "get_time", "args": {}}},
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"output": {"temp": 21}}}},
            {"functionResponse": {"name": "get_time", "response": {"error": "boom"}}},
        ],
    }


def test_tool_result_without_matching_call_is_rejected() -> None:
    req = ChatRequest(
        model="m", messages=[Message("user", "x"), Message("tool", "r", tool_call_id="nope")]
    )
    with pytest.raises(InvalidRequest, match="nope"):
        gemini.render_request(req, "gemini-2.5-flash")


def test_bad_tool_call_arguments_are_rejected() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message("assistant", None, tool_calls=[ToolCall("c", "f", "[1]")])],
    )
    with pytest.raises(InvalidRequest, match="JSON object"):
        gemini.render_request(req, "gemini-2.5-flash")


def test_tools_schema_is_stripped_to_gemini_subset() -> None:
    decl = body(ChatRequest(model="m", messages=[Message("user", "x")], tools=[WEATHER]))
    fn = decl["tools"][0]["functionDeclarations"][0]
    assert fn == {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "OBJECT",
            "properties": {
                "city": {"type": "STRING", "description": "City"},
                "days": {"type": "INTEGER", "nullable": True},
                "unit": {"type": "STRING", "enum": ["c", "f"]},
                "opts": {"type": "OBJECT"},
            },
            "required": ["city"],
        },
    }


def test_schema_refs_anyof_optional_and_const() -> None:
    schema = {
        "$defs": {"Pt": {"type": "object", "properties": {"x": {"type": "number"}}}},
        "type": "object",
        "properties": {
            "p": {"$ref": "#/$defs/Pt"},
            "q": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "k": {"const": "fixed"},
            "n": {"type": "integer", "enum": [1, 2]},
        },
    }
    out = gemini.to_gemini_schema(schema)
    assert out["properties"] == {
        "p": {"type": "OBJECT", "properties": {"x": {"type": "NUMBER"}}},
        "q": {"type": "STRING", "nullable": True, "default": None},
        "k": {"type": "STRING", "enum": ["fixed"]},
        "n": {"type": "INTEGER"},
    }
    assert "$defs" not in out


def test_function_without_parameters_omits_them() -> None:
    t = Tool("now", None, {"type": "object", "properties": {}})
    b = body(ChatRequest(model="m", messages=[Message("user", "x")], tools=[t]))
    assert b["tools"][0]["functionDeclarations"] == [{"name": "now"}]


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"name": "get_weather"}, {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
def test_tool_choice(choice: str | dict[str, str], config: dict) -> None:
    req = ChatRequest(model="m", messages=[Message("user", "x")], tools=[WEATHER])
    req.tool_choice = choice
    assert body(req)["toolConfig"] == {"functionCallingConfig": config}


def test_generation_config_and_json_schema() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message("user", "x")],
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        max_tokens=100,
        stop=["END"],
        n=2,
        seed=7,
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "r",
                "schema": {
                    "type": "object",
                    "properties": {"a": {"type": "string"}},
                    "required": ["a"],
                    "additionalProperties": False,
                },
            },
        },
        extra={"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT"}], "store": True},
    )
    b = body(req)
    assert b["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "topK": 40,
        "maxOutputTokens": 100,
        "seed": 7,
        "stopSequences": ["END"],
        "candidateCount": 2,
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {"a": {"type": "STRING"}},
            "required": ["a"],
        },
    }
    assert b["safetySettings"] == [{"category": "HARM_CATEGORY_HARASSMENT"}]
    assert "store" not in b


@pytest.mark.parametrize(
    ("model", "effort", "thinking", "expected"),
    [
        ("gemini-2.5-flash", "low", None, {"thinkingBudget": 1024, "includeThoughts": True}),
        ("gemini-2.5-flash", "none", None, {"thinkingBudget": 0}),
        ("gemini-2.5-pro", "high", None, {"thinkingBudget": 24576, "includeThoughts": True}),
        ("gemini-3-flash", "medium", None, {"thinkingLevel": "MEDIUM", "includeThoughts": True}),
        (
            "gemini-3-pro-preview",
            "medium",
            None,
            {"thinkingLevel": "HIGH", "includeThoughts": True},
        ),
        (
            "gemini-2.5-flash",
            None,
            {"type": "enabled", "budget_tokens": 2048},
            {"includeThoughts": True, "thinkingBudget": 2048},
        ),
        ("gemini-2.5-flash", None, {"type": "disabled"}, {"thinkingBudget": 0}),
    ],
)
def test_thinking_config(
    model: str, effort: str | None, thinking: dict | None, expected: dict
) -> None:
    req = ChatRequest(
        model="m", messages=[Message("user", "x")], reasoning_effort=effort, thinking=thinking
    )
    assert body(req, model)["generationConfig"]["thinkingConfig"] == expected


# ---------------------------------------------------------------- responses
def test_parse_response_text_thoughts_calls_usage() -> None:
    raw = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Let me think.", "thought": True},
                        {"text": "Calling."},
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                            "thoughtSignature": "c2ln",
                        },
                        {"functionCall": {"id": "fc-7", "name": "get_time", "args": {}}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": 8,
            "thoughtsTokenCount": 5,
            "cachedContentTokenCount": 4,
            "totalTokenCount": 25,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-1",
    }
    r = gemini_response.parse_response(orjson.dumps(raw), "p")
    c = r.choices[0]
    assert c.finish_reason == "tool_calls"
    assert c.message.content == "Calling."
    assert c.message.reasoning == "Let me think."
    assert c.message.reasoning_signature == "c2ln"
    calls = c.message.tool_calls
    assert calls is not None and [t.name for t in calls] == ["get_weather", "get_time"]
    assert calls[0].id.startswith("call_") and len(calls[0].id) == 29
    assert calls[1].id == "fc-7"
    assert json.loads(calls[0].arguments) == {"city": "Oslo"}
    u = r.usage
    assert u is not None
    assert (u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.reasoning_tokens) == (
        12,
        13,
        4,
        5,
    )
    assert (r.upstream_id, r.upstream_model) == ("resp-1", "gemini-2.5-flash")


@pytest.mark.parametrize(
    ("reason", "has_calls", "expected"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        ("MAX_TOKENS", False, "length"),
        ("MAX_TOKENS", True, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        ("BLOCKLIST", False, "content_filter"),
        ("PROHIBITED_CONTENT", False, "content_filter"),
        ("SPII", False, "content_filter"),
        ("OTHER", False, "stop"),
        (None, False, None),
    ],
)
def test_finish_reasons(reason: str | None, has_calls: bool, expected: str | None) -> None:
    assert gemini_response.finish_reason(reason, has_calls) == expected


def test_blocked_prompt_is_content_filter() -> None:
    raw = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}
    r = gemini_response.parse_response(orjson.dumps(raw), "p")
    assert r.choices[0].finish_reason == "content_filter"
    assert r.choices[0].message.content == ""


def test_malformed_response_is_upstream_unavailable() -> None:
    with pytest.raises(UpstreamUnavailable):
        gemini_response.parse_response(
            b'{"candidates": [{"content": {"parts": [{"functionCall": {}}]}}]}', "p"
        )
    with pytest.raises(UpstreamUnavailable):
        gemini_response.parse_response(b"{not json", "p")


def test_error_messages() -> None:
    err = b'{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}'
    assert gemini_response.upstream_error_message(err) == "Quota exceeded"
    vertex = b'[{"error": {"code": 400, "message": "Bad thing", "status": "INVALID_ARGUMENT"}}]'
    assert gemini_response.upstream_error_message(vertex) == "Bad thing"
    assert gemini_response.upstream_error_message(b"<html>oops</html>") == "<html>oops</html>"


# ---------------------------------------------------------------- streams
def _sse(*objs: dict) -> bytes:
    return b"".join(b"data: " + orjson.dumps(o) + b"\r\n\r\n" for o in objs)


def test_stream_decoder_text_calls_finish_usage_split_anywhere() -> None:
    calls = [
        {"functionCall": {"name": "a", "args": {"x": 1}}},
        {"functionCall": {"name": "b", "args": {}}},
    ]
    thought_and_text = [{"text": "think", "thought": True}, {"text": "lo"}]
    data = _sse(
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
        },
        {"candidates": [{"content": {"parts": thought_and_text}}]},
        {
            "candidates": [{"content": {"parts": calls}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 7},
        },
    )
    for cut in (1, 7, 40, len(data) - 3):
        dec = GeminiStreamDecoder("p")
        chunks = dec.feed(data[:cut]) + dec.feed(data[cut:]) + dec.finish()
        assert len(chunks) == 3
        first, second, last = chunks
        assert first.choices[0].role == "assistant" and first.choices[0].content == "Hel"
        assert first.usage is not None and first.usage.completion_tokens == 0
        assert second.choices[0].role is None
        assert (second.choices[0].content, second.choices[0].reasoning) == ("lo", "think")
        deltas = last.choices[0].tool_calls
        assert deltas is not None
        assert [(c.index, c.name, c.arguments) for c in deltas] == [
            (0, "a", '{"x":1}'),
            (1, "b", "{}"),
        ]
        assert all(c.id and c.id.startswith("call_") for c in deltas)
        assert last.choices[0].finish_reason == "tool_calls"
        assert last.usage is not None
        assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (5, 7)


def test_stream_error_event_and_malformed_event() -> None:
    dec = GeminiStreamDecoder("p")
    with pytest.raises(UpstreamError, match="overloaded"):
        dec.feed(_sse({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}))
    with pytest.raises(UpstreamUnavailable, match="malformed"):
        GeminiStreamDecoder("p").feed(b"data: {nope\r\n\r\n")
    dec = GeminiStreamDecoder("p")
    dec.feed(b'data: {"candidates": [')
    with pytest.raises(UpstreamUnavailable):
        dec.finish()
