"""The fal any-llm codec: conversation → prompt, output → canonical, cumulative stream → deltas."""

from __future__ import annotations

import orjson
import pytest

from gatewayz.canonical.types import ChatRequest, ImagePart, Message, TextPart, Tool, ToolCall
from gatewayz.errors import InvalidRequest, UpstreamError, UpstreamUnavailable
from gatewayz.providers.fal import codec as fal


def _render(req: ChatRequest) -> dict:
    return orjson.loads(fal.render_request(req, "google/gemini-flash-1.5"))


def test_single_user_message_is_the_prompt() -> None:
    req = ChatRequest(model="m", messages=[Message("system", "Be brief."), Message("user", "Hi")])
    assert _render(req) == {
        "model": "google/gemini-flash-1.5",
        "prompt": "Hi",
        "system_prompt": "Be brief.",
    }


def test_conversation_is_rendered_with_speakers() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message("user", [TextPart("Hi "), TextPart("there")]),
            Message("assistant", "Hello!"),
            Message("developer", "No emojis."),
            Message("user", "How are you?"),
        ],
        thinking={"type": "enabled", "budget_tokens": 100},
    )
    body = _render(req)
    assert (
        body["prompt"] == "User: Hi there\n\nAssistant: Hello!\n\nUser: How are you?\n\nAssistant:"
    )
    assert body["system_prompt"] == "No emojis." and body["reasoning"] is True


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (
            ChatRequest(model="m", messages=[Message("user", "x")], tools=[Tool("f")]),
            "fal does not support tools.",
        ),
        (
            ChatRequest(
                model="m",
                messages=[
                    Message("assistant", None, tool_calls=[ToolCall("c", "f", "{}")]),
                    Message("tool", "r", tool_call_id="c"),
                ],
            ),
            "fal does not support tools.",
        ),
        (
            ChatRequest(model="m", messages=[Message("user", [ImagePart("http://x/y.png")])]),
            "fal does not support image input.",
        ),
        (ChatRequest(model="m", messages=[Message("system", "only")]), "fal needs at least one"),
    ],
)
def test_unsupported_input_is_invalid_request(req: ChatRequest, message: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        fal.render_request(req, "m")
    assert e.value.status == 400 and e.value.message.startswith(message)


def test_parse_response() -> None:
    r = fal.parse_response(
        b'{"output": "42", "reasoning": "think", "partial": false, "error": null}', "fal"
    )
    assert r.choices[0].message.content == "42" and r.choices[0].message.reasoning == "think"
    assert r.choices[0].finish_reason == "stop" and r.usage is None
    with pytest.raises(UpstreamError, match="quota"):
        fal.parse_response(b'{"output": "", "error": "quota exceeded"}', "fal")
    with pytest.raises(UpstreamUnavailable):
        fal.parse_response(b'{"images": []}', "fal")


def test_error_message_shapes() -> None:
    assert fal.error_message(b'{"detail": "Unauthorized"}') == "Unauthorized"
    detail = b'{"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]}'
    assert fal.error_message(detail) == "prompt: field required"
    assert fal.error_message(b"Bad Gateway") == "Bad Gateway"


def test_stream_decoder_emits_deltas_of_cumulative_output() -> None:
    events = [
        {"output": "Hel", "partial": True, "error": None},
        {"output": "Hello wor", "partial": True, "error": None},
        {"output": "Hello world", "partial": False, "error": None},
    ]
    data = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)
    dec = fal.FalStreamDecoder("fal")
    chunks = []
    for i in range(0, len(data), 7):
        chunks += dec.feed(data[i : i + 7])
    chunks += dec.finish()
    deltas = [c.choices[0] for c in chunks]
    assert [d.content for d in deltas] == ["Hel", "lo wor", "ld"]
    assert deltas[0].role == "assistant" and deltas[-1].finish_reason == "stop"


def test_stream_decoder_failures() -> None:
    dec = fal.FalStreamDecoder("fal")
    dec.feed(b'data: {"output": "Hi", "partial": true}\n\n')
    with pytest.raises(UpstreamUnavailable, match="before the final result"):
        dec.finish()
    with pytest.raises(UpstreamError, match="boom"):
        fal.FalStreamDecoder("fal").feed(b'data: {"output": "", "error": "boom"}\n\n')
    with pytest.raises(UpstreamUnavailable, match="malformed"):
        fal.FalStreamDecoder("fal").feed(b'data: {"output": \n\n')
