"""CM-10.3: Anthropic Messages requests ↔ canonical, both directions."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from gatewayz.canonical.types import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    OtherPart,
    TextPart,
    Tool,
    ToolCall,
)
from gatewayz.errors import InvalidRequest
from gatewayz.providers.anthropic.content import REDACTED
from gatewayz.providers.anthropic.request import (
    DEFAULT_MAX_TOKENS,
    count_tokens_request,
    parse_request,
    render_request,
)

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def body(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    base.update(fields)
    return orjson.dumps(base)


def out(req: ChatRequest, model: str = "claude-sonnet-4-5") -> dict[str, Any]:
    result: dict[str, Any] = json.loads(render_request(req, model))
    return result


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b"{not json", None),
        (b"[1]", None),
        (orjson.dumps({"model": "m", "messages": []}), "max_tokens"),
        (body(max_tokens=0), "max_tokens"),
        (body(max_tokens="5"), "max_tokens"),
        (body(model=None), "model"),
        (orjson.dumps({"model": "m", "max_tokens": 5}), "messages"),
        (body(messages=[{"role": "system", "content": "x"}]), "messages.0.role"),
        (body(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
        (body(temperature=1.5), "temperature"),
        (body(stop_sequences="END"), "stop_sequences"),
        (body(tool_choice={"type": "bogus"}), "tool_choice.type"),
        (body(tools=[{"name": "x"}]), "tools.0.input_schema"),
        (body(thinking={"type": "enabled", "budget_tokens": 10}), "thinking.budget_tokens"),
        (
            body(messages=[{"role": "user", "content": [{"type": "image", "source": {}}]}]),
            "messages.0.content.0.source.type",
        ),
    ],
)
def test_cm_10_3_1_bad_requests_raise_invalid_request(raw: bytes, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_request(raw)
    assert info.value.status == 400
    assert info.value.param == param


def test_cm_10_3_1_max_tokens_required_inbound_and_defaulted_outbound() -> None:
    with pytest.raises(InvalidRequest, match="max_tokens"):
        parse_request(orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}))
    req = ChatRequest(model="x", messages=[Message("user", "hi")])
    assert out(req)["max_tokens"] == DEFAULT_MAX_TOKENS
    req.max_tokens = 77
    assert out(req)["max_tokens"] == 77


def test_count_tokens_request_needs_no_max_tokens() -> None:
    req = count_tokens_request(
        orjson.dumps(
            {
                "model": "claude-x",
                "system": "Be brief",
                "messages": [{"role": "user", "content": "Hi"}],
                "tools": [{"name": "w", "input_schema": WEATHER}],
            }
        )
    )
    assert req.model == "claude-x" and req.max_tokens is None
    assert [m.role for m in req.messages] == ["system", "user"]
    assert req.tools == [Tool("w", None, WEATHER)]


# ---------------------------------------------------------------- system
def test_cm_10_3_1_system_string_and_blocks_become_system_messages() -> None:
    assert parse_request(body(system="Be brief")).messages[0] == Message("system", "Be brief")
    blocks = [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]
    req = parse_request(body(system=blocks))
    assert req.messages[0] == Message("system", [TextPart("A"), TextPart("B")])
    assert req.messages[1] == Message("user", "Hi")


def test_cm_10_3_1_system_and_developer_messages_go_to_top_level_system() -> None:
    req = ChatRequest(
        model="x",
        messages=[
            Message("system", "Be brief"),
            Message("developer", [TextPart("Use French")]),
            Message("user", "Hi"),
        ],
    )
    b = out(req)
    assert b["system"] == [
        {"type": "text", "text": "Be brief"},
        {"type": "text", "text": "Use French"},
    ]
    assert b["messages"] == [{"role": "user", "content": "Hi"}]


# ---------------------------------------------------------------- content blocks
def test_cm_10_3_1_image_and_document_blocks_round_trip() -> None:
    content = [
        {"type": "text", "text": "Look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
            "title": "Report",
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hi"}},
        {"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}},
    ]
    req = parse_request(body(messages=[{"role": "user", "content": content}]))
    assert req.messages == [
        Message(
            "user",
            [
                TextPart("Look"),
                ImagePart("data:image/png;base64,iVBO"),
                ImagePart("https://x.test/a.jpg"),
                DocumentPart("application/pdf", data="JVBE", title="Report"),
                DocumentPart("text/plain", data="hi"),
                DocumentPart("application/pdf", url="https://x.test/a.pdf"),
            ],
        )
    ]
    assert out(req)["messages"] == [{"role": "user", "content": content}]


def test_openai_style_image_data_url_becomes_base64_source() -> None:
    req = ChatRequest(
        model="x", messages=[Message("user", [ImagePart("data:image/jpeg;base64,/9j/", "high")])]
    )
    block = out(req)["messages"][0]["content"][0]
    assert block == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"},
    }


def test_foreign_parts_are_refused_and_anthropic_ones_kept() -> None:
    audio = OtherPart("input_audio", {"type": "input_audio", "input_audio": {}})
    with pytest.raises(InvalidRequest):
        render_request(ChatRequest(model="x", messages=[Message("user", [audio])]), "m")
    search = {"type": "search_result", "source": "s", "title": "t", "content": []}
    req = parse_request(body(messages=[{"role": "user", "content": [search]}]))
    assert req.messages[0].content == [OtherPart("search_result", search)]
    assert out(req)["messages"][0]["content"] == [search]


# ---------------------------------------------------------------- tools
def test_cm_10_3_1_tool_use_and_tool_results_round_trip() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "w", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "boom"}],
                    "is_error": True,
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]
    req = parse_request(body(messages=messages))
    assert req.messages[1] == Message(
        "assistant",
        [TextPart("Checking.")],
        tool_calls=[
            ToolCall("toolu_1", "w", '{"city":"Paris"}'),
            ToolCall("toolu_2", "w", '{"city":"Rome"}'),
        ],
    )
    assert req.messages[2:] == [
        Message("tool", "18C", tool_call_id="toolu_1"),
        Message("tool", [TextPart("boom")], tool_call_id="toolu_2", is_error=True),
        Message("user", [TextPart("And tomorrow?")]),
    ]
    assert out(req)["messages"] == messages


def test_cm_10_3_1_consecutive_tool_messages_merge_into_one_user_turn() -> None:
    req = ChatRequest(
        model="x",
        messages=[
            Message("user", "Weather?"),
            Message(
                "assistant",
                None,
                tool_calls=[ToolCall("c1", "w", '{"city":"A"}'), ToolCall("c2", "w", "")],
            ),
            Message("tool", "sunny", tool_call_id="c1"),
            Message("tool", "rainy", tool_call_id="c2"),
            Message("user", "Thanks"),
            Message("user", "Summarise"),
        ],
    )
    msgs = out(req)["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "w", "input": {"city": "A"}},
        {"type": "tool_use", "id": "c2", "name": "w", "input": {}},
    ]
    assert msgs[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "c2", "content": "rainy"},
        {"type": "text", "text": "Thanks"},
        {"type": "text", "text": "Summarise"},
    ]


def test_invalid_tool_arguments_are_refused_outbound() -> None:
    bad = Message("assistant", None, tool_calls=[ToolCall("c", "w", "{oops")])
    with pytest.raises(InvalidRequest) as info:
        render_request(ChatRequest(model="x", messages=[Message("user", "q"), bad]), "m")
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


def test_cm_10_3_1_tools_and_tool_choice_round_trip() -> None:
    tools = [{"name": "w", "description": "Weather", "input_schema": WEATHER}]
    cases: list[tuple[dict[str, Any], Any, bool | None]] = [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "tool", "name": "w"}, {"name": "w"}, None),
        ({"type": "none"}, "none", None),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
    ]
    for choice, canonical, parallel in cases:
        req = parse_request(body(tools=tools, tool_choice=choice))
        assert req.tools == [Tool("w", "Weather", WEATHER)]
        assert (req.tool_choice, req.parallel_tool_calls) == (canonical, parallel)
        b = out(req)
        assert b["tools"] == tools and b["tool_choice"] == choice


def test_openai_parallel_false_becomes_disable_parallel_tool_use() -> None:
    req = ChatRequest(
        model="x", messages=[Message("user", "q")], tools=[Tool("w")], parallel_tool_calls=False
    )
    b = out(req)
    assert b["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert b["tools"] == [{"name": "w", "input_schema": {"type": "object", "properties": {}}}]


def test_server_tools_are_kept_for_anthropic() -> None:
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    req = parse_request(body(tools=[search, {"name": "w", "input_schema": WEATHER}]))
    assert req.tools == [Tool("w", None, WEATHER)]
    assert out(req)["tools"] == [{"name": "w", "input_schema": WEATHER}, search]


# ---------------------------------------------------------------- parameters
def test_cm_10_3_1_sampling_stop_metadata_thinking_round_trip() -> None:
    raw = dict(
        stop_sequences=["END", "STOP"],
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        metadata={"user_id": "u-1"},
        thinking={"type": "enabled", "budget_tokens": 2048},
        stream=True,
        max_tokens=4000,
    )
    req = parse_request(body(**raw))
    assert req.stop == ["END", "STOP"] and req.user == "u-1"
    assert (req.temperature, req.top_p, req.top_k, req.max_tokens) == (0.5, 0.9, 40, 4000)
    assert req.thinking == {"type": "enabled", "budget_tokens": 2048}
    assert req.stream and req.include_usage
    b = out(req)
    for k, v in raw.items():
        assert b[k] == v, k


def test_cm_10_3_2_openai_fields_not_leaked_to_anthropic() -> None:
    req = ChatRequest(
        model="x",
        messages=[Message("user", "q")],
        n=1,
        seed=7,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        logit_bias={"1": 1.0},
        logprobs=True,
        top_logprobs=2,
        metadata={"k": "v"},
        response_format={"type": "json_object"},
        extra={"service_tier": "flex", "store": True, "service": "x"},
    )
    assert set(out(req)) == {"model", "max_tokens", "messages"}


def test_reasoning_effort_becomes_thinking_budget() -> None:
    req = ChatRequest(model="x", messages=[Message("user", "q")], reasoning_effort="low")
    b = out(req)
    assert b["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert b["max_tokens"] == 1024 + DEFAULT_MAX_TOKENS
    req.max_tokens = 3000
    req.reasoning_effort = "high"
    b = out(req)
    assert b["thinking"] == {"type": "enabled", "budget_tokens": 2999} and b["max_tokens"] == 3000
    req.extra = {"thinking": {"type": "enabled", "budget_tokens": 1500}}  # OpenAI extra_body
    assert out(req)["thinking"] == {"type": "enabled", "budget_tokens": 1500}


def test_json_schema_response_format_becomes_output_config() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    req = ChatRequest(
        model="x",
        messages=[Message("user", "q")],
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
    )
    assert out(req)["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


# ---------------------------------------------------------------- thinking blocks
def test_cm_10_3_1_thinking_blocks_round_trip() -> None:
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Hmm.", "signature": "sig=="},
            {"type": "text", "text": "Yes"},
        ],
    }
    req = parse_request(body(messages=[{"role": "user", "content": "q"}, assistant]))
    m = req.messages[1]
    assert (m.reasoning, m.reasoning_signature, m.content) == ("Hmm.", "sig==", [TextPart("Yes")])
    assert out(req)["messages"][1] == assistant

    redacted = {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "EnCr"}]}
    req = parse_request(body(messages=[{"role": "user", "content": "q"}, redacted]))
    assert req.messages[1].reasoning_signature == REDACTED + "EnCr"
    assert out(req)["messages"][1] == redacted


def test_unsigned_reasoning_from_other_providers_is_not_sent() -> None:
    req = ChatRequest(
        model="x",
        messages=[Message("user", "q"), Message("assistant", "A", reasoning="thought")],
    )
    assert out(req)["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "A"}],
    }
