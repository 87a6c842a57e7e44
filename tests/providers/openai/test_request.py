"""The OpenAI chat request codec, both directions: a client's body parsed into the canonical
request (the dialect), a canonical request rendered for an OpenAI-compatible provider."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gatewayz.canonical.types import (
    DocumentPart,
    ImagePart,
    Message,
    OtherPart,
    TextPart,
    Tool,
    ToolCall,
)
from gatewayz.errors import InvalidRequest
from gatewayz.providers.openai import request as oreq

MSG = [{"role": "user", "content": "hi"}]


def _req(**kw: Any) -> bytes:
    return orjson.dumps({"model": "openai/gpt-4o", "messages": MSG, **kw})


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
        "provider": {"order": ["groq"]},
    }
    assert req.top_k == 40  # a canonical field: Anthropic and Gemini take it too
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


def test_other_dialects_extras_never_reach_openai_compatible_providers() -> None:
    req = oreq.parse_request(_req())
    req.extra = {"server_tools": [{"type": "web_search"}], "output_config": {"x": 1}}
    req.extra_dialect = "anthropic"
    body = orjson.loads(oreq.render_request(req, "m"))
    assert "server_tools" not in body and "output_config" not in body
    req.extra_dialect = "openai"
    assert orjson.loads(oreq.render_request(req, "m"))["output_config"] == {"x": 1}


# ================================================================ file parts
PDF_DATA = "JVBERi0xLjQK"


def _with_part(part: dict[str, Any]) -> Any:
    content = [{"type": "text", "text": "read"}, part]
    return oreq.parse_request(_req(messages=[{"role": "user", "content": content}]))


@pytest.mark.parametrize("filename", ["a.pdf", None])
def test_an_inline_pdf_file_part_is_a_document_and_goes_back_as_a_file_part(
    filename: str | None,
) -> None:
    file: dict[str, Any] = {"file_data": f"data:application/pdf;base64,{PDF_DATA}"}
    if filename is not None:
        file["filename"] = filename
    req = _with_part({"type": "file", "file": file})
    content = req.messages[0].content
    assert isinstance(content, list)
    assert content[1] == DocumentPart("application/pdf", data=PDF_DATA, title=filename)
    body = orjson.loads(oreq.render_request(req, "m"))
    # OpenAI wants a filename with file_data: the client's, else one made up.
    file["filename"] = filename or "document.pdf"
    assert body["messages"][0]["content"][1] == {"type": "file", "file": file}


@pytest.mark.parametrize(
    "part",
    [
        {"type": "file", "file": {"file_id": "file-abc"}},
        {"type": "file", "file": {"filename": "a.txt", "file_data": "data:text/plain;base64,aGk="}},
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF_DATA}"}, "x": 1},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ],
    ids=["file_id", "text", "extra-field", "input_audio"],
)
def test_other_parts_travel_as_they_came(part: dict[str, Any]) -> None:
    req = _with_part(part)
    content = req.messages[0].content
    assert isinstance(content, list) and content[1] == OtherPart(part["type"], part)
    body = orjson.loads(oreq.render_request(req, "m"))
    assert body["messages"][0]["content"][1] == part
