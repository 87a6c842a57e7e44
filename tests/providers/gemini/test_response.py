"""The Gemini response codec: responses and stream chunks → canonical, finish reasons, errors."""

from __future__ import annotations

import json

import orjson
import pytest

from gatewayz.errors import UpstreamError, UpstreamUnavailable
from gatewayz.providers.gemini import response as gemini_response
from gatewayz.providers.gemini.stream import GeminiStreamDecoder


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
