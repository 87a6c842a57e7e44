"""CM-10.3: Anthropic Messages responses, usage, stop reasons and errors ↔ canonical."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from gatewayz.canonical.types import ChatResponse, Choice, Message, TextPart, ToolCall, Usage
from gatewayz.errors import (
    InvalidRequest,
    PayloadTooLarge,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gatewayz.providers.anthropic.content import REDACTED
from gatewayz.providers.anthropic.response import (
    parse_response,
    render_error,
    render_response,
    upstream_error_message,
)


def message(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    base.update(fields)
    return base


def parse(**fields: Any) -> ChatResponse:
    return parse_response(orjson.dumps(message(**fields)), "anthropic")


def test_cm_10_3_1_parse_plain_message() -> None:
    r = parse()
    assert r.choices == [Choice(0, Message("assistant", "Hello"), "stop")]
    assert r.usage == Usage(10, 5)
    assert (r.upstream_id, r.upstream_model) == ("msg_1", "claude-sonnet-4-5")


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ],
)
def test_cm_10_3_1_stop_reason_maps_to_finish_reason(stop_reason: str, finish: str) -> None:
    assert parse(stop_reason=stop_reason).choices[0].finish_reason == finish


@pytest.mark.parametrize(
    ("finish", "stop_sequence", "stop_reason"),
    [
        ("stop", None, "end_turn"),
        ("stop", "END", "stop_sequence"),
        ("length", None, "max_tokens"),
        ("tool_calls", None, "tool_use"),
        ("content_filter", None, "refusal"),
    ],
)
def test_cm_10_3_1_finish_reason_maps_back(
    finish: str, stop_sequence: str | None, stop_reason: str
) -> None:
    resp = ChatResponse([Choice(0, Message("assistant", "x"), finish, stop_sequence=stop_sequence)])
    body = json.loads(render_response(resp, "msg_x", "claude"))
    assert (body["stop_reason"], body["stop_sequence"]) == (stop_reason, stop_sequence)


def test_stop_sequence_is_kept() -> None:
    c = parse(stop_reason="stop_sequence", stop_sequence="END").choices[0]
    assert (c.finish_reason, c.stop_sequence) == ("stop", "END")


def test_cm_10_3_1_usage_mapping_includes_cache_tokens_and_round_trips() -> None:
    u = {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 20,
    }
    r = parse(usage=u)
    assert r.usage == Usage(130, 5, cached_tokens=100, cache_write_tokens=20)
    assert json.loads(render_response(r, "msg_1", "claude"))["usage"] == u
    plain = json.loads(render_response(parse(), "msg_1", "claude"))["usage"]
    assert plain == {"input_tokens": 10, "output_tokens": 5}  # unknown cache fields omitted


def test_cm_10_3_1_parse_tool_use_and_thinking() -> None:
    r = parse(
        content=[
            {"type": "thinking", "thinking": "Let me see", "signature": "SIG"},
            {"type": "text", "text": "On it."},
            {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_2", "name": "t", "input": {}},
        ],
        stop_reason="tool_use",
    )
    m = r.choices[0].message
    assert m.content == "On it."
    assert m.tool_calls == [
        ToolCall("toolu_1", "w", '{"city":"Oslo"}'),
        ToolCall("toolu_2", "t", "{}"),
    ]
    assert (m.reasoning, m.reasoning_signature) == ("Let me see", "SIG")
    assert r.choices[0].finish_reason == "tool_calls"
    only_tools = parse(content=[{"type": "tool_use", "id": "a", "name": "w", "input": {}}])
    assert only_tools.choices[0].message.content is None


def test_render_response_round_trips_blocks() -> None:
    content = [
        {"type": "thinking", "thinking": "Let me see", "signature": "SIG"},
        {"type": "text", "text": "On it."},
        {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Oslo"}},
    ]
    resp = parse(content=content, stop_reason="tool_use")
    body = json.loads(render_response(resp, "msg_gw", "anthropic/claude"))
    assert body == message(
        id="msg_gw", model="anthropic/claude", content=content, stop_reason="tool_use"
    )
    redacted = parse(content=[{"type": "redacted_thinking", "data": "XX"}])
    assert redacted.choices[0].message.reasoning_signature == REDACTED + "XX"
    assert json.loads(render_response(redacted, "m", "c"))["content"] == [
        {"type": "redacted_thinking", "data": "XX"}
    ]


def test_render_response_from_other_providers() -> None:
    resp = ChatResponse(
        [
            Choice(
                0,
                Message(
                    "assistant",
                    [TextPart("a"), TextPart("b")],
                    tool_calls=[ToolCall("call_1", "w", "not json")],
                    reasoning="why",
                ),
                "tool_calls",
            )
        ],
        Usage(3, 4),
    )
    body = json.loads(render_response(resp, "msg_9", "gpt"))
    assert body["content"] == [
        {"type": "thinking", "thinking": "why", "signature": ""},
        {"type": "text", "text": "a"},
        {"type": "text", "text": "b"},
        {"type": "tool_use", "id": "call_1", "name": "w", "input": {}},
    ]
    assert body["usage"] == {"input_tokens": 3, "output_tokens": 4}


@pytest.mark.parametrize(
    "raw", [b"not json", b"[]", orjson.dumps({"id": "x"}), orjson.dumps(message(content=[{}]))]
)
def test_malformed_response_is_upstream_unavailable(raw: bytes) -> None:
    with pytest.raises(UpstreamUnavailable):
        parse_response(raw, "anthropic")


def test_error_body_on_200_is_upstream_error() -> None:
    raw = orjson.dumps({"type": "error", "error": {"type": "api_error", "message": "bad"}})
    with pytest.raises(UpstreamError, match="bad"):
        parse_response(raw, "anthropic")


@pytest.mark.parametrize(
    ("err", "kind"),
    [
        (InvalidRequest("no"), "invalid_request_error"),
        (RateLimited("slow"), "rate_limit_error"),
        (PayloadTooLarge("big"), "request_too_large"),
        (UpstreamTimeout("late"), "timeout_error"),
        (UpstreamUnavailable("down", status=503), "overloaded_error"),
        (UpstreamError("bad"), "api_error"),
    ],
)
def test_cm_10_3_1_render_error_in_anthropic_shape(err: Any, kind: str) -> None:
    assert json.loads(render_error(err)) == {
        "type": "error",
        "error": {"type": kind, "message": err.message},
    }


def test_upstream_error_message() -> None:
    raw = orjson.dumps({"type": "error", "error": {"type": "x", "message": "Overloaded"}})
    assert upstream_error_message(raw) == "Overloaded"
    assert upstream_error_message(b"<html>502</html>") == "<html>502</html>"


def test_malformed_usage_is_flagged_for_the_estimate_not_an_error() -> None:
    # Nonsense counts are not a failed answer: the pipeline estimates and flags the row.
    for bad in ("many", -1, 10**12, True):
        usage = parse(usage={"input_tokens": bad, "output_tokens": 1}).usage
        assert usage is not None and usage.invalid and usage.estimated
