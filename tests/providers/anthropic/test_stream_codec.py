"""CM-10.3: Anthropic streams: the renderer's exact event sequence (checked against the official
SDK's accumulator) and the decoder's canonical chunks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event

from gatewayz.canonical.types import ChoiceDelta, StreamChunk, ToolCallDelta, Usage
from gatewayz.errors import RateLimited, UpstreamError, UpstreamUnavailable
from gatewayz.providers.anthropic.response import AnthropicStreamDecoder, StreamRenderer


def events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in data.decode().split("\n\n"):
        if not block:
            continue
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        payload = json.loads(data_line[6:])
        assert payload["type"] == name_line[7:]
        out.append((name_line[7:], payload))
    return out


def chunk(**fields: Any) -> StreamChunk:
    return StreamChunk([ChoiceDelta(index=0, **fields)])


def render(chunks: list[StreamChunk], usage: Usage) -> bytes:
    r = StreamRenderer("msg_1", "claude-x", 12)
    return r.start() + b"".join(r.feed(c) for c in chunks) + r.finish(usage)


def sdk_message(data: bytes) -> Any:
    snapshot = None
    bufs: dict[int, bytes] = {}
    for _, payload in events(data):
        if payload["type"] == "ping":
            continue
        snapshot = accumulate_event(event=payload, current_snapshot=snapshot, json_bufs=bufs)  # type: ignore[arg-type]
    return snapshot


def test_cm_10_3_1_text_stream_exact_sequence() -> None:
    data = render(
        [chunk(role="assistant", content=""), chunk(content="Hel"), chunk(content="lo"),
         chunk(finish_reason="stop")],
        Usage(12, 3),
    )  # fmt: skip
    seq = events(data)
    assert [n for n, _ in seq] == [
        "message_start", "ping", "content_block_start", "content_block_delta",
        "content_block_delta", "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    start = seq[0][1]["message"]
    assert start["usage"] == {"input_tokens": 12, "output_tokens": 0}
    assert start["content"] == [] and start["stop_reason"] is None
    assert seq[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert seq[3][1]["delta"] == {"type": "text_delta", "text": "Hel"}
    assert seq[6][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"input_tokens": 12, "output_tokens": 3},
    }
    msg = sdk_message(data)
    assert msg.content[0].text == "Hello" and msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (12, 3)


def test_no_spurious_empty_text_block() -> None:
    seq = events(render([chunk(content=""), chunk(finish_reason="stop")], Usage(1, 0)))
    assert [n for n, _ in seq] == ["message_start", "ping", "message_delta", "message_stop"]


def test_cm_10_3_1_parallel_tool_calls_stream_as_blocks_in_order() -> None:
    chunks = [
        chunk(content="Let me check."),
        chunk(tool_calls=[ToolCallDelta(0, id="call_a", name="w", arguments="")]),
        chunk(tool_calls=[ToolCallDelta(0, arguments='{"city":')]),
        chunk(tool_calls=[ToolCallDelta(0, arguments='"Oslo"}')]),
        chunk(tool_calls=[ToolCallDelta(1, id="call_b", name="t", arguments='{"tz":"UTC"}')]),
        chunk(finish_reason="tool_calls"),
    ]
    data = render(chunks, Usage(12, 20, cached_tokens=4, cache_write_tokens=0))
    seq = events(data)
    starts = [p for n, p in seq if n == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1, 2]
    assert starts[1]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "w",
        "input": {},
    }
    assert starts[2]["content_block"]["id"] == "call_b"
    json_deltas = [(p["index"], p["delta"]) for n, p in seq if n == "content_block_delta"][1:]
    assert json_deltas == [
        (1, {"type": "input_json_delta", "partial_json": '{"city":'}),
        (1, {"type": "input_json_delta", "partial_json": '"Oslo"}'}),
        (2, {"type": "input_json_delta", "partial_json": '{"tz":"UTC"}'}),
    ]
    stops = [p["index"] for n, p in seq if n == "content_block_stop"]
    assert stops == [0, 1, 2]
    delta = next(p for n, p in seq if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"] == {
        "input_tokens": 8,
        "output_tokens": 20,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 4,
    }
    msg = sdk_message(data)
    assert [b.type for b in msg.content] == ["text", "tool_use", "tool_use"]
    assert msg.content[1].input == {"city": "Oslo"} and msg.content[2].input == {"tz": "UTC"}


def test_cm_10_3_1_thinking_and_signature_stream() -> None:
    chunks = [
        chunk(reasoning="Think"),
        chunk(reasoning="ing"),
        chunk(reasoning_signature="SIG"),
        chunk(content="Answer"),
        chunk(finish_reason="stop", stop_sequence="END"),
    ]
    data = render(chunks, Usage(5, 5))
    seq = events(data)
    deltas = [p["delta"] for n, p in seq if n == "content_block_delta"]
    assert deltas == [
        {"type": "thinking_delta", "thinking": "Think"},
        {"type": "thinking_delta", "thinking": "ing"},
        {"type": "signature_delta", "signature": "SIG"},
        {"type": "text_delta", "text": "Answer"},
    ]
    msg = sdk_message(data)
    assert (msg.content[0].thinking, msg.content[0].signature) == ("Thinking", "SIG")
    assert (msg.stop_reason, msg.stop_sequence) == ("stop_sequence", "END")


def test_renderer_error_event() -> None:
    r = StreamRenderer("m", "c", 1)
    seq = events(r.error(UpstreamUnavailable("gone", status=503)))
    assert seq == [
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "gone"}})
    ]
    assert r.finish(Usage(1, 1)) == b""


# ---------------------------------------------------------------- decoder
UPSTREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    b'"role":"assistant","content":[],"model":"claude","stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":10,"cache_read_input_tokens":30,"cache_creation_input_tokens":0,'
    b'"output_tokens":1}}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"thinking_delta","thinking":"Hmm"}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"signature_delta","signature":"S1"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":1,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,'
    b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":2,'
    b'"content_block":{"type":"tool_use","id":"toolu_a","name":"w","input":{}}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,'
    b'"delta":{"type":"input_json_delta","partial_json":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,'
    b'"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": \\"Oslo\\"}"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":2}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":3,'
    b'"content_block":{"type":"tool_use","id":"toolu_b","name":"t","input":{}}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":3,'
    b'"delta":{"type":"input_json_delta","partial_json":"{}"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":3}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use",'
    b'"stop_sequence":null},"usage":{"output_tokens":42}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def deltas(chunks: list[StreamChunk]) -> list[ChoiceDelta]:
    return [d for c in chunks for d in c.choices]


def test_cm_10_3_1_decoder_maps_every_event() -> None:
    dec = AnthropicStreamDecoder("anthropic")
    # byte-at-a-time: events split anywhere still decode identically
    chunks = [c for i in range(len(UPSTREAM)) for c in dec.feed(UPSTREAM[i : i + 1])]
    chunks += dec.finish()
    ds = deltas(chunks)
    assert ds[0] == ChoiceDelta(0, role="assistant")
    assert [d.reasoning for d in ds if d.reasoning] == ["Hmm"]
    assert [d.reasoning_signature for d in ds if d.reasoning_signature] == ["S1"]
    assert "".join(d.content or "" for d in ds) == "Hi"
    calls = [tc for d in ds for tc in d.tool_calls or ()]
    assert calls == [
        ToolCallDelta(0, id="toolu_a", name="w", arguments=""),
        ToolCallDelta(0, arguments='{"city": "Oslo"}'),
        ToolCallDelta(1, id="toolu_b", name="t", arguments=""),
        ToolCallDelta(1, arguments="{}"),
    ]
    assert ds[-1].finish_reason == "tool_calls"
    usage = [c.usage for c in chunks if c.usage is not None]
    assert usage == [Usage(40, 42, cached_tokens=30, cache_write_tokens=0)]


def test_decoder_error_events_map_to_errors() -> None:
    def feed(kind: str) -> None:
        dec = AnthropicStreamDecoder("anthropic")
        dec.feed(UPSTREAM.split(b"event: ping")[0])
        body = json.dumps({"type": "error", "error": {"type": kind, "message": "m"}})
        dec.feed(b"event: error\ndata: " + body.encode() + b"\n\n")

    with pytest.raises(UpstreamUnavailable) as info:
        feed("overloaded_error")
    assert info.value.status == 503 and "m" in info.value.message
    with pytest.raises(RateLimited):
        feed("rate_limit_error")
    with pytest.raises(UpstreamError):
        feed("invalid_request_error")


def test_decoder_truncated_or_malformed_stream_raises() -> None:
    dec = AnthropicStreamDecoder("anthropic")
    dec.feed(UPSTREAM[: UPSTREAM.index(b"event: message_delta")])
    with pytest.raises(UpstreamUnavailable, match="ended before"):
        dec.finish()
    with pytest.raises(UpstreamUnavailable, match="malformed"):
        AnthropicStreamDecoder("anthropic").feed(b"event: x\ndata: {nope\n\n")
    with pytest.raises(UpstreamUnavailable, match="empty"):
        AnthropicStreamDecoder("anthropic").finish()


def test_renderer_output_decodes_back() -> None:
    chunks = [
        chunk(reasoning="r"),
        chunk(reasoning_signature="S"),
        chunk(content="Hi"),
        chunk(tool_calls=[ToolCallDelta(0, id="c1", name="w", arguments='{"a":1}')]),
        chunk(finish_reason="tool_calls"),
    ]
    dec = AnthropicStreamDecoder("p")
    back = dec.feed(render(chunks, Usage(9, 7, cached_tokens=2))) + dec.finish()
    ds = deltas(back)
    assert "".join(d.content or "" for d in ds) == "Hi"
    assert [d.reasoning for d in ds if d.reasoning] == ["r"]
    tcs = [tc for d in ds for tc in d.tool_calls or ()]
    assert tcs == [
        ToolCallDelta(0, id="c1", name="w", arguments=""),
        ToolCallDelta(0, arguments='{"a":1}'),
    ]
    assert [c.usage for c in back if c.usage] == [Usage(9, 7, cached_tokens=2)]
