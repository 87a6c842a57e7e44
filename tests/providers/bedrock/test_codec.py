"""The Converse codec: canonical ⇄ Bedrock JSON, and ConverseStream frames → chunks."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from gatewayz.canonical.types import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    OtherPart,
    StreamChunk,
    TextPart,
    Tool,
    ToolCall,
)
from gatewayz.errors import InvalidRequest, RateLimited, UpstreamError, UpstreamUnavailable
from gatewayz.providers.bedrock import codec as bedrock
from gatewayz.providers.bedrock.eventstream import encode_message
from gatewayz.providers.bedrock.stream import ConverseStreamDecoder
from gatewayz.simulators.content import Completion
from gatewayz.simulators.content import ToolCall as SimToolCall
from gatewayz.simulators.formats.bedrock import event_frame, exception_frame, stream_frames

NOVA = "us.amazon.nova-pro-v1:0"
CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
WEATHER = Tool("get_weather", "Weather", {"type": "object", "properties": {"city": {}}})


def _conversation() -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=[
            Message("system", "Be brief."),
            Message("developer", [TextPart("Use metric.")]),
            Message(
                "user",
                [
                    TextPart("Look:"),
                    ImagePart("data:image/jpeg,%FF%D8"),
                    DocumentPart("application/pdf", data="JVBERi0=", title="Q3 report.pdf"),
                    DocumentPart("text/plain", data="plain notes"),
                ],
            ),
            Message(
                "assistant",
                "Checking.",
                tool_calls=[
                    ToolCall("t1", "get_weather", '{"city":"Paris"}'),
                    ToolCall("t2", "get_weather", ""),
                ],
                reasoning="thinking...",
                reasoning_signature="sig==",
            ),
            Message("tool", "18C", tool_call_id="t1"),
            Message("tool", [TextPart("failed")], tool_call_id="t2", is_error=True),
            Message("user", "And tomorrow?"),
        ],
        max_tokens=100,
        top_p=0.9,
        top_k=40,
        stop=["END"],
        tools=[WEATHER],
        tool_choice="auto",
        thinking={"type": "enabled", "budget_tokens": 1024},
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": {}}},
    )


def test_request_shape() -> None:
    body = bedrock.build_request(_conversation(), CLAUDE)
    assert body["system"] == [{"text": "Be brief."}, {"text": "Use metric."}]
    user, assistant, results = body["messages"]
    assert user["content"] == [
        {"text": "Look:"},
        {"image": {"format": "jpeg", "source": {"bytes": base64.b64encode(b"\xff\xd8").decode()}}},
        {"document": {"format": "pdf", "name": "Q3 report-pdf", "source": {"bytes": "JVBERi0="}}},
        {"document": {"format": "txt", "name": "document-2",
                      "source": {"bytes": base64.b64encode(b"plain notes").decode()}}},
    ]  # fmt: skip
    assert assistant == {
        "role": "assistant",
        "content": [
            {"reasoningContent": {"reasoningText": {"text": "thinking...", "signature": "sig=="}}},
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": "t2", "name": "get_weather", "input": {}}},
        ],
    }
    # Both tool results and the next user turn merge into one user message.
    assert results == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "t1", "content": [{"text": "18C"}], "status": "success"}},
            {"toolResult": {"toolUseId": "t2", "content": [{"text": "failed"}],
                            "status": "error"}},
            {"text": "And tomorrow?"},
        ],
    }  # fmt: skip
    assert body["inferenceConfig"] == {"maxTokens": 100, "topP": 0.9, "stopSequences": ["END"]}
    assert body["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather",
                                "inputSchema": {"json": WEATHER.parameters}}}],
        "toolChoice": {"auto": {}},
    }  # fmt: skip
    assert body["additionalModelRequestFields"] == {
        "top_k": 40,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    assert body["outputConfig"] == {
        "textFormat": {"type": "json_schema",
                       "structure": {"jsonSchema": {"schema": "{}", "name": "w"}}}
    }  # fmt: skip


def test_request_is_valid_for_botocore_model() -> None:
    session = pytest.importorskip("botocore.session")
    from botocore.validate import ParamValidator

    model = session.get_session().get_service_model("bedrock-runtime")
    for op in ("Converse", "ConverseStream"):
        shape = model.operation_model(op).input_shape
        params = {"modelId": CLAUDE, **bedrock.build_request(_conversation(), CLAUDE)}
        report = ParamValidator().validate(params, shape)
        assert not report.has_errors(), report.generate_report()


def test_tool_choice_variants_and_nova_top_k() -> None:
    def config(choice: Any, history: bool = False) -> Any:
        msgs = [Message("user", "hi")]
        if history:
            msgs += [Message("assistant", None, tool_calls=[ToolCall("a", "get_weather", "{}")]),
                     Message("tool", "x", tool_call_id="a")]  # fmt: skip
        req = ChatRequest("m", msgs, tools=[WEATHER], tool_choice=choice)
        return bedrock.build_request(req, NOVA).get("toolConfig")

    assert config("required")["toolChoice"] == {"any": {}}
    assert config({"name": "get_weather"})["toolChoice"] == {"tool": {"name": "get_weather"}}
    assert "toolChoice" not in config(None)
    assert config("none") is None
    assert config("none", history=True) == {"tools": config(None)["tools"]}
    req = ChatRequest("m", [Message("user", "hi")], top_k=5)
    assert bedrock.build_request(req, NOVA)["additionalModelRequestFields"] == {
        "inferenceConfig": {"topK": 5}
    }


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        (Message("user", [ImagePart("https://x/cat.png")]), "data: URL"),
        (Message("user", [ImagePart("data:image/bmp;base64,AA==")]), "image/bmp"),
        (Message("user", [DocumentPart("application/pdf", url="https://x/a.pdf")]), "by URL"),
        (Message("user", [OtherPart("input_audio", {})]), "input_audio"),
        (Message("assistant", None, tool_calls=[ToolCall("a", "f", "{bad")]), "valid JSON"),
    ],
)
def test_unsupported_input_is_invalid_request(message: Message, needle: str) -> None:
    with pytest.raises(InvalidRequest, match=needle):
        bedrock.build_request(ChatRequest("m", [message]), NOVA)
    with pytest.raises(InvalidRequest, match="n > 1"):
        bedrock.build_request(ChatRequest("m", [Message("user", "x")], n=2), NOVA)


def test_model_path_encodes_the_id() -> None:
    assert bedrock.model_path(NOVA, False) == "/model/us.amazon.nova-pro-v1%3A0/converse"
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/x"
    assert bedrock.model_path(arn, True) == (
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fx"
        "/converse-stream"
    )


# ---------------------------------------------------------------- responses
def test_parse_response_blocks_and_usage() -> None:
    body = orjson.dumps({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "S"}}},
            {"text": "Sure. "},
            {"text": "Calling."},
            {"toolUse": {"toolUseId": "tu1", "name": "get_weather", "input": {"city": "Oslo"}}},
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 45,
                  "cacheReadInputTokens": 20, "cacheWriteInputTokens": 10},
        "metrics": {"latencyMs": 3},
    })  # fmt: skip
    r = bedrock.parse_response(body, "aws-bedrock", NOVA, "req-1")
    m = r.choices[0].message
    assert m.content == "Sure. Calling."
    assert m.reasoning == "hmm" and m.reasoning_signature == "S"
    assert m.tool_calls == [ToolCall("tu1", "get_weather", '{"city":"Oslo"}')]
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (40, 5)
    assert (r.usage.cached_tokens, r.usage.cache_write_tokens) == (20, 10)
    assert (r.upstream_id, r.upstream_model) == ("req-1", NOVA)


@pytest.mark.parametrize(
    ("reason", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
     ("tool_use", "tool_calls"), ("guardrail_intervened", "content_filter"),
     ("content_filtered", "content_filter"), ("model_context_window_exceeded", "length")],
)  # fmt: skip
def test_stop_reasons(reason: str, finish: str) -> None:
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
        "stopReason": reason,
        "additionalModelResponseFields": {"stop_sequence": "END"},
    }
    choice = bedrock.parse_response(orjson.dumps(body), "p").choices[0]  # fmt: skip
    assert choice.finish_reason == finish and choice.stop_sequence == "END"


def test_malformed_response_is_upstream_unavailable() -> None:
    with pytest.raises(UpstreamUnavailable):
        bedrock.parse_response(b'{"output": {}}', "p")


def test_error_messages() -> None:
    assert bedrock.error_type("ValidationException:http://internal.amazon.com/x") == (
        "ValidationException"
    )
    assert bedrock.error_message(b'{"Message":"bad"}', "X") == "X: bad"
    assert bedrock.error_message(b"<html>oops</html>") == "<html>oops</html>"
    err = bedrock.upstream_error(424, b'{"message":"model broke"}', "ModelErrorException", "p")
    assert err.status == 502 and "ModelErrorException: model broke" in err.message


# ---------------------------------------------------------------- streams
def _decode_all(data: bytes, cut: int | None = None) -> list[StreamChunk]:
    dec = ConverseStreamDecoder("aws-bedrock")
    parts = [data] if cut is None else [data[:cut], data[cut:]]
    out = []
    for p in parts:
        out += dec.feed(p)
    return out + dec.finish()


USAGE = {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}


def test_stream_text_at_every_split_point() -> None:
    data = b"".join(stream_frames(Completion("Hi there", ["Hi ", "there"]), USAGE))
    whole = _decode_all(data)
    assert whole[0].choices[0].role == "assistant"
    assert "".join(c.choices[0].content or "" for c in whole if c.choices) == "Hi there"
    assert whole[-2].choices[0].finish_reason == "stop"
    assert whole[-1].usage is not None and whole[-1].usage.completion_tokens == 4
    for cut in range(len(data) + 1):
        assert _decode_all(data, cut) == whole, cut


def test_stream_tool_calls_get_sequential_indexes() -> None:
    calls = [
        SimToolCall("call_a", "f", '{"x":1,"yy":"long value"}'),
        SimToolCall("call_b", "g", "{}"),
    ]
    data = b"".join(
        stream_frames(Completion(None, tool_calls=calls, finish_reason="tool_calls"), USAGE)
    )
    deltas = [tc for c in _decode_all(data) for d in c.choices for tc in d.tool_calls or ()]
    assert [(d.index, d.id, d.name) for d in deltas if d.id] == [
        (0, "tooluse_a", "f"), (1, "tooluse_b", "g")
    ]  # fmt: skip
    args = {i: "".join(d.arguments or "" for d in deltas if d.index == i) for i in (0, 1)}
    assert args == {0: '{"x":1,"yy":"long value"}', 1: "{}"}


def test_stream_text_block_before_tool_block() -> None:
    def delta(i: int, d: dict[str, Any]) -> bytes:
        return event_frame("contentBlockDelta", {"contentBlockIndex": i, "delta": d})

    start = {"toolUse": {"toolUseId": "t", "name": "f"}}
    frames = [
        event_frame("messageStart", {"role": "assistant"}),
        delta(0, {"reasoningContent": {"text": "why"}}),
        delta(0, {"reasoningContent": {"signature": "SG"}}),
        event_frame("contentBlockStop", {"contentBlockIndex": 0}),
        delta(1, {"text": "ok"}),
        event_frame("contentBlockStart", {"contentBlockIndex": 2, "start": start}),
        delta(2, {"toolUse": {"input": "{}"}}),
        event_frame("someFutureEvent", {}),
        event_frame("messageStop", {"stopReason": "tool_use"}),
    ]
    chunks = _decode_all(b"".join(frames))
    ds = [d for c in chunks for d in c.choices]
    assert [d.reasoning for d in ds if d.reasoning] == ["why"]
    assert [d.reasoning_signature for d in ds if d.reasoning_signature] == ["SG"]
    assert [tc.index for d in ds for tc in d.tool_calls or ()] == [0, 0]
    assert ds[-1].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("kind", "cls", "status"),
    [("throttlingException", RateLimited, 429), ("modelStreamErrorException", UpstreamError, 502),
     ("validationException", InvalidRequest, 400), ("internalServerException", UpstreamError, 502)],
)  # fmt: skip
def test_exception_frame_after_good_frames(kind: str, cls: type, status: int) -> None:
    frames = stream_frames(Completion("Hi there", ["Hi ", "there"]), USAGE)[:2]
    data = b"".join(frames) + exception_frame(kind, "slow down")
    dec = ConverseStreamDecoder("aws-bedrock")
    good = dec.feed(data)
    assert [c.choices[0].content for c in good] == [None, "Hi "]  # delivered first
    with pytest.raises(cls) as e:
        dec.feed(b"")
    assert e.value.status == status
    assert f"{kind}: slow down" in e.value.message and "mid-stream" in e.value.message


def test_error_message_type_and_truncation() -> None:
    frame = encode_message({":message-type": "error", ":error-code": "ThrottlingException",
                            ":error-message": "quota"}, b"")  # fmt: skip
    with pytest.raises(RateLimited, match="quota"):
        _decode_all(frame)
    data = b"".join(stream_frames(Completion("Hi", ["Hi"]), USAGE))
    with pytest.raises(UpstreamUnavailable, match="before messageStop"):
        _decode_all(data[:-5])
    stopless = b"".join(stream_frames(Completion("Hi", ["Hi"]), USAGE)[:2])
    with pytest.raises(UpstreamUnavailable, match="before messageStop"):
        _decode_all(stopless)


def test_bad_crc_frame_is_upstream_unavailable() -> None:
    frame = bytearray(event_frame("messageStart", {"role": "assistant"}))
    frame[-1] ^= 1
    with pytest.raises(UpstreamUnavailable, match="CRC"):
        ConverseStreamDecoder("p").feed(bytes(frame))
