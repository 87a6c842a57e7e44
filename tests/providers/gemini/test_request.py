"""The Gemini request codec: canonical request → generateContent body, schema stripping, tool
choice, generation and thinking config."""

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
from gatewayz.errors import InvalidRequest
from gatewayz.providers.gemini import request as gemini

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
